package server

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

const wifiPassword = "Correct-Horse-Battery-Staple-7"

func wifiProfile(identifier string) json.RawMessage {
	return json.RawMessage(`{"name":"Office Wi-Fi","identifier":"` + identifier + `","payloads":[{"type":"wifi","wifi":{"ssid":"Office","security":"wpa2_personal","password":"` + wifiPassword + `"}}]}`)
}

// TestGroupsProfilesAndScopes: a static group from enrolment, a dynamic
// group from inventory, a Wi-Fi profile deployed by assignment (its secret
// never shown nor stored in clear), and a Help Desk role limited to one
// group that sees and acts on that group only.
func TestGroupsProfilesAndScopes(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var sales, old api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Sales", Kind: "static"}, &sales)
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Needs update", Kind: "dynamic",
			Rule: json.RawMessage(`{"all":[{"attr":"os.version","op":"lt","value":"18.0"},{"attr":"ownership","op":"eq","value":"corporate"}]}`)}, &old)
		if !strings.Contains(old.RuleText, "os.version") {
			t.Errorf("rule text: %q", old.RuleText)
		}
		for _, bad := range []api.GroupRequest{
			{Name: "Never", Kind: "dynamic", Rule: json.RawMessage(`{"all":[{"attr":"os.version","op":"gte","value":"18"},{"attr":"os.version","op":"lt","value":"17"}]}`)},
			{Name: "Typo", Kind: "dynamic", Rule: json.RawMessage(`{"attr":"os.versoin","op":"eq","value":"1"}`)},
			{Name: "Sales", Kind: "static"},
			{Name: "Static with rule", Kind: "static", Rule: json.RawMessage(`{"attr":"platform","op":"eq","value":"ios"}`)},
		} {
			if r := f.do(f.owner, "POST", f.path("/groups"), bad); r.status != 400 && r.status != 409 {
				t.Errorf("group %q: %d %s", bad.Name, r.status, r.body)
			}
		}

		var prof api.ProfileView
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Office Wi-Fi", Definition: wifiProfile("org.fleet.wifi")}, &prof)
		if strings.Contains(string(prof.Definition), wifiPassword) || !strings.Contains(string(prof.Definition), `"set":true`) {
			t.Fatalf("profile view shows the secret or hides that it is set: %s", prof.Definition)
		}
		f.must(204, f.owner, "PUT", f.path("/profiles/"+prof.ID+"/groups/"+sales.ID), nil, nil)

		inSales, salesID := f.enrol("corporate", "", sales.ID, func(d *sim.Device) { d.OSVersion = "17.5" })
		other, otherID := f.enrol("corporate", "", "", nil)
		f.poll(inSales) // the profile queued at enrolment
		if got := inSales.Profiles["org.fleet.wifi"]; !strings.Contains(string(got), wifiPassword) {
			t.Fatalf("the device did not receive the Wi-Fi profile with its password")
		}
		if len(other.Profiles) != 0 {
			t.Errorf("a device outside the group got profiles: %v", other.Profiles)
		}
		var states api.List[api.DeviceProfileView]
		f.must(200, f.owner, "GET", f.path("/devices/"+salesID+"/profiles"), nil, &states)
		if len(states.Items) != 1 || states.Items[0].Status != store.ProfileInstalled {
			t.Fatalf("profile state: %+v", states.Items)
		}
		if strings.Contains(string(storetest.AllValues(t, st)), wifiPassword) {
			t.Fatal("the Wi-Fi password is stored in clear")
		}

		// Groups: the enrolment's static group; the dynamic one by OS version.
		if got := ids(f.devices(f.owner, "group="+sales.ID)); !slices.Equal(got, []string{salesID}) {
			t.Errorf("sales members: %v", got)
		}
		if got := ids(f.devices(f.owner, "group="+old.ID)); !slices.Equal(got, []string{salesID}) {
			t.Errorf("dynamic group members: %v (the Sales device runs 17.5, the other 18.1)", got)
		}
		if got := ids(f.devices(f.owner, "os_max=17.9&ownership=corporate")); !slices.Equal(got, []string{salesID}) {
			t.Errorf("os_max filter: %v", got)
		}
		if got := f.devices(f.owner, "sort=-os_version&limit=1"); len(got) != 1 || got[0].ID != otherID {
			t.Errorf("sorted by OS version, descending: %+v", got)
		}

		// Unassigning removes the profile from the device.
		f.must(204, f.owner, "DELETE", f.path("/profiles/"+prof.ID+"/groups/"+sales.ID), nil, nil)
		f.poll(inSales)
		if _, still := inSales.Profiles["org.fleet.wifi"]; still {
			t.Error("the profile stayed on the device after its group lost it")
		}

		// A device that refuses a profile shows the device's error: Apple's
		// domain and code, as the default policy hides the device's text.
		f.must(204, f.owner, "PUT", f.path("/profiles/"+prof.ID+"/groups/"+old.ID), nil, nil)
		inSales.RefuseProfiles = true
		f.poll(inSales)
		f.must(200, f.owner, "GET", f.path("/devices/"+salesID+"/profiles"), nil, &states)
		if len(states.Items) != 1 || states.Items[0].Status != store.ProfileFailed || states.Items[0].Error != "MCProfileErrorDomain error 4001" {
			t.Errorf("refused profile: %+v", states.Items)
		}

		// Help Desk limited to Sales: sees and locks Sales devices only.
		_, help := f.admin("help@fleet.test", "helpdesk", sales.ID)
		if got := ids(f.devices(help, "")); !slices.Equal(got, []string{salesID}) {
			t.Errorf("scoped help desk sees %v", got)
		}
		if r := f.do(help, "GET", f.path("/devices/"+otherID), nil); r.status != 404 {
			t.Errorf("scoped help desk reads a device outside its group: %d", r.status)
		}
		lock := api.DeviceActionRequest{Action: actions.Lock, Reason: "reported lost at the airport"}
		if r := f.do(help, "POST", f.path("/devices/"+otherID+"/actions"), lock); r.status != 404 {
			t.Errorf("scoped help desk locks a device outside its group: %d %s", r.status, r.body)
		}
		var b actions.Batch
		f.must(201, help, "POST", f.path("/devices/"+salesID+"/actions"), lock, &b)
		if b.States[store.ActionQueued] != 1 {
			t.Errorf("lock batch: %+v", b)
		}
		// It follows its own request (steward action run --wait does), and
		// no other admin's.
		var followed api.BatchView
		f.must(200, help, "GET", f.path("/actions/"+b.ID), nil, &followed)
		if len(followed.Actions.Items) != 1 || followed.Actions.Items[0].DeviceID != salesID {
			t.Errorf("the help desk's own lock: %+v", followed)
		}
		var owners actions.Batch
		f.must(201, f.owner, "POST", f.path("/devices/"+salesID+"/actions"), api.DeviceActionRequest{Action: actions.Sync, Reason: "inventory check"}, &owners)
		if r := f.do(help, "GET", f.path("/actions/"+owners.ID), nil); r.status != 404 {
			t.Errorf("scoped help desk reads another admin's request: %d %s", r.status, r.body)
		}
		if r := f.do(help, "POST", f.path("/devices/"+salesID+"/actions"), api.DeviceActionRequest{Action: actions.Wipe, Reason: "stolen from the office"}); r.status != 403 {
			t.Errorf("help desk wipes: %d", r.status)
		}
		// A refresh queues commands and wakes the device: the help desk may,
		// the roles that only read may not, one device or a group.
		sync := api.DeviceActionRequest{Action: actions.Sync, Reason: "the employee says it is fixed"}
		f.must(201, help, "POST", f.path("/devices/"+salesID+"/actions"), sync, nil)
		for _, role := range []string{"auditor", "readonly"} {
			_, reader := f.admin(role+"@fleet.test", role)
			if r := f.do(reader, "POST", f.path("/devices/"+salesID+"/actions"), sync); r.status != 403 {
				t.Errorf("the %s role refreshes a device: %d %s", role, r.status, r.body)
			}
			if r := f.do(reader, "POST", f.path("/actions"), actions.Request{Action: actions.Sync, Reason: sync.Reason, GroupID: sales.ID}); r.status != 403 {
				t.Errorf("the %s role refreshes a group: %d %s", role, r.status, r.body)
			}
		}
		if r := f.do(help, "GET", f.path("/groups"), nil); r.status != 403 {
			t.Errorf("scoped help desk lists groups (not a scoped route): %d", r.status)
		}
		if r := f.do(help, "POST", f.path("/actions"), actions.Request{Action: actions.Lock, Reason: "the whole office", GroupID: old.ID}); r.status != 404 {
			t.Errorf("scoped help desk acts on a group outside its scope: %d %s", r.status, r.body)
		}
		// The group that limits the role cannot go (the role would widen).
		if r := f.do(f.owner, "DELETE", f.path("/groups/"+sales.ID), nil); r.status != 409 {
			t.Errorf("deleting a group a role is limited to: %d %s", r.status, r.body)
		}
		if r := f.do(help, "GET", f.path("/devices/"+otherID), nil); r.status != 404 {
			t.Errorf("scoped help desk after the refused delete: %d", r.status)
		}
	})
}

// TestComplianceLadderAndConditionalAccess: a device failing the policy
// is refused by the access check with the reasons, climbs the ladder
// (notified, marked, locked), and passes once fixed.
func TestComplianceLadderAndConditionalAccess(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		sub, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		ladder := compliance.Ladder{{Action: compliance.StepNotify}, {Action: compliance.StepMarkNoncompliant, AfterHours: 0}, {Action: compliance.StepLock, AfterHours: 0}}
		var pol api.PolicyView
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Platform: "ios", Name: "Baseline", Rules: compliance.Rules{
			MinOSVersion: "18.0", PasscodeRequired: true, EncryptionRequired: true, ForbiddenApps: []string{"com.example.app000"}},
			Ladder: &ladder}, &pol)
		bad := compliance.PolicyInput{Name: "Impossible", Rules: compliance.Rules{RequiredApps: []string{"a.b"}, ForbiddenApps: []string{"a.b"}}}
		if r := f.do(f.owner, "POST", f.path("/compliance/policies"), bad); r.status != 400 {
			t.Errorf("a policy no device can meet: %d", r.status)
		}

		good, goodID := f.enrol("corporate", "", "", nil)
		risky, riskyID := f.enrol("corporate", sub.ID, "", func(d *sim.Device) { d.NoPasscode = true; d.OSVersion = "17.2" })
		_ = good
		if d := f.device(f.owner, goodID); d.Compliance != "noncompliant" {
			// com.example.app000 is installed on every simulated device.
			t.Errorf("good device before the app rule is dropped: %q", d.Compliance)
		}
		pol2 := compliance.PolicyInput{Platform: "ios", Name: "Baseline", Rules: compliance.Rules{MinOSVersion: "18.0", PasscodeRequired: true, EncryptionRequired: true}, Ladder: &ladder}
		f.must(200, f.owner, "PUT", f.path("/compliance/policies/"+pol.ID), pol2, nil)
		if d := f.device(f.owner, goodID); d.Compliance != store.ComplianceCompliant {
			t.Fatalf("good device: %q", d.Compliance)
		}
		if d := f.device(f.owner, riskyID); d.Compliance != store.ComplianceNoncompliant {
			t.Fatalf("risky device: %q", d.Compliance)
		}
		var dc api.DeviceComplianceView
		f.must(200, f.owner, "GET", f.path("/devices/"+riskyID+"/compliance"), nil, &dc)
		// Old OS and no passcode; without one an iPhone's data is not
		// protected either, so encryption fails too.
		if len(dc.Standings) != 1 || len(dc.Standings[0].Violations) != 3 || len(dc.History) == 0 {
			t.Fatalf("risky standing: %+v", dc)
		}

		// Conditional access, by client certificate through a trusted proxy.
		check := "/api/v1/access/" + f.tenant + "/check"
		if r := f.do("", "GET", check, nil, "X-SSL-Client-Cert", sim.EscapedPEM(good.Certificate())); r.status != 200 {
			t.Errorf("compliant device refused: %d %s", r.status, r.body)
		}
		r := f.do("", "GET", check, nil, "X-SSL-Client-Cert", sim.EscapedPEM(risky.Certificate()))
		if r.status != 403 || !strings.Contains(string(r.body), "passcode") || r.header.Get("X-Steward-Access-Reason") == "" {
			t.Errorf("noncompliant device: %d %s", r.status, r.body)
		}
		if r := f.do("", "GET", check, nil); r.status != 403 {
			t.Errorf("no identity: %d", r.status)
		}
		var tok api.AccessTokenView
		f.must(201, f.owner, "POST", f.path("/devices/"+goodID+"/access-token"), api.AccessTokenRequest{}, &tok)
		if r := f.do("", "GET", check, nil, api.DeviceTokenHeader, tok.Token); r.status != 200 {
			t.Errorf("device token: %d %s", r.status, r.body)
		}
		if r := f.do("", "GET", "/api/v1/access/"+store.NewID()+"/check", nil, api.DeviceTokenHeader, tok.Token); r.status != 403 {
			t.Errorf("a token used against another tenant: %d", r.status)
		}

		// The ladder: notify (mail queued), mark, lock.
		if _, err := f.app.Compliance.RunDueSteps(f.ctx, 100); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := f.app.Compliance.RunDueSteps(f.ctx, 100); err != nil {
				t.Fatal(err)
			}
		}
		f.must(200, f.owner, "GET", f.path("/devices/"+riskyID+"/compliance"), nil, &dc)
		if dc.Standings[0].StepsTaken != 3 {
			t.Errorf("ladder steps taken: %+v", dc.Standings[0])
		}
		var acts api.List[api.ActionView]
		f.must(200, f.owner, "GET", f.path("/devices/"+riskyID+"/actions"), nil, &acts)
		if len(acts.Items) != 1 || acts.Items[0].Action != "lock" || acts.Items[0].RequestedBy != "system:compliance" {
			t.Errorf("ladder lock: %+v", acts.Items)
		}
		mails, err := st.Read().Notifications().ListForSubject(f.ctx, f.tenant, sub.ID)
		if err != nil || !slices.ContainsFunc(mails, func(n store.Notification) bool { return n.Kind == "compliance" && strings.Contains(n.Body, "passcode") }) {
			t.Errorf("no compliance mail queued for the employee: %v %+v", err, mails)
		}

		// Fixed: the device reports a passcode and a new OS, and passes.
		risky.NoPasscode, risky.OSVersion = false, "18.2"
		f.must(201, f.owner, "POST", f.path("/devices/"+riskyID+"/actions"), api.DeviceActionRequest{Action: actions.Sync, Reason: "employee says it is fixed"}, nil)
		f.poll(risky)
		var detail api.DeviceDetailView
		f.must(200, f.owner, "GET", f.path("/devices/"+riskyID), nil, &detail)
		if detail.Compliance != store.ComplianceCompliant {
			t.Errorf("fixed device: %q", detail.Compliance)
		}
		// The sync also brought the device's certificates.
		if !slices.ContainsFunc(detail.Fields, func(fv privacy.FieldView) bool {
			return fv.Field == "security.certificates" && strings.Contains(string(fv.Value), "steward-device")
		}) {
			t.Errorf("device detail without its certificates: %+v", detail.Fields)
		}
		if r := f.do("", "GET", check, nil, "X-SSL-Client-Cert", sim.EscapedPEM(risky.Certificate())); r.status != 200 {
			t.Errorf("fixed device refused: %d %s", r.status, r.body)
		}
		if got := ids(f.devices(f.owner, "compliance=compliant")); len(got) != 2 {
			t.Errorf("compliant filter: %v", got)
		}
	})
}

// TestTwoPersonRuleAndOwnership: wipe and retire wait for a second admin,
// the requester cannot approve, personal devices cannot be wiped without
// the employee's consent, and an acknowledged wipe takes the device out.
func TestTwoPersonRuleAndOwnership(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		phone, phoneID := f.enrol("corporate", "", "", nil)
		sub, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "paul@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		_, personalID := f.enrol("personal", sub.ID, "", nil)

		wipe := api.DeviceActionRequest{Action: actions.Wipe, Reason: "device stolen, police report 4711"}
		var b actions.Batch
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"), wipe, &b)
		if b.ApprovalID == "" || b.States[store.ActionAwaitingApproval] != 1 {
			t.Fatalf("wipe did not wait for approval: %+v", b)
		}
		if n := f.poll(phone); n != 0 {
			t.Fatalf("a command reached the device before approval: %d", n)
		}
		if r := f.do(f.owner, "POST", f.path("/action-approvals/"+b.ApprovalID), actions.Decision{Approve: true}); r.status != 403 {
			t.Errorf("requester approved their own wipe: %d %s", r.status, r.body)
		}
		f.must(200, second, "POST", f.path("/action-approvals/"+b.ApprovalID), actions.Decision{Approve: true, Comment: "confirmed with security"}, &b)
		if b.States[store.ActionQueued] != 1 {
			t.Fatalf("approved wipe: %+v", b)
		}
		if r := f.do(second, "POST", f.path("/action-approvals/"+b.ApprovalID), actions.Decision{Approve: true}); r.status != 409 {
			t.Errorf("approved twice: %d", r.status)
		}
		f.poll(phone)
		if d := f.device(f.owner, phoneID); d.State != store.DeviceWiped {
			t.Errorf("after the wipe was acknowledged: %q", d.State)
		}
		var status api.BatchView
		f.must(200, f.owner, "GET", f.path("/actions/"+b.ID), nil, &status)
		if status.States[store.ActionDone] != 1 || len(status.Actions.Items) != 1 {
			t.Errorf("batch status: %+v", status)
		}

		// A personal device: the collection policy allows it no full wipe,
		// so the wipe is refused before any second admin is asked.
		if r := f.do(f.owner, "POST", f.path("/devices/"+personalID+"/actions"), wipe); r.status != 403 || !strings.Contains(string(r.body), mdm.SkipPolicy) {
			t.Errorf("personal wipe: %d %s", r.status, r.body)
		}
		// Locate is for corporate devices only.
		if r := f.do(f.owner, "POST", f.path("/devices/"+personalID+"/actions"), api.DeviceActionRequest{Action: actions.Locate, Reason: "employee asked us to find it"}); r.status != 403 {
			t.Errorf("locating a personal device: %d %s", r.status, r.body)
		}
		if r := f.do(f.owner, "POST", f.path("/devices/"+personalID+"/actions"), api.DeviceActionRequest{Action: actions.Lock, Reason: "short"}); r.status != 400 {
			t.Errorf("an action without a real reason: %d", r.status)
		}
		// OS updates: supervised devices only.
		if r := f.do(f.owner, "POST", f.path("/devices/"+personalID+"/actions"), api.DeviceActionRequest{Action: actions.OSUpdate, Reason: "critical security update"}); r.status != 403 {
			t.Errorf("an OS update on an unsupervised personal device: %d %s", r.status, r.body)
		}
		located, locatedID := f.enrol("corporate", "", "", func(d *sim.Device) { d.Supervised = true }) // prepared with Apple Configurator
		f.must(201, f.owner, "POST", f.path("/devices/"+locatedID+"/actions"), api.DeviceActionRequest{Action: actions.OSUpdate, Reason: "critical security update"}, nil)
		// Locating: corporate only, in Lost Mode, with a reason; location kept 7 days at most.
		f.must(201, f.owner, "POST", f.path("/devices/"+locatedID+"/actions"), api.DeviceActionRequest{Action: actions.LostMode, Reason: "left in a taxi on Friday",
			Options: actions.Options{Message: "Please call IT"}}, nil)
		f.must(201, f.owner, "POST", f.path("/devices/"+locatedID+"/actions"), api.DeviceActionRequest{Action: actions.Locate, Reason: "left in a taxi on Friday"}, nil)
		if n := f.poll(located); n != 3 {
			t.Errorf("the device answered %d commands, want the update, Lost Mode and the locate", n)
		}
		// Sent as a command, an OS update is held to the action's rule.
		update := api.CommandRequest{RequestType: "ScheduleOSUpdate", Reason: "critical security update"}
		if r := f.do(f.owner, "POST", f.path("/devices/"+personalID+"/commands"), update); r.status != 403 {
			t.Errorf("an OS update command for an unsupervised device: %d %s", r.status, r.body)
		}
		f.must(201, f.owner, "POST", f.path("/devices/"+locatedID+"/commands"), update, nil)
		if r := f.do(f.owner, "PUT", f.path("/privacy/retention"), api.RetentionRequest{RetentionDays: map[privacy.Category]int{privacy.Location: 30},
			Reason: "keep locations for a month"}); r.status != 400 {
			t.Errorf("location kept 30 days: %d", r.status)
		}

		// A bulk lock above the threshold waits; rejected, nothing happens.
		// (The wiped phone would be refused at once, and not count.)
		f.must(200, f.owner, "PUT", f.path("/device-settings"), device.Settings{StaleAfterDays: 30, BulkApprovalThreshold: 1, ApprovalHours: 1, ComplianceHistoryDays: 365}, nil)
		var bulk actions.Batch
		f.must(201, f.owner, "POST", f.path("/actions"), actions.Request{Action: actions.Lock, Reason: "office closed for audit",
			DeviceIDs: []string{locatedID, personalID}}, &bulk)
		if bulk.ApprovalID == "" {
			t.Fatalf("bulk lock above the threshold did not wait: %+v", bulk)
		}
		f.must(200, second, "POST", f.path("/action-approvals/"+bulk.ApprovalID), actions.Decision{Approve: false, Comment: "not needed"}, &bulk)
		if bulk.States[store.ActionRejected] != 2 {
			t.Errorf("rejected bulk: %+v", bulk)
		}
		// Audited refusals.
		var entries api.List[api.AuditEntryView]
		f.must(200, f.owner, "GET", f.path("/audit?action=device.action.decide"), nil, &entries)
		if !slices.ContainsFunc(entries.Items, func(e api.AuditEntryView) bool { return e.Outcome == "denied" }) {
			t.Errorf("the requester's own approval attempt is not audited as denied")
		}
	})
}

// TestLadderRetireNeedsAnotherAdmin: the retire a policy's ladder asks for
// is its author's request, so the author cannot approve it.
func TestLadderRetireNeedsAnotherAdmin(t *testing.T) {
	f := newFleet(t, storetest.OpenSQLite(t))
	_, second := f.admin("second@fleet.test", "administrator")
	_, risky := f.enrol("corporate", "", "", func(d *sim.Device) { d.NoPasscode = true })
	ladder := compliance.Ladder{{Action: compliance.StepRetire}}
	f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Retire at once",
		Rules: compliance.Rules{PasscodeRequired: true}, Ladder: &ladder}, nil)
	if _, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil {
		t.Fatal(err)
	}
	var acts api.List[api.ActionView]
	f.must(200, f.owner, "GET", f.path("/devices/"+risky+"/actions"), nil, &acts)
	if len(acts.Items) != 1 || acts.Items[0].State != store.ActionAwaitingApproval {
		t.Fatalf("ladder retire: %+v", acts.Items)
	}
	a, err := f.app.Store.Read().Actions().Get(f.ctx, f.tenant, acts.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.do(f.owner, "POST", f.path("/action-approvals/"+a.ApprovalID), actions.Decision{Approve: true}); r.status != 403 {
		t.Errorf("the policy's author approved its retire: %d %s", r.status, r.body)
	}
	f.must(200, second, "POST", f.path("/action-approvals/"+a.ApprovalID), actions.Decision{Approve: true}, nil)
}

// TestRetireAnsweredByCheckOut: a device told to retire often removes its
// management profile and checks out without acknowledging the command. The
// retire is then done and the device retired, audited as an acknowledged
// retire is (the device, the retire's reason), and the lock queued behind
// it fails as cancelled.
func TestRetireAnsweredByCheckOut(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		phone, phoneID := f.enrol("corporate", "", "", nil)
		var retire, lock actions.Batch
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"),
			api.DeviceActionRequest{Action: actions.Retire, Reason: "employee left the company"}, &retire)
		f.must(200, second, "POST", f.path("/action-approvals/"+retire.ApprovalID), actions.Decision{Approve: true}, &retire)
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"),
			api.DeviceActionRequest{Action: actions.Lock, Reason: "lock it until it is handed back"}, &lock)
		if _, err := phone.Send(f.ctx, map[string]any{"Status": "Idle", "UDID": phone.UDID}); err != nil {
			t.Fatal(err)
		}
		if _, err := phone.Checkin(f.ctx, phone.CheckOut()); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			batch actions.Batch
			want  string
		}{{retire, store.ActionDone}, {lock, store.ActionFailed}} {
			var status api.BatchView
			f.must(200, f.owner, "GET", f.path("/actions/"+c.batch.ID), nil, &status)
			if status.States[c.want] != 1 {
				t.Errorf("batch %s: %+v, want one %s", c.batch.ID, status.States, c.want)
			}
		}
		if d := f.device(f.owner, phoneID); d.State != store.DeviceRetired {
			t.Errorf("after CheckOut answered the retire the device is %q, want retired", d.State)
		}
		var entries api.List[api.AuditEntryView]
		f.must(200, f.owner, "GET", f.path("/audit?action=device.deprovision"), nil, &entries)
		departures := slices.DeleteFunc(entries.Items, func(e api.AuditEntryView) bool { return e.TargetID != phoneID })
		if len(departures) != 1 || departures[0].ActorType != string(store.ActorDevice) || departures[0].ActorID != phoneID ||
			departures[0].Reason != "employee left the company" {
			t.Errorf("the departure's audit: %+v, want one by the device with the retire's reason", departures)
		}

		// Deprovisioned from the console instead, the device never retired.
		_, tabletID := f.enrol("corporate", "", "", nil)
		f.must(201, f.owner, "POST", f.path("/devices/"+tabletID+"/actions"),
			api.DeviceActionRequest{Action: actions.Retire, Reason: "employee left the company"}, &retire)
		f.must(200, second, "POST", f.path("/action-approvals/"+retire.ApprovalID), actions.Decision{Approve: true}, &retire)
		if _, err := f.app.Privacy.DeprovisionDevice(f.ctx, f.tenant, tabletID, "removed from the inventory", iam.SystemActor); err != nil {
			t.Fatal(err)
		}
		var status api.BatchView
		f.must(200, f.owner, "GET", f.path("/actions/"+retire.ID), nil, &status)
		if status.States[store.ActionFailed] != 1 {
			t.Errorf("a retire cancelled by deprovisioning: %+v, want failed", status.States)
		}
		if d := f.device(f.owner, tabletID); d.State != store.DeviceDeprovisioned {
			t.Errorf("a device deprovisioned with its retire outstanding is %q", d.State)
		}

		// A CheckOut with no retire outstanding deprovisions, as before.
		laptop, laptopID := f.enrol("corporate", "", "", nil)
		if _, err := laptop.Checkin(f.ctx, laptop.CheckOut()); err != nil {
			t.Fatal(err)
		}
		if d := f.device(f.owner, laptopID); d.State != store.DeviceDeprovisioned {
			t.Errorf("a CheckOut without a retire left the device %q", d.State)
		}
	})
}

// TestServiceDiscoveryIsServed: the account-driven enrolment's discovery
// document is served at the root, where an organisation's domain points.
func TestServiceDiscoveryIsServed(t *testing.T) {
	f := newFleet(t, storetest.OpenSQLite(t))
	resp, err := f.ts.Client().Get(f.ts.URL + "/.well-known/com.apple.remotemanagement?user-identifier=a%40fleet.test&model-family=iPhone")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Servers []struct{ Version, BaseURL string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 || len(doc.Servers) != 1 ||
		doc.Servers[0].Version != "mdm-byod" || doc.Servers[0].BaseURL != f.ts.URL+"/enrol/account" {
		t.Fatalf("discovery: HTTP %d %+v %v", resp.StatusCode, doc, err)
	}
}
