package server

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// retryProfilesAt runs the hourly retry of failed profiles with the device
// service's clock at the given offset from now, and returns on how many
// devices it retried.
func (f *testFleet) retryProfilesAt(now time.Time, after time.Duration) int {
	f.t.Helper()
	f.app.Devices.SetClock(func() time.Time { return now.Add(after) })
	n, err := f.app.Devices.RetryProfiles(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// storedProfileState reads a device's profile state as stored, its
// attempts and retry included.
func (f *testFleet) storedProfileState(deviceID, profileID string) store.DeviceProfile {
	f.t.Helper()
	st, err := f.app.Store.Read().DeviceProfiles().Get(f.ctx, f.tenant, deviceID, profileID)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// fillQueue fills the device's command queue (mdm.Config's default
// MaxQueued) with inventory queries.
func (f *testFleet) fillQueue(deviceID string) {
	f.t.Helper()
	err := f.app.Store.Tx(f.ctx, func(q store.Queries) error {
		d, err := q.Devices().Get(f.ctx, f.tenant, deviceID)
		if err != nil {
			return err
		}
		fill := make([]mdmproto.Request, 100)
		for i := range fill {
			fill[i] = mdmproto.SecurityInfo{}
		}
		_, err = f.app.MDM.EnqueueIn(f.ctx, q, d, fill, "fill the queue", iam.SystemActor)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// cameraProfileFor creates a camera restriction, which any iPhone takes,
// and assigns it to a new static group.
func (f *testFleet) cameraProfileFor() (api.GroupView, api.ProfileView) {
	f.t.Helper()
	var g api.GroupView
	f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Everyone", Kind: "static"}, &g)
	var p api.ProfileView
	f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Camera",
		Definition: restrictionsProfile("org.fleet.camera", `"allow_camera":false`)}, &p)
	f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
	return g, p
}

// TestRefusedProfileIsSentAgainAfterItsBackOff: an iPhone refuses a
// profile. The hourly retry leaves it alone until its back-off is over,
// then sends it again, once; the device takes it and the count ends. A
// phone that keeps refusing is sent it after growing delays, then Steward
// stops and says so.
func TestRefusedProfileIsSentAgainAfterItsBackOff(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		g, p := f.cameraProfileFor()
		now := time.Now()
		f.app.Devices.SetClock(func() time.Time { return now })
		refuse := func(d *sim.Device) { d.RefuseProfiles = true }
		phone, phoneID := f.enrol("corporate", "", g.ID, refuse)
		stubborn, stubbornID := f.enrol("corporate", "", g.ID, refuse)
		s := f.storedProfileState(phoneID, p.ID)
		if s.Status != store.ProfileFailed || s.Attempts != 1 || !s.RetryAt.Equal(now.UTC().Truncate(time.Microsecond).Add(time.Hour)) {
			t.Fatalf("the refused profile: %+v", s)
		}
		// Admins see the count and when it is sent again.
		var states api.List[api.DeviceProfileView]
		f.must(200, f.owner, "GET", f.path("/devices/"+phoneID+"/profiles"), nil, &states)
		if len(states.Items) != 1 || states.Items[0].FailedAttempts != 1 || states.Items[0].RetryAt == nil ||
			!states.Items[0].RetryAt.Equal(s.RetryAt) {
			t.Fatalf("the refused profile through the API: %+v", states.Items)
		}

		if n := f.retryProfilesAt(now, 59*time.Minute); n != 0 || f.poll(phone) != 0 {
			t.Fatalf("retried %d devices before the back-off was over", n)
		}
		phone.RefuseProfiles = false
		if n := f.retryProfilesAt(now, time.Hour); n != 2 {
			t.Fatalf("retried %d devices once the back-off was over, want 2", n)
		}
		if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfilePending || s.CommandID == "" || !s.RetryAt.IsZero() {
			t.Errorf("the profile sent again: %+v", s)
		}
		if n := f.retryProfilesAt(now, time.Hour); n != 0 {
			t.Errorf("a second run sent the queued profile again to %d devices", n)
		}
		f.poll(phone)
		if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfileInstalled || s.Attempts != 0 || phone.Profiles["org.fleet.camera"] == nil {
			t.Errorf("the profile once the phone took it: %+v", s)
		}

		// The stubborn phone: one more refusal per retry, each delay longer.
		elapsed := time.Hour
		f.poll(stubborn)
		for i, delay := range []time.Duration{6 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour} {
			s := f.storedProfileState(stubbornID, p.ID)
			if s.Status != store.ProfileFailed || s.Attempts != i+2 || !s.RetryAt.Equal(now.UTC().Truncate(time.Microsecond).Add(elapsed+delay)) {
				t.Fatalf("after refusal %d: %+v", i+2, s)
			}
			if n := f.retryProfilesAt(now, elapsed+delay-time.Minute); n != 0 {
				t.Fatalf("refusal %d retried before its delay of %s", i+2, delay)
			}
			elapsed += delay
			if n := f.retryProfilesAt(now, elapsed); n != 1 {
				t.Fatalf("refusal %d not retried after its delay of %s", i+2, delay)
			}
			f.poll(stubborn)
		}
		s = f.storedProfileState(stubbornID, p.ID)
		if s.Status != store.ProfileFailed || s.Attempts != 6 || !s.RetryAt.IsZero() || !strings.Contains(s.Error, "Steward stopped retrying after 6 failed attempts") {
			t.Fatalf("after the last attempt: %+v", s)
		}
		var stopped api.List[api.DeviceProfileView]
		f.must(200, f.owner, "GET", f.path("/devices/"+stubbornID+"/profiles"), nil, &stopped)
		if len(stopped.Items) != 1 || stopped.Items[0].FailedAttempts != 6 || stopped.Items[0].RetryAt != nil {
			t.Fatalf("after the last attempt, through the API: %+v", stopped.Items)
		}
		if n := f.retryProfilesAt(now, elapsed+365*24*time.Hour); n != 0 || f.poll(stubborn) != 0 {
			t.Errorf("retried %d devices after Steward stopped", n)
		}

		// A new version starts the count again.
		stubborn.RefuseProfiles = false
		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{
			Definition: restrictionsProfile("org.fleet.camera", `"allow_camera":true`)}, nil)
		f.poll(stubborn)
		if s := f.storedProfileState(stubbornID, p.ID); s.Status != store.ProfileInstalled || s.Attempts != 0 {
			t.Errorf("the new version on the phone that refused the last: %+v", s)
		}
	})
}

// TestProfileRetryWaitsForRoomInTheQueue: a profile that could not be
// queued (the device's queue full) fails and is queued by the hourly retry
// once there is room, with no change by an admin.
func TestProfileRetryWaitsForRoomInTheQueue(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		g, p := f.cameraProfileFor()
		phone, phoneID := f.enrol("corporate", "", "", nil)
		f.fillQueue(phoneID)
		now := time.Now()
		f.must(200, f.owner, "POST", f.path("/groups/"+g.ID+"/members"), api.MembersRequest{Add: []string{phoneID}}, nil)
		if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfileFailed || !strings.Contains(s.Error, "queue is full") || s.RetryAt.IsZero() {
			t.Fatalf("the profile with the queue full: %+v", s)
		}
		f.poll(phone)
		if n := f.retryProfilesAt(now, 2*time.Hour); n != 1 {
			t.Fatalf("retried %d devices, want 1", n)
		}
		f.poll(phone)
		if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfileInstalled || phone.Profiles["org.fleet.camera"] == nil {
			t.Errorf("the profile once the queue had room: %+v", s)
		}
	})
}

// TestRefusedRemovalsAreSentAgain: a User Enrollment refuses to remove
// an earlier version that no longer applies, and later to remove an
// unassigned profile; the hourly retry sends each removal again once its
// back-off is over. A removal the full queue refuses at the retry counts as
// one more failure.
func TestRefusedRemovalsAreSentAgain(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f, g, p, byod, byodID := userEnrolledWithDataProfile(t, st)
		now := time.Now()
		f.app.Devices.SetClock(func() time.Time { return now })
		byod.RefuseRemovals = true
		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{Definition: dataAndCamera}, nil)
		f.poll(byod)
		if s := f.storedProfileState(byodID, p.ID); s.Status != store.ProfileNotApplicableRemovalFailed || s.Attempts != 1 || s.RetryAt.IsZero() {
			t.Fatalf("the refused removal of the earlier version: %+v", s)
		}
		byod.RefuseRemovals = false
		if n := f.retryProfilesAt(now, time.Hour); n != 1 {
			t.Fatalf("retried %d devices, want 1", n)
		}
		f.poll(byod)
		if s := f.storedProfileState(byodID, p.ID); s.Status != store.ProfileNotApplicable || s.Attempts != 0 || byod.Profiles["org.fleet.data"] != nil {
			t.Fatalf("the earlier version after the retry: %+v", s)
		}

		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{Definition: dataOnly}, nil)
		f.poll(byod)
		byod.RefuseRemovals = true
		f.must(204, f.owner, "DELETE", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
		f.poll(byod)
		if s := f.storedProfileState(byodID, p.ID); s.Status != store.ProfileRemovalFailed || s.Attempts != 1 || s.RetryAt.IsZero() {
			t.Fatalf("the refused removal of the unassigned profile: %+v", s)
		}
		f.fillQueue(byodID)
		if n := f.retryProfilesAt(now, 2*time.Hour); n != 1 {
			t.Fatalf("retried %d devices, want 1", n)
		}
		s := f.storedProfileState(byodID, p.ID)
		if s.Status != store.ProfileRemovalFailed || s.Attempts != 2 || !strings.Contains(s.Error, "not queued") ||
			!s.RetryAt.Equal(now.UTC().Truncate(time.Microsecond).Add(8*time.Hour)) {
			t.Fatalf("the removal retried with the queue full: %+v", s)
		}
		byod.RefuseRemovals = false
		f.poll(byod)
		f.retryProfilesAt(now, 8*time.Hour)
		f.poll(byod)
		var states api.List[api.DeviceProfileView]
		f.must(200, f.owner, "GET", f.path("/devices/"+byodID+"/profiles"), nil, &states)
		if len(states.Items) != 0 || byod.Profiles["org.fleet.data"] != nil {
			t.Errorf("after the retried removal of the unassigned profile: %+v", states.Items)
		}
	})
}

// TestProfileRetrySendsNothingToALeavingDevice: a personal phone refused
// a profile, then its employee withdrew consent. The hourly retry sends the
// leaving phone nothing and ends its retries.
func TestProfileRetrySendsNothingToALeavingDevice(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		g, p := f.cameraProfileFor()
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		phone, phoneID := f.enrol("personal", erika.ID, g.ID, func(d *sim.Device) { d.RefuseProfiles = true })
		if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfileFailed || s.RetryAt.IsZero() {
			t.Fatalf("the refused profile: %+v", s)
		}
		cs, err := f.app.Privacy.Consents(f.ctx, f.tenant, erika.ID)
		if err != nil || len(cs.Consents) == 0 {
			t.Fatalf("consents: %+v, %v", cs, err)
		}
		if _, err := f.app.Privacy.WithdrawConsent(f.ctx, f.tenant, erika.ID, cs.Consents[0].ID, iam.Actor{Type: store.ActorSubject, ID: erika.ID}); err != nil {
			t.Fatal(err)
		}
		if d := f.device(f.owner, phoneID); d.State != store.DeviceLeaving {
			t.Fatalf("after the withdrawal the phone is %q, want leaving", d.State)
		}
		before, err := st.Read().DeviceProfiles().Get(f.ctx, f.tenant, phoneID, p.ID)
		if err != nil || before.RetryAt.IsZero() {
			t.Fatalf("the leaving phone's state before the retry: %+v, %v", before, err)
		}
		phone.RefuseProfiles = false
		f.retryProfilesAt(time.Now(), 2*time.Hour)
		f.poll(phone)
		if phone.Profiles["org.fleet.camera"] != nil {
			t.Error("the retry sent the profile to a leaving phone")
		}
		if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfileFailed || !s.RetryAt.IsZero() {
			t.Errorf("the leaving phone's state after the retry: %+v", s)
		}
	})
}

// TestNotApplicableProfileFollowsSupervision: an iPhone enrolled without
// supervision does not take AirDrop's restriction. Once it reports that it
// is supervised (set up again through Automated Device Enrollment), the
// report decides again and the profile goes to it. A report of the same
// supervision decides the same and changes nothing.
func TestNotApplicableProfileFollowsSupervision(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var g api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Everyone", Kind: "static"}, &g)
		var p api.ProfileView
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "AirDrop",
			Definition: restrictionsProfile("org.fleet.airdrop", `"allow_airdrop":false`)}, &p)
		f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
		phone, phoneID := f.enrol("corporate", "", g.ID, nil)
		f.poll(phone)
		if s := f.profileState(phoneID, p.ID); s.Status != store.ProfileNotApplicable {
			t.Fatalf("the AirDrop restriction on the unsupervised iPhone: %+v", s)
		}

		// Supervision dropped by the policy, then kept again: the report
		// that brings it back decides again, the same, and leaves the
		// decision's time alone.
		_, second := f.admin("second@fleet.test", "administrator")
		decided := f.profileState(phoneID, p.ID).UpdatedAt
		f.collectOS(privacy.Drop, second)
		f.collectOS(privacy.Show, second)
		f.syncDevice(phone, phoneID)
		f.syncDevice(phone, phoneID)
		if s := f.profileState(phoneID, p.ID); s.Status != store.ProfileNotApplicable || !s.UpdatedAt.Equal(decided) {
			t.Errorf("the AirDrop restriction once the unsupervised iPhone reported it again: %+v, decided at %s", s, decided)
		}

		phone.Supervised = true
		f.syncDevice(phone, phoneID)
		f.poll(phone)
		if s := f.profileState(phoneID, p.ID); s.Status != store.ProfileInstalled || phone.Profiles["org.fleet.airdrop"] == nil {
			t.Errorf("the AirDrop restriction once the iPhone reported it is supervised: %+v", s)
		}
	})
}

// cancelProfileCommand has the owner cancel the command the device's
// profile state waits on, and returns the state that follows.
func (f *testFleet) cancelProfileCommand(deviceID, profileID string) store.DeviceProfile {
	f.t.Helper()
	s := f.storedProfileState(deviceID, profileID)
	if s.CommandID == "" {
		f.t.Fatalf("no command to cancel: %+v", s)
	}
	f.must(200, f.owner, "POST", f.path("/devices/"+deviceID+"/commands/"+s.CommandID+"/cancel"),
		api.CancelCommandRequest{Reason: "wrong group"}, nil)
	return f.storedProfileState(deviceID, profileID)
}

// TestCancelledProfileCommandsAreNotRetried: an admin cancels a queued
// install, and later a queued removal. Each state fails saying so, and the
// hourly retry never sends either again: it would override the admin.
func TestCancelledProfileCommandsAreNotRetried(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		g, p := f.cameraProfileFor()
		now := time.Now()
		f.app.Devices.SetClock(func() time.Time { return now })
		holder, holderID := f.enrol("corporate", "", g.ID, nil)
		if s := f.storedProfileState(holderID, p.ID); s.Status != store.ProfileInstalled {
			t.Fatalf("the profile on the phone in the group: %+v", s)
		}
		phone, phoneID := f.enrol("corporate", "", "", nil)
		f.must(200, f.owner, "POST", f.path("/groups/"+g.ID+"/members"), api.MembersRequest{Add: []string{phoneID}}, nil)
		s := f.cancelProfileCommand(phoneID, p.ID)
		if s.Status != store.ProfileFailed || !strings.Contains(s.Error, "cancelled by an administrator") || !s.RetryAt.IsZero() || s.Attempts != 0 {
			t.Fatalf("the cancelled install: %+v", s)
		}

		f.must(204, f.owner, "DELETE", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
		s = f.cancelProfileCommand(holderID, p.ID)
		if s.Status != store.ProfileRemovalFailed || !strings.Contains(s.Error, "cancelled by an administrator") || !s.RetryAt.IsZero() || s.Attempts != 0 {
			t.Fatalf("the cancelled removal: %+v", s)
		}

		for _, after := range []time.Duration{time.Hour, 6 * time.Hour, 365 * 24 * time.Hour} {
			if n := f.retryProfilesAt(now, after); n != 0 {
				t.Fatalf("%s later the retry sent cancelled commands again to %d devices", after, n)
			}
		}
		f.poll(phone)
		f.poll(holder)
		if phone.Profiles["org.fleet.camera"] != nil || holder.Profiles["org.fleet.camera"] == nil {
			t.Errorf("after the retries the phone holds %v and the holder %v, as the admin left them", installed(phone.Profiles), installed(holder.Profiles))
		}
	})
}

// TestCancelledRemovalOfAnEarlierVersionIsNotRetried: a new version no
// longer applies to a User Enrollment, whose earlier version's removal an
// admin cancels. The hourly retry does not send the removal again.
func TestCancelledRemovalOfAnEarlierVersionIsNotRetried(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f, _, p, byod, byodID := userEnrolledWithDataProfile(t, st)
		now := time.Now()
		f.app.Devices.SetClock(func() time.Time { return now })
		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{Definition: dataAndCamera}, nil)
		s := f.cancelProfileCommand(byodID, p.ID)
		if s.Status != store.ProfileNotApplicableRemovalFailed || !strings.Contains(s.Error, "cancelled by an administrator") || !s.RetryAt.IsZero() {
			t.Fatalf("the cancelled removal of the earlier version: %+v", s)
		}
		if n := f.retryProfilesAt(now, 365*24*time.Hour); n != 0 {
			t.Fatalf("the retry sent the cancelled removal again to %d devices", n)
		}
		f.poll(byod)
		if byod.Profiles["org.fleet.data"] == nil {
			t.Error("the earlier version was removed after all")
		}
	})
}

// TestRefusedRemovalWaitingForSupervisionIsNotRetriedHourly: an iPhone
// refuses to remove a profile while it is assigned again, in a version
// that needs supervision, which the collection policy no longer keeps. The
// retry can send nothing until supervision is known: it ends the removal's
// retries rather than falling due every hour. Once the policy keeps the OS
// category again, the report decides, and the earlier version goes.
func TestRefusedRemovalWaitingForSupervisionIsNotRetriedHourly(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		g, p := f.cameraProfileFor()
		phone, phoneID := f.enrol("corporate", "", g.ID, nil)
		if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfileInstalled {
			t.Fatalf("the first version: %+v", s)
		}
		f.collectOS(privacy.Drop, second)
		now := time.Now()
		f.app.Devices.SetClock(func() time.Time { return now })
		phone.RefuseRemovals = true
		f.must(204, f.owner, "DELETE", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{
			Definition: restrictionsProfile("org.fleet.camera", `"allow_camera":false,"allow_airdrop":false`)}, nil)
		f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+g.ID), nil, nil)
		f.poll(phone)
		if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfileRemovalFailed || s.RetryAt.IsZero() {
			t.Fatalf("the refused removal: %+v", s)
		}

		if n := f.retryProfilesAt(now, time.Hour); n != 1 {
			t.Fatalf("the first retry reconciled %d devices, want 1", n)
		}
		if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfileRemovalFailed || !s.RetryAt.IsZero() {
			t.Errorf("the refused removal after a retry that could send nothing: %+v", s)
		}
		for _, after := range []time.Duration{2 * time.Hour, 3 * time.Hour} {
			if n := f.retryProfilesAt(now, after); n != 0 {
				t.Errorf("%s later the retry reconciled %d devices again, sending nothing", after, n)
			}
		}
		if n := f.poll(phone); n != 0 {
			t.Errorf("the retries sent the phone %d commands", n)
		}

		phone.RefuseRemovals = false
		f.collectOS(privacy.Show, second)
		f.syncDevice(phone, phoneID)
		f.poll(phone)
		if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfileNotApplicable || phone.Profiles["org.fleet.camera"] != nil {
			t.Errorf("once the unsupervised phone reported: %+v, holding %v", s, installed(phone.Profiles))
		}
	})
}

// TestRetryWaitsForAnEditOfItsProfile: on PostgreSQL, the hourly retry
// holds the profiles it sends again against edits, so an edit under way
// commits first and the retry sends the edited version; without the hold it
// read the earlier version and its state named a version the profile no
// longer has. (SQLite's single writer serialises them anyway.)
func TestRetryWaitsForAnEditOfItsProfile(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f := newFleet(t, st)
	g, p := f.cameraProfileFor()
	now := time.Now()
	f.app.Devices.SetClock(func() time.Time { return now })
	phone, phoneID := f.enrol("corporate", "", g.ID, func(d *sim.Device) { d.RefuseProfiles = true })
	if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfileFailed || s.RetryAt.IsZero() {
		t.Fatalf("the refused profile: %+v", s)
	}
	phone.RefuseProfiles = false

	// An edit writes the profile's new version and has not committed yet.
	edited, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	var wg sync.WaitGroup
	var editErr, retryErr error
	newDigest := store.NewID()
	wg.Go(func() {
		editErr = st.Tx(f.ctx, func(q store.Queries) error {
			cp, err := q.Profiles().Get(f.ctx, f.tenant, p.ID)
			if err != nil {
				return err
			}
			cp.Digest = newDigest
			if err := q.Profiles().Update(f.ctx, cp); err != nil {
				return err
			}
			close(edited)
			<-release
			return nil
		})
	})
	<-edited
	wg.Go(func() {
		f.app.Devices.SetClock(func() time.Time { return now.Add(time.Hour) })
		_, retryErr = f.app.Devices.RetryProfiles(f.ctx)
	})
	storetest.AwaitLockWaiters(t, st, 1) // the retry waits for the edit
	releaseOnce.Do(func() { close(release) })
	wg.Wait()
	if editErr != nil || retryErr != nil {
		t.Fatalf("the edit: %v; the retry: %v", editErr, retryErr)
	}
	if s := f.storedProfileState(phoneID, p.ID); s.Status != store.ProfilePending || s.Digest != newDigest {
		t.Errorf("the retried state after the edit: %+v, want the edited version (%s) pending", s, newDigest)
	}
}
