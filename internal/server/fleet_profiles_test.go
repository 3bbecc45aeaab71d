package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func vpnProfile(identifier string) json.RawMessage {
	return json.RawMessage(`{"name":"Office VPN","identifier":"` + identifier + `","payloads":[{"type":"vpn","vpn":{"name":"Office",` +
		`"remote_address":"vpn.fleet.test","remote_identifier":"vpn.fleet.test","local_identifier":"phone",` +
		`"auth":"shared_secret","shared_secret":"a-long-shared-secret"}}]}`)
}

func webClipProfile(identifier string) json.RawMessage {
	return json.RawMessage(`{"name":"Intranet","identifier":"` + identifier + `","payloads":[{"type":"webclip","webclip":{"label":"Intranet","url":"https://intranet.fleet.test"}}]}`)
}

// userEnrolment makes the simulated device a User Enrollment: no UDID, no
// serial number.
func userEnrolment(d *sim.Device) { d.UDID, d.Serial, d.EnrollmentID = "", "", "4F1C0DE5A1B2C3D4" }

func mac(d *sim.Device) { d.Model, d.ProductName = "Mac14,2", "Mac14,2" }

// profileState returns the device's state of one profile.
func (f *testFleet) profileState(deviceID, profileID string) api.DeviceProfileView {
	f.t.Helper()
	var states api.List[api.DeviceProfileView]
	f.must(200, f.owner, "GET", f.path("/devices/"+deviceID+"/profiles"), nil, &states)
	for _, s := range states.Items {
		if s.ProfileID == profileID {
			return s
		}
	}
	f.t.Fatalf("device %s has no state for profile %s: %+v", deviceID, profileID, states.Items)
	return api.DeviceProfileView{}
}

// TestProfilesGoWhereDevicesTakeThem: a VPN profile reaches an iPhone and
// a Mac but not a User Enrollment, which Apple refuses it on; a web clip
// reaches the iPhones but not the Mac, which takes one only in a user's
// account. The devices left out say why, and a policy requiring the VPN
// tells the User Enrollment's owner it cannot be installed rather than to
// wait for it.
func TestProfilesGoWhereDevicesTakeThem(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var g api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Everyone", Kind: "static"}, &g)
		var vpn, clip api.ProfileView
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "VPN", Definition: vpnProfile("org.fleet.vpn")}, &vpn)
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Clip", Definition: webClipProfile("org.fleet.clip")}, &clip)
		ladder := compliance.Ladder{{Action: compliance.StepMarkNoncompliant}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "VPN everywhere",
			Rules: compliance.Rules{RequiredProfiles: []string{vpn.ID}}, Ladder: &ladder}, nil)
		for _, p := range []string{vpn.ID, clip.ID} {
			f.must(204, f.owner, "PUT", f.path("/profiles/"+p+"/groups/"+g.ID), nil, nil)
		}

		f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "user_enrolled",
			Translations: []privacy.Translation{{Language: "en", Title: "Your iPhone", Body: "What we manage."}}}, nil)
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		phone, phoneID := f.enrol("corporate", "", g.ID, nil)
		byod, byodID := f.enrol("user_enrolled", erika.ID, g.ID, func(d *sim.Device) { userEnrolment(d); d.Account = "erika@fleet.test" })
		laptop, laptopID := f.enrol("corporate", "", g.ID, mac)
		for _, d := range []*sim.Device{phone, byod, laptop} {
			f.poll(d)
		}

		if phone.Profiles["org.fleet.vpn"] == nil || phone.Profiles["org.fleet.clip"] == nil {
			t.Errorf("the corporate iPhone lacks a profile: %v", installed(phone.Profiles))
		}
		if byod.Profiles["org.fleet.vpn"] != nil || byod.Profiles["org.fleet.clip"] == nil {
			t.Errorf("the User Enrollment got %v, want the web clip only", installed(byod.Profiles))
		}
		if laptop.Profiles["org.fleet.vpn"] == nil || laptop.Profiles["org.fleet.clip"] != nil {
			t.Errorf("the Mac got %v, want the VPN only", installed(laptop.Profiles))
		}
		if s := f.profileState(byodID, vpn.ID); s.Status != store.ProfileNotApplicable || !strings.Contains(s.Error, "User Enrollment") {
			t.Errorf("VPN on the User Enrollment: %+v", s)
		}
		if s := f.profileState(laptopID, clip.ID); s.Status != store.ProfileNotApplicable || !strings.Contains(s.Error, "user's account") {
			t.Errorf("web clip on the Mac: %+v", s)
		}
		if s := f.profileState(phoneID, vpn.ID); s.Status != store.ProfileInstalled {
			t.Errorf("VPN on the iPhone: %+v", s)
		}

		var dc api.DeviceComplianceView
		f.must(200, f.owner, "GET", f.path("/devices/"+byodID+"/compliance"), nil, &dc)
		if len(dc.Standings) != 1 || len(dc.Standings[0].Violations) != 1 ||
			!strings.Contains(dc.Standings[0].Violations[0].Reason, "cannot be installed on this kind of device") {
			t.Errorf("the User Enrollment's compliance: %+v", dc.Standings)
		}
		if d := f.device(f.owner, phoneID); d.Compliance != store.ComplianceCompliant {
			t.Errorf("the iPhone with the VPN: %q", d.Compliance)
		}
	})
}

// installed lists the identifiers of a simulated device's profiles.
func installed(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestStoredVPNWithoutLocalIdentifier: a VPN definition stored before
// Steward required IKEv2's LocalIdentifier still loads and can be assigned,
// but reaches no device, which says why; an update must add it.
func TestStoredVPNWithoutLocalIdentifier(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var g api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Office", Kind: "static"}, &g)
		var vpn api.ProfileView
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "VPN", Definition: vpnProfile("org.fleet.vpn")}, &vpn)
		err := st.Tx(f.ctx, func(q store.Queries) error { // as stored by an earlier Steward
			cp, err := q.Profiles().Get(f.ctx, f.tenant, vpn.ID)
			if err != nil {
				return err
			}
			cp.Definition = []byte(strings.Replace(string(cp.Definition), `"local_identifier":"phone",`, "", 1))
			return q.Profiles().Update(f.ctx, cp)
		})
		if err != nil {
			t.Fatal(err)
		}
		var stored api.ProfileView
		f.must(200, f.owner, "GET", f.path("/profiles/"+vpn.ID), nil, &stored)
		if strings.Contains(string(stored.Definition), "local_identifier") {
			t.Fatalf("the stored definition still has its local identifier: %s", stored.Definition)
		}

		phone, phoneID := f.enrol("corporate", "", g.ID, nil)
		f.must(204, f.owner, "PUT", f.path("/profiles/"+vpn.ID+"/groups/"+g.ID), nil, nil)
		f.poll(phone)
		if s := f.profileState(phoneID, vpn.ID); s.Status != store.ProfileFailed ||
			!strings.Contains(s.Error, "local_identifier: is required") || !strings.Contains(s.Error, "edit the profile") {
			t.Errorf("the incomplete VPN on the device: %+v", s)
		}
		if phone.Profiles["org.fleet.vpn"] != nil {
			t.Error("the device got a VPN profile without LocalIdentifier")
		}

		incomplete := strings.Replace(string(vpnProfile("org.fleet.vpn")), `"local_identifier":"phone",`, "", 1)
		if r := f.do(f.owner, "PUT", f.path("/profiles/"+vpn.ID), device.ProfileInput{Definition: json.RawMessage(incomplete)}); r.status != 400 ||
			!strings.Contains(string(r.body), "payloads[0].vpn.local_identifier") {
			t.Errorf("updating without a local identifier: %d %s", r.status, r.body)
		}
		f.must(200, f.owner, "PUT", f.path("/profiles/"+vpn.ID), device.ProfileInput{Definition: vpnProfile("org.fleet.vpn")}, nil)
		f.poll(phone)
		if s := f.profileState(phoneID, vpn.ID); s.Status != store.ProfileInstalled {
			t.Errorf("the completed VPN on the device: %+v", s)
		}
	})
}

// TestUserEnrollmentGetsNoProfileItWouldNotEnforce: restrictions Apple
// refuses under User Enrollment (the camera) keep their profile off such a
// device, saying which; restrictions it takes (managed open-in) install.
func TestUserEnrollmentGetsNoProfileItWouldNotEnforce(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var g api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Everyone", Kind: "static"}, &g)
		restrictions := func(identifier, settings string) api.ProfileView {
			var p api.ProfileView
			f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: identifier, Definition: json.RawMessage(
				`{"name":"Restrictions","identifier":"` + identifier + `","payloads":[{"type":"restrictions","restrictions":{` + settings + `}}]}`)}, &p)
			f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
			return p
		}
		camera := restrictions("org.fleet.camera", `"allow_camera":false,"allow_open_from_managed_to_unmanaged":false`)
		openIn := restrictions("org.fleet.open-in", `"allow_open_from_managed_to_unmanaged":false`)

		f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "user_enrolled",
			Translations: []privacy.Translation{{Language: "en", Title: "Your iPhone", Body: "What we manage."}}}, nil)
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		phone, _ := f.enrol("corporate", "", g.ID, nil)
		byod, byodID := f.enrol("user_enrolled", erika.ID, g.ID, func(d *sim.Device) { userEnrolment(d); d.Account = "erika@fleet.test" })
		f.poll(phone)
		f.poll(byod)

		if phone.Profiles["org.fleet.camera"] == nil || phone.Profiles["org.fleet.open-in"] == nil {
			t.Errorf("the corporate iPhone got %v, want both", installed(phone.Profiles))
		}
		if byod.Profiles["org.fleet.camera"] != nil || byod.Profiles["org.fleet.open-in"] == nil {
			t.Errorf("the User Enrollment got %v, want the open-in restriction only", installed(byod.Profiles))
		}
		if s := f.profileState(byodID, camera.ID); s.Status != store.ProfileNotApplicable ||
			!strings.Contains(s.Error, "payloads[0].restrictions.allow_camera") || strings.Contains(s.Error, "open_from") {
			t.Errorf("the camera restriction on the User Enrollment: %+v", s)
		}
		if s := f.profileState(byodID, openIn.ID); s.Status != store.ProfileInstalled {
			t.Errorf("the open-in restriction on the User Enrollment: %+v", s)
		}
	})
}

// TestProfilesFollowThePlatformAuthenticateNamed: a Mac is judged as a Mac
// from its Authenticate on, before it has answered any DeviceInformation:
// a profile it takes is sent, one only iPhones and iPads take is not. A
// device whose Authenticate names neither product nor model is not taken
// for an iPhone: its profiles wait, unsent, until its DeviceInformation
// says what it is, and then follow that (here an iPad).
func TestProfilesFollowThePlatformAuthenticateNamed(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var g api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Everyone", Kind: "static"}, &g)
		laptop, laptopID := f.enrolUnpolled("corporate", "", g.ID, mac)
		unnamed := func(d *sim.Device) { d.Model, d.ProductName = "", "" }
		tablet, tabletID := f.enrolUnpolled("corporate", "", g.ID, unnamed)

		var vpn, clip api.ProfileView // the Mac takes the VPN; a web clip only in a user's account
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "VPN", Definition: vpnProfile("org.fleet.vpn")}, &vpn)
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Clip", Definition: webClipProfile("org.fleet.clip")}, &clip)
		for _, p := range []string{vpn.ID, clip.ID} {
			f.must(204, f.owner, "PUT", f.path("/profiles/"+p+"/groups/"+g.ID), nil, nil)
		}

		if d := f.device(f.owner, laptopID); d.Platform != "macos" || laptop.CommandsHandled != 0 {
			t.Fatalf("the Mac before its first DeviceInformation: platform %q, %d commands answered", d.Platform, laptop.CommandsHandled)
		}
		if s := f.profileState(laptopID, clip.ID); s.Status != store.ProfileNotApplicable || !strings.Contains(s.Error, "user's account") {
			t.Errorf("web clip on the Mac before its first DeviceInformation: %+v", s)
		}
		if s := f.profileState(laptopID, vpn.ID); s.Status != store.ProfilePending {
			t.Errorf("VPN on the Mac before its first DeviceInformation: %+v", s)
		}
		if d := f.device(f.owner, tabletID); d.Platform != "" {
			t.Errorf("a device that named nothing got platform %q", d.Platform)
		}
		for _, p := range []string{vpn.ID, clip.ID} {
			if s := f.profileState(tabletID, p); s.Status != store.ProfilePending || !strings.Contains(s.Error, "whether it is an iPhone, iPad or Mac") {
				t.Errorf("profile %s on the device that named nothing: %+v", p, s)
			}
		}

		tablet.Model, tablet.ProductName = "iPad14,1", "iPad14,1" // as its DeviceInformation answers
		f.poll(laptop)
		f.poll(tablet)
		if laptop.Profiles["org.fleet.vpn"] == nil || laptop.Profiles["org.fleet.clip"] != nil {
			t.Errorf("the Mac got %v, want the VPN only", installed(laptop.Profiles))
		}
		if d := f.device(f.owner, tabletID); d.Platform != "ipados" {
			t.Errorf("the device that named itself an iPad in DeviceInformation: platform %q", d.Platform)
		}
		if tablet.Profiles["org.fleet.vpn"] == nil || tablet.Profiles["org.fleet.clip"] == nil {
			t.Errorf("the iPad got %v, want both", installed(tablet.Profiles))
		}
		for _, p := range []string{vpn.ID, clip.ID} {
			if s := f.profileState(tabletID, p); s.Status != store.ProfileInstalled {
				t.Errorf("profile %s on the iPad: %+v", p, s)
			}
		}
	})
}

// TestProfileStatusKeepsNoDeviceText: where the policy shows usage logs,
// a refused profile's command keeps the device's description, which a
// later narrowing or the person's erasure strips; the profile's status,
// which outlives the command, names the error by Apple's domain and code
// alone.
func TestProfileStatusKeepsNoDeviceText(t *testing.T) {
	f := newFleet(t, storetest.OpenSQLite(t))
	_, second := f.admin("second@fleet.test", "administrator")
	f.changePolicy(second, "diagnose failing installs", privacy.Change{Ownership: privacy.Corporate, Category: privacy.UsageLogs, Mode: privacy.Show})
	var group api.GroupView
	f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Office", Kind: "static"}, &group)
	var prof api.ProfileView
	f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Office Wi-Fi", Definition: wifiProfile("org.fleet.wifi")}, &prof)
	f.must(204, f.owner, "PUT", f.path("/profiles/"+prof.ID+"/groups/"+group.ID), nil, nil)
	phone, phoneID := f.enrol("corporate", "", group.ID, func(d *sim.Device) { d.RefuseProfiles = true })
	f.poll(phone)

	var states api.List[api.DeviceProfileView]
	f.must(200, f.owner, "GET", f.path("/devices/"+phoneID+"/profiles"), nil, &states)
	if len(states.Items) != 1 || states.Items[0].Status != store.ProfileFailed || states.Items[0].Error != "MCProfileErrorDomain error 4001" {
		t.Errorf("the refused profile's status: %+v", states.Items)
	}
	var cmds api.List[api.CommandView]
	f.must(200, f.owner, "GET", f.path("/devices/"+phoneID+"/commands"), nil, &cmds)
	described := false
	for _, c := range cmds.Items {
		described = described || strings.Contains(c.ErrorChain, "could not be installed")
	}
	if !described {
		t.Errorf("no command keeps the device's description where the policy shows usage logs: %+v", cmds.Items)
	}
}

// TestUserChannelCommandTimesThroughTheAPI: the command list gives a user
// channel's command, answered while its user was logged in, by the day,
// as the default policy hides corporate usage logs.
func TestUserChannelCommandTimesThroughTheAPI(t *testing.T) {
	f := newFleet(t, storetest.OpenSQLite(t))
	laptop, laptopID := f.enrol("corporate", "", "", mac)
	erika := laptop.NewUser("erika", "Erika Mustermann")
	if err := erika.LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	var channels api.List[api.UserChannelView]
	f.must(200, f.owner, "GET", f.path("/devices/"+laptopID+"/user-channels"), nil, &channels)
	if len(channels.Items) != 1 {
		t.Fatalf("user channels: %+v", channels.Items)
	}
	f.must(201, f.owner, "POST", f.path("/devices/"+laptopID+"/commands"),
		api.CommandRequest{RequestType: "ProfileList", UserChannel: channels.Items[0].ID}, nil)
	if n, err := erika.Poll(f.ctx); err != nil || n != 1 {
		t.Fatalf("erika answered %d commands (%v)", n, err)
	}
	var cmds api.List[api.CommandView]
	f.must(200, f.owner, "GET", f.path("/devices/"+laptopID+"/commands"), nil, &cmds)
	for _, c := range cmds.Items {
		if c.UserChannel == "" {
			continue
		}
		if c.SentAt == nil || c.CompletedAt == nil || !c.SentAt.Equal(c.SentAt.UTC().Truncate(24*time.Hour)) ||
			!c.CompletedAt.Equal(c.CompletedAt.UTC().Truncate(24*time.Hour)) {
			t.Errorf("a user channel's command shows when it was delivered (%v) and answered (%v)", c.SentAt, c.CompletedAt)
		}
		return
	}
	t.Fatalf("no user channel command listed: %+v", cmds.Items)
}

// changePolicy applies changes to the collection policy, approved by
// second when they widen it.
func (f *testFleet) changePolicy(second, reason string, changes ...privacy.Change) {
	f.t.Helper()
	var pc api.PolicyChangeView
	f.must(200, f.owner, "POST", f.path("/privacy/policy-changes"), api.PolicyChangeRequest{Reason: reason, Changes: changes}, &pc)
	if pc.Approval != nil {
		f.must(200, second, "POST", f.path("/approvals/"+pc.Approval.ID+"/decision"), api.DecisionRequest{Approve: true}, &pc)
	}
	if !pc.Applied {
		f.t.Fatalf("policy change %+v: %+v", changes, pc)
	}
}
