package server

import (
	"encoding/json"
	"strings"
	"testing"

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
