package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func restrictionsProfile(identifier, settings string) json.RawMessage {
	return json.RawMessage(`{"name":"Restrictions","identifier":"` + identifier + `","payloads":[{"type":"restrictions","restrictions":{` + settings + `}}]}`)
}

// TestEarlierVersionLeavesWhenNewOneDoesNotApply: a restriction a User
// Enrollment took is updated with a setting it refuses (the camera). The
// installed version must go: its removal is tracked, a refused removal says
// so and is tried again at the device's next reconciliation, and only the
// device's acknowledgement makes the profile not_applicable. Meanwhile a
// policy requiring the profile does not count the old version.
func TestEarlierVersionLeavesWhenNewOneDoesNotApply(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f, g, p, byod, byodID := userEnrolledWithDataProfile(t, st)
		ladder := compliance.Ladder{{Action: compliance.StepMarkNoncompliant}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Managed data everywhere",
			Rules: compliance.Rules{RequiredProfiles: []string{p.ID}}, Ladder: &ladder}, nil)

		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{Definition: dataAndCamera}, nil)
		if s := f.profileState(byodID, p.ID); s.Status != store.ProfileNotApplicableRemovalPending || !strings.Contains(s.Error, "allow_camera") {
			t.Errorf("the new version, before the device answers: %+v", s)
		}

		byod.RefuseRemovals = true
		f.poll(byod)
		s := f.profileState(byodID, p.ID)
		if s.Status != store.ProfileNotApplicableRemovalFailed || !strings.Contains(s.Error, "refused to remove") ||
			!strings.Contains(s.Error, "allow_camera") {
			t.Errorf("after the device refused the removal: %+v", s)
		}
		if byod.Profiles["org.fleet.data"] == nil {
			t.Fatal("the simulated device removed a profile it refused to remove")
		}
		var dc api.DeviceComplianceView
		f.must(200, f.owner, "GET", f.path("/devices/"+byodID+"/compliance"), nil, &dc)
		if len(dc.Standings) != 1 || len(dc.Standings[0].Violations) != 1 ||
			!strings.Contains(dc.Standings[0].Violations[0].Reason, "cannot be installed on this kind of device") {
			t.Errorf("compliance while the earlier version is on the device: %+v", dc.Standings)
		}

		byod.RefuseRemovals = false
		f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil) // any reconciliation of the device
		if s := f.profileState(byodID, p.ID); s.Status != store.ProfileNotApplicableRemovalPending {
			t.Errorf("the refused removal was not queued again: %+v", s)
		}
		f.poll(byod)
		if s := f.profileState(byodID, p.ID); s.Status != store.ProfileNotApplicable || !strings.HasPrefix(s.Error, "not installed: ") ||
			!strings.Contains(s.Error, "allow_camera") {
			t.Errorf("after the device removed the earlier version: %+v", s)
		}
		if byod.Profiles["org.fleet.data"] != nil {
			t.Error("the earlier version is still on the device")
		}

		// Applicable again, then not, then unassigned before the device
		// answers: the removal under way ends the profile's state there.
		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{Definition: dataOnly}, nil)
		f.poll(byod)
		if s := f.profileState(byodID, p.ID); s.Status != store.ProfileInstalled || byod.Profiles["org.fleet.data"] == nil {
			t.Fatalf("the applicable version again: %+v", s)
		}
		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{Definition: dataAndCamera}, nil)
		f.must(204, f.owner, "DELETE", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
		if s := f.profileState(byodID, p.ID); s.Status != store.ProfileRemovalPending {
			t.Errorf("unassigned while its earlier version was being removed: %+v", s)
		}
		f.poll(byod)
		var states api.List[api.DeviceProfileView]
		f.must(200, f.owner, "GET", f.path("/devices/"+byodID+"/profiles"), nil, &states)
		if len(states.Items) != 0 || byod.Profiles["org.fleet.data"] != nil {
			t.Errorf("after the removal of an unassigned profile: %+v", states.Items)
		}
	})
}

// TestEarlierVersionRemovalWaitsForRoomInTheQueue: when the device's
// command queue is full, the removal of an earlier version that no longer
// applies is not queued; the state says so, and a later reconciliation,
// with room in the queue, removes it.
func TestEarlierVersionRemovalWaitsForRoomInTheQueue(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f, g, p, byod, byodID := userEnrolledWithDataProfile(t, st)
		err := st.Tx(f.ctx, func(q store.Queries) error {
			d, err := q.Devices().Get(f.ctx, f.tenant, byodID)
			if err != nil {
				return err
			}
			fill := make([]mdmproto.Request, 100) // mdm.Config's default MaxQueued
			for i := range fill {
				fill[i] = mdmproto.SecurityInfo{}
			}
			_, err = f.app.MDM.EnqueueIn(f.ctx, q, d, fill, "fill the queue", iam.SystemActor)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{Definition: dataAndCamera}, nil)
		if s := f.profileState(byodID, p.ID); s.Status != store.ProfileNotApplicableRemovalFailed || !strings.Contains(s.Error, "queue is full") {
			t.Errorf("the new version with the device's queue full: %+v", s)
		}
		f.poll(byod)
		if byod.Profiles["org.fleet.data"] == nil {
			t.Fatal("the earlier version left without a removal")
		}
		f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
		f.poll(byod)
		if s := f.profileState(byodID, p.ID); s.Status != store.ProfileNotApplicable || byod.Profiles["org.fleet.data"] != nil {
			t.Errorf("after a reconciliation with room in the queue: %+v", s)
		}
	})
}

var (
	dataOnly      = restrictionsProfile("org.fleet.data", `"allow_open_from_managed_to_unmanaged":false`)
	dataAndCamera = restrictionsProfile("org.fleet.data", `"allow_open_from_managed_to_unmanaged":false,"allow_camera":false`)
)

// userEnrolledWithDataProfile enrols a User Enrollment in a group whose
// restrictions profile (dataOnly) it has installed.
func userEnrolledWithDataProfile(t *testing.T, st store.Store) (*testFleet, api.GroupView, api.ProfileView, *sim.Device, string) {
	t.Helper()
	f := newFleet(t, st)
	var g api.GroupView
	f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Everyone", Kind: "static"}, &g)
	var p api.ProfileView
	f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Managed data", Definition: dataOnly}, &p)
	f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
	f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "user_enrolled",
		Translations: []privacy.Translation{{Language: "en", Title: "Your iPhone", Body: "What we manage."}}}, nil)
	erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
	if err != nil {
		t.Fatal(err)
	}
	byod, byodID := f.enrol("user_enrolled", erika.ID, g.ID, func(d *sim.Device) { userEnrolment(d); d.Account = "erika@fleet.test" })
	f.poll(byod)
	if s := f.profileState(byodID, p.ID); s.Status != store.ProfileInstalled || byod.Profiles["org.fleet.data"] == nil {
		t.Fatalf("the first version on the User Enrollment: %+v", s)
	}
	return f, g, p, byod, byodID
}

// TestSupervisedOnlyRestrictionsGoToSupervisedDevices: AirDrop's
// restriction binds an iPhone only when supervised. A profile setting it
// waits, unsent, until the device reports its supervision; it then goes to
// the supervised iPhone and the Mac (which applies it either way), and is
// not applicable on the unsupervised iPhone, naming the setting. A profile
// without such settings goes everywhere at once.
func TestSupervisedOnlyRestrictionsGoToSupervisedDevices(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var g api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Everyone", Kind: "static"}, &g)
		var airdrop, camera api.ProfileView
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "AirDrop",
			Definition: restrictionsProfile("org.fleet.airdrop", `"allow_airdrop":false`)}, &airdrop)
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Camera",
			Definition: restrictionsProfile("org.fleet.camera", `"allow_camera":false`)}, &camera)
		for _, p := range []string{airdrop.ID, camera.ID} {
			f.must(204, f.owner, "PUT", f.path("/profiles/"+p+"/groups/"+g.ID), nil, nil)
		}

		// Enrolled, but its DeviceInformation not answered yet.
		supervised, supervisedID := f.enrolUnpolled("corporate", "", g.ID, func(d *sim.Device) { d.Supervised = true })
		if s := f.profileState(supervisedID, airdrop.ID); s.Status != store.ProfilePending ||
			!strings.Contains(s.Error, "payloads[0].restrictions.allow_airdrop") || !strings.Contains(s.Error, "not reported yet") {
			t.Errorf("the AirDrop restriction before the device reported its supervision: %+v", s)
		}
		f.poll(supervised)

		phone, phoneID := f.enrol("corporate", "", g.ID, nil)
		laptop, _ := f.enrol("corporate", "", g.ID, mac)
		for _, d := range []*sim.Device{supervised, phone, laptop} {
			f.poll(d)
		}
		if supervised.Profiles["org.fleet.airdrop"] == nil || supervised.Profiles["org.fleet.camera"] == nil {
			t.Errorf("the supervised iPhone got %v, want both", installed(supervised.Profiles))
		}
		if s := f.profileState(supervisedID, airdrop.ID); s.Status != store.ProfileInstalled {
			t.Errorf("the AirDrop restriction on the supervised iPhone: %+v", s)
		}
		if laptop.Profiles["org.fleet.airdrop"] == nil {
			t.Errorf("the Mac got %v, want the AirDrop restriction", installed(laptop.Profiles))
		}
		if phone.Profiles["org.fleet.airdrop"] != nil || phone.Profiles["org.fleet.camera"] == nil {
			t.Errorf("the unsupervised iPhone got %v, want the camera restriction only", installed(phone.Profiles))
		}
		if s := f.profileState(phoneID, airdrop.ID); s.Status != store.ProfileNotApplicable ||
			!strings.Contains(s.Error, "payloads[0].restrictions.allow_airdrop") || !strings.Contains(s.Error, "supervised") {
			t.Errorf("the AirDrop restriction on the unsupervised iPhone: %+v", s)
		}
	})
}

// collectOS sets the tenant's collection policy for corporate devices' OS
// category: a narrowing applies at once (and purges what was kept), a
// widening once the second admin approves it.
func (f *testFleet) collectOS(mode privacy.Mode, second string) {
	f.t.Helper()
	var pc api.PolicyChangeView
	f.must(200, f.owner, "POST", f.path("/privacy/policy-changes"), api.PolicyChangeRequest{Reason: "fixture: the OS category",
		Changes: []privacy.Change{{Ownership: privacy.Corporate, Category: privacy.OS, Mode: mode}}}, &pc)
	if !pc.Applied && pc.Approval != nil {
		f.must(200, second, "POST", f.path("/approvals/"+pc.Approval.ID+"/decision"), api.DecisionRequest{Approve: true}, &pc)
	}
	if !pc.Applied {
		f.t.Fatalf("the OS category to %s: %+v", mode, pc)
	}
}

// syncDevice asks the device for its inventory and lets it answer.
func (f *testFleet) syncDevice(d *sim.Device, id string) {
	f.t.Helper()
	f.must(201, f.owner, "POST", f.path("/devices/"+id+"/actions"), api.DeviceActionRequest{Action: actions.Sync, Reason: "refresh the inventory"}, nil)
	f.poll(d)
}

// TestNewVersionWaitingForSupervisionFollowsTheReport: two iPhones hold
// a restrictions profile when the policy stops keeping their supervision;
// its new version adds AirDrop's restriction, which binds only supervised
// iPhones. The earlier version's state stays, queued or installed, saying
// the new version waits and that the policy is why. Once the policy keeps the OS category again,
// the report that brings supervision decides, with nothing else changed:
// the supervised iPhone gets the new version, the unsupervised one loses
// the earlier version and the profile is not applicable there.
func TestNewVersionWaitingForSupervisionFollowsTheReport(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		var g api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Everyone", Kind: "static"}, &g)
		var p api.ProfileView
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Lock-down",
			Definition: restrictionsProfile("org.fleet.lock", `"allow_camera":false`)}, &p)
		f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
		supervised, supervisedID := f.enrol("corporate", "", g.ID, func(d *sim.Device) { d.Supervised = true })
		phone, phoneID := f.enrol("corporate", "", g.ID, nil)
		for _, id := range []string{supervisedID, phoneID} {
			if s := f.profileState(id, p.ID); s.Status != store.ProfileInstalled || s.Version != p.Version {
				t.Fatalf("the first version on %s: %+v", id, s)
			}
		}

		f.collectOS(privacy.Drop, second)
		// A version queued, not yet installed, when the next one waits:
		// its installation does not wipe the note.
		var p1 api.ProfileView
		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{
			Definition: restrictionsProfile("org.fleet.lock", `"allow_camera":true`)}, &p1)
		var p2 api.ProfileView
		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{
			Definition: restrictionsProfile("org.fleet.lock", `"allow_camera":false,"allow_airdrop":false`)}, &p2)
		if s := f.profileState(phoneID, p.ID); s.Status != store.ProfilePending || s.Version != p1.Version || !strings.Contains(s.Error, "not sent yet") {
			t.Errorf("the queued earlier version while the new one waits: %+v", s)
		}
		f.poll(supervised)
		f.poll(phone)
		for _, id := range []string{supervisedID, phoneID} {
			s := f.profileState(id, p.ID)
			if s.Status != store.ProfileInstalled || s.Version != p1.Version || !strings.Contains(s.Error, "not sent yet") ||
				!strings.Contains(s.Error, "allow_airdrop") || !strings.Contains(s.Error, "collection policy") {
				t.Errorf("the earlier version on %s while the new one waits: %+v", id, s)
			}
		}

		f.collectOS(privacy.Show, second)
		f.syncDevice(supervised, supervisedID)
		f.syncDevice(phone, phoneID)
		if s := f.profileState(supervisedID, p.ID); s.Status != store.ProfileInstalled || s.Version != p2.Version || s.Error != "" {
			t.Errorf("the new version on the supervised iPhone after its report: %+v", s)
		}
		if !strings.Contains(string(supervised.Profiles["org.fleet.lock"]), "allowAirDrop") {
			t.Errorf("the supervised iPhone holds %q, want the new version", supervised.Profiles["org.fleet.lock"])
		}
		if s := f.profileState(phoneID, p.ID); s.Status != store.ProfileNotApplicable || !strings.Contains(s.Error, "allow_airdrop") {
			t.Errorf("the new version on the unsupervised iPhone after its report: %+v", s)
		}
		if phone.Profiles["org.fleet.lock"] != nil {
			t.Error("the earlier version is still on the unsupervised iPhone")
		}
	})
}

// TestSupervisionWaitNamesTheCollectionPolicy: where the policy drops
// the OS category, an iPhone never reports its supervision; a profile
// that waits for it says the policy is why instead of promising a report.
// When the policy keeps the category again, the report that brings
// supervision decides.
func TestSupervisionWaitNamesTheCollectionPolicy(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		f.collectOS(privacy.Drop, second)
		var g api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Everyone", Kind: "static"}, &g)
		var p api.ProfileView
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "AirDrop",
			Definition: restrictionsProfile("org.fleet.airdrop", `"allow_airdrop":false`)}, &p)
		f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
		supervised, supervisedID := f.enrol("corporate", "", g.ID, func(d *sim.Device) { d.Supervised = true })
		s := f.profileState(supervisedID, p.ID)
		if s.Status != store.ProfilePending || !strings.Contains(s.Error, "collection policy") || !strings.Contains(s.Error, "OS category") ||
			strings.Contains(s.Error, "not reported yet") {
			t.Errorf("the AirDrop restriction where supervision is not collected: %+v", s)
		}
		if supervised.Profiles["org.fleet.airdrop"] != nil {
			t.Error("the profile went to a device whose supervision is unknown")
		}

		f.collectOS(privacy.Show, second)
		// The first report brings the OS version, never kept before;
		// until Steward knows it, it does not ask for IsSupervised (iOS 6).
		f.syncDevice(supervised, supervisedID)
		f.syncDevice(supervised, supervisedID)
		if s := f.profileState(supervisedID, p.ID); s.Status != store.ProfileInstalled || supervised.Profiles["org.fleet.airdrop"] == nil {
			t.Errorf("the AirDrop restriction once the supervised iPhone reported: %+v", s)
		}
	})
}
