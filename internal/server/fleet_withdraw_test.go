package server

import (
	"slices"
	"testing"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestWithdrawnConsentRetiresThePersonalDevice: withdrawing consent erases
// the personal devices' data at once, and each enrolled Apple device is
// told on its next check-in to remove its management profile, and nothing
// else; what it reports meanwhile is not kept. Its acknowledgement, or its
// CheckOut, retires it. A device of another protocol is deprovisioned as
// before.
func TestWithdrawnConsentRetiresThePersonalDevice(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		phone, phoneID := f.enrol("personal", erika.ID, "", nil)
		tablet, tabletID := f.enrol("personal", erika.ID, "", nil)
		laptop := f.laptop(erika.ID)

		// Open commands at the withdrawal: an inventory refresh the phone
		// fetched but did not answer, and a lock still queued.
		var sync, lock actions.Batch
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"), api.DeviceActionRequest{Action: actions.Sync, Reason: "refresh the inventory"}, &sync)
		asked := nextCommand(t, f, phone)
		if asked.Command.RequestType != string(mdmproto.RequestDeviceInformation) {
			t.Fatalf("first command of the sync: %+v", asked.Command)
		}
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"), api.DeviceActionRequest{Action: actions.Lock, Reason: "lock before handing back"}, &lock)

		cs, err := f.app.Privacy.Consents(f.ctx, f.tenant, erika.ID)
		if err != nil || len(cs.Consents) == 0 {
			t.Fatalf("consents: %+v, %v", cs, err)
		}
		var certs api.List[api.CertificateView]
		for _, c := range cs.Consents {
			f.must(200, f.owner, "POST", f.path("/subjects/"+erika.ID+"/consents/withdraw"), api.WithdrawRequest{ConsentID: c.ID}, &certs)
		}
		for id, want := range map[string]string{phoneID: store.DeviceLeaving, tabletID: store.DeviceLeaving, laptop: store.DeviceDeprovisioned} {
			if got := f.device(f.owner, id).State; got != want {
				t.Errorf("device %s after the withdrawal: %q, want %q", id, got, want)
			}
			f.assertErased(id)
		}
		for _, b := range []actions.Batch{sync, lock} {
			var status api.BatchView
			f.must(200, f.owner, "GET", f.path("/actions/"+b.ID), nil, &status)
			if status.States[store.ActionFailed] != 1 {
				t.Errorf("%s action open at the withdrawal: %+v, want failed", b.Action, status.States)
			}
		}
		if r := f.do(f.owner, "POST", f.path("/devices/"+phoneID+"/actions"), api.DeviceActionRequest{Action: actions.Lock, Reason: "lock it now"}); r.status != 409 {
			t.Errorf("a lock of a leaving device: HTTP %d %s, want 409", r.status, r.body)
		}

		// The next Idle brings the removal of the management profile, only.
		removal := nextCommand(t, f, phone)
		ch, err := f.app.Store.Read().AppleChannels().Get(f.ctx, f.tenant, phoneID)
		if err != nil {
			t.Fatal(err)
		}
		if removal.Command.RequestType != string(mdmproto.RequestRemoveProfile) || removal.Command.Identifier != mdmproto.EnrolmentIdentifier(ch.EnrolmentID) {
			t.Fatalf("the leaving phone was sent %+v, want RemoveProfile of %s", removal.Command, mdmproto.EnrolmentIdentifier(ch.EnrolmentID))
		}
		// Its late answer to the inventory query keeps nothing.
		answer := map[string]any{"Status": "Acknowledged", "CommandUUID": asked.CommandUUID, "UDID": phone.UDID,
			"QueryResponses": map[string]any{"DeviceName": "Erika's iPhone", "SerialNumber": phone.Serial, "OSVersion": "18.1"}}
		if _, err := phone.Send(f.ctx, answer); err != nil {
			t.Fatalf("the inventory answer of a leaving device: %v", err)
		}
		f.assertErased(phoneID)

		ack := map[string]any{"Status": "Acknowledged", "CommandUUID": removal.CommandUUID, "UDID": phone.UDID}
		if _, err := phone.Send(f.ctx, ack); err != nil {
			t.Fatal(err)
		}
		if _, err := tablet.Checkin(f.ctx, tablet.CheckOut()); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{phoneID, tabletID} {
			if d := f.device(f.owner, id); d.State != store.DeviceRetired {
				t.Errorf("device %s after it answered: %q, want retired", id, d.State)
			}
			var acts api.List[api.ActionView]
			f.must(200, f.owner, "GET", f.path("/devices/"+id+"/actions"), nil, &acts)
			if len(acts.Items) == 0 || acts.Items[0].Action != string(actions.Retire) || acts.Items[0].State != store.ActionDone {
				t.Errorf("device %s's actions: %+v, want its retire done", id, acts.Items)
			}
			f.assertErased(id)
		}
		if _, err := phone.Send(f.ctx, map[string]any{"Status": "Idle", "UDID": phone.UDID}); err == nil {
			t.Error("a retired device is still answered")
		}
	})
}

// nextCommand sends an Idle and decodes the command it brings.
func nextCommand(t *testing.T, f *testFleet, d *sim.Device) deliveredCommand {
	t.Helper()
	out, err := d.Send(f.ctx, map[string]any{"Status": "Idle", "UDID": d.UDID})
	if err != nil {
		t.Fatal(err)
	}
	var c deliveredCommand
	if len(out) == 0 {
		return c
	}
	if _, err := plist.Unmarshal(out, &c); err != nil {
		t.Fatalf("an unreadable command: %v", err)
	}
	return c
}

type deliveredCommand struct {
	CommandUUID string
	Command     struct {
		RequestType string
		Identifier  string
		Queries     []string
	}
}

// laptop registers an enrolled personal device of another protocol than
// Apple's, as an inventory agent's would be.
func (f *testFleet) laptop(subjectID string) string {
	f.t.Helper()
	d, err := f.app.Privacy.RegisterDevice(f.ctx, f.tenant, privacy.DeviceInput{SubjectID: subjectID, Ownership: "personal", Platform: "linux"}, iam.SystemActor)
	if err != nil {
		f.t.Fatal(err)
	}
	d.State = store.DeviceEnrolled
	if err := f.app.Store.Tx(f.ctx, func(q store.Queries) error { return q.Devices().Update(f.ctx, d) }); err != nil {
		f.t.Fatal(err)
	}
	return d.ID
}

// assertErased checks a device holds no inventory and no live data key.
func (f *testFleet) assertErased(deviceID string) {
	f.t.Helper()
	q := f.app.Store.Read()
	if inv, err := q.Inventory().Current(f.ctx, f.tenant, deviceID); err != nil || len(inv) != 0 {
		f.t.Errorf("device %s holds %d inventory values (%v)", deviceID, len(inv), err)
	}
	if k, err := q.Keys().DataKeyByOwner(f.ctx, f.tenant, keys.DeviceOwner(deviceID)); err == nil && k.DestroyedAt.IsZero() {
		f.t.Errorf("device %s has a live data key", deviceID)
	}
}

// TestLeavingDeviceGetsOnlyItsRemoval: a command queued for a leaving
// device by a request that read it before the withdrawal (bulk requests
// read devices without waiting on them) is never sent, and a report
// reaching the gate for it keeps nothing and makes it no key.
func TestLeavingDeviceGetsOnlyItsRemoval(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		phone, phoneID := f.enrol("personal", erika.ID, "", nil)
		before, err := f.app.Store.Read().Devices().Get(f.ctx, f.tenant, phoneID)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := f.app.Privacy.Consents(f.ctx, f.tenant, erika.ID)
		if err != nil || len(cs.Consents) == 0 {
			t.Fatalf("consents: %+v, %v", cs, err)
		}
		if _, err := f.app.Privacy.WithdrawConsent(f.ctx, f.tenant, erika.ID, cs.Consents[0].ID, iam.Actor{Type: store.ActorSubject, ID: erika.ID}); err != nil {
			t.Fatal(err)
		}
		var late []store.Command
		if err := f.app.Store.Tx(f.ctx, func(q store.Queries) error {
			late, err = f.app.MDM.EnqueueIn(f.ctx, q, before, []mdmproto.Request{mdmproto.DeviceInformation{}}, "bulk refresh", iam.SystemActor)
			return err
		}); err != nil {
			t.Fatal(err)
		}

		removal := nextCommand(t, f, phone)
		if removal.Command.RequestType != string(mdmproto.RequestRemoveProfile) {
			t.Fatalf("first command to the leaving phone: %+v", removal.Command)
		}
		// Put off, the removal leaves the late query next in line.
		out, err := phone.Send(f.ctx, map[string]any{"Status": "NotNow", "CommandUUID": removal.CommandUUID, "UDID": phone.UDID})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 0 {
			t.Errorf("the leaving phone was sent another command: %.80s", out)
		}
		cmd, err := f.app.Store.Read().Commands().Get(f.ctx, f.tenant, late[0].ID)
		if err != nil || cmd.State != store.CommandError || cmd.Attempts != 0 {
			t.Errorf("the late query: state %q, %d attempts, %v; want failed unsent", cmd.State, cmd.Attempts, err)
		}

		var admitted privacy.Admitted
		if err := f.app.Store.Tx(f.ctx, func(q store.Queries) error {
			admitted, err = f.app.Privacy.Gate().Admit(f.ctx, q, privacy.Report{TenantID: f.tenant, DeviceID: phoneID, Source: "apple-mdm/DeviceInformation",
				Values: []privacy.Observation{{Field: "device.name", Value: "Erika's iPhone"}, {Field: "os.version", Value: "18.1"}}})
			return err
		}); err != nil {
			t.Fatalf("a report for the leaving device: %v", err)
		}
		if admitted.Stored != 0 || admitted.Encrypted != 0 {
			t.Errorf("the gate kept %+v of a leaving device's report", admitted)
		}
		f.assertErased(phoneID)
		if d := f.device(f.owner, phoneID); d.State != store.DeviceLeaving {
			t.Errorf("after it put the removal off: %q, want leaving", d.State)
		}

		// One that never comes back can be forgotten: its retire then fails.
		f.must(200, f.owner, "POST", f.path("/devices/"+phoneID+"/deprovision"), api.ReasonRequest{Reason: "the phone never came back"}, nil)
		if d := f.device(f.owner, phoneID); d.State != store.DeviceDeprovisioned {
			t.Errorf("a leaving device deprovisioned: %q", d.State)
		}
		var acts api.List[api.ActionView]
		f.must(200, f.owner, "GET", f.path("/devices/"+phoneID+"/actions"), nil, &acts)
		if len(acts.Items) == 0 || acts.Items[0].Action != string(actions.Retire) || acts.Items[0].State != store.ActionFailed {
			t.Errorf("the retire of a deprovisioned leaving device: %+v, want failed", acts.Items)
		}
	})
}

// TestWithdrawalReachesADeviceThatNamedNothing: a personal phone whose
// Authenticate named no product, its platform not known yet, is still told
// to remove its management profile when its owner withdraws consent; and
// its first inventory asks what it is even when the policy keeps no
// hardware facts, so it does not stay unknown.
func TestWithdrawalReachesADeviceThatNamedNothing(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		f.must(200, f.owner, "POST", f.path("/privacy/policy-changes"), api.PolicyChangeRequest{Reason: "no hardware facts of personal devices",
			Changes: []privacy.Change{{Ownership: privacy.Personal, Category: privacy.Hardware, Mode: privacy.Drop}}}, nil)
		phone, phoneID := f.enrolUnpolled("personal", erika.ID, "", func(d *sim.Device) { d.Model, d.ProductName = "", "" })
		if d := f.device(f.owner, phoneID); d.Platform != "" {
			t.Fatalf("a phone that named nothing: platform %q", d.Platform)
		}
		first := nextCommand(t, f, phone)
		if first.Command.RequestType != string(mdmproto.RequestDeviceInformation) ||
			!slices.Contains(first.Command.Queries, "ProductName") || !slices.Contains(first.Command.Queries, "Model") {
			t.Errorf("the first inventory of a phone of unknown platform: %+v", first)
		}

		cs, err := f.app.Privacy.Consents(f.ctx, f.tenant, erika.ID)
		if err != nil || len(cs.Consents) == 0 {
			t.Fatalf("consents: %+v, %v", cs, err)
		}
		for _, c := range cs.Consents {
			f.must(200, f.owner, "POST", f.path("/subjects/"+erika.ID+"/consents/withdraw"), api.WithdrawRequest{ConsentID: c.ID}, nil)
		}
		if got := f.device(f.owner, phoneID).State; got != store.DeviceLeaving {
			t.Fatalf("the phone after the withdrawal: %q, want leaving", got)
		}
		if removal := nextCommand(t, f, phone); removal.Command.RequestType != string(mdmproto.RequestRemoveProfile) {
			t.Errorf("the next command of the leaving phone: %+v, want its removal", removal.Command)
		}
	})
}
