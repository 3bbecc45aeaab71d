package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

func newPolicy(t *testing.T, st store.Store, tenantID, name string, enabled bool) store.CompliancePolicy {
	t.Helper()
	p := store.CompliancePolicy{ID: store.NewID(), TenantID: tenantID, Name: name, Platform: "ios", Ownership: "corporate",
		Rules: []byte(`[{"fact":"os.version","op":">=","value":"17"}]`), Ladder: []byte(`[{"after":"24h","action":"notify"}]`),
		Enabled: enabled, CreatedBy: "admin-1", UpdatedBy: "admin-1", CreatedAt: at, UpdatedAt: at}
	tx(t, st, func(q store.Queries) error { return q.Compliance().CreatePolicy(context.Background(), p) })
	p.CreatedAt, p.UpdatedAt = micro(at), micro(at)
	return p
}

func testCompliancePolicies(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	on, off := newPolicy(t, st, a.ID, "Baseline", true), newPolicy(t, st, a.ID, "Strict", false)
	newPolicy(t, st, b.ID, "Baseline", true)
	dup := on
	dup.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Compliance().CreatePolicy(ctx, dup) }), store.ErrConflict, "duplicate policy name")
	r := st.Read().Compliance()
	for _, want := range []store.CompliancePolicy{on, off} {
		if got, err := r.GetPolicy(ctx, a.ID, want.ID); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("GetPolicy = %+v, %v; want %+v", got, err, want)
		}
	}
	_, err := r.GetPolicy(ctx, b.ID, on.ID)
	wantErr(t, err, store.ErrNotFound, "GetPolicy from another tenant")
	if list, err := r.ListPolicies(ctx, a.ID, store.Page{Limit: 1}); err != nil || !reflect.DeepEqual(list, []store.CompliancePolicy{on}) {
		t.Fatalf("ListPolicies = %+v, %v", list, err)
	}
	clash := off
	clash.Name = on.Name
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Compliance().UpdatePolicy(ctx, clash) }), store.ErrConflict, "rename onto a taken name")
	off.Name, off.Platform, off.Ownership, off.Enabled = "Strict v2", "", "", true
	off.GroupID = "group-1"
	off.Rules, off.Ladder, off.UpdatedAt, off.UpdatedBy = []byte(`[]`), []byte(`[{"after":"1h","action":"lock"}]`), micro(at.Add(time.Hour)), "admin-2"
	tx(t, st, func(q store.Queries) error { return q.Compliance().UpdatePolicy(ctx, off) })
	if got, err := r.GetPolicy(ctx, a.ID, off.ID); err != nil || !reflect.DeepEqual(got, off) {
		t.Fatalf("after UpdatePolicy = %+v, %v; want %+v", got, err, off)
	}
	foreign := off
	foreign.TenantID = b.ID
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Compliance().UpdatePolicy(ctx, foreign) }), store.ErrNotFound, "UpdatePolicy across tenants")

	d := managedDevice(t, st, a.ID)
	s := store.DeviceCompliance{TenantID: a.ID, DeviceID: d.ID, PolicyID: on.ID, State: store.ComplianceNoncompliant, Since: micro(at),
		EvaluatedAt: micro(at)}
	must(t, st.Read().Compliance().PutStanding(ctx, s))
	wantErr(t, st.Read().Compliance().DeletePolicy(ctx, b.ID, on.ID), store.ErrNotFound, "DeletePolicy through another tenant")
	must(t, st.Read().Compliance().DeletePolicy(ctx, a.ID, on.ID))
	if list, err := r.Standings(ctx, a.ID, d.ID); err != nil || len(list) != 0 {
		t.Fatalf("standings under a deleted policy = %+v, %v", list, err)
	}
}

func testComplianceStandings(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	p1, p2, bPolicy := newPolicy(t, st, a.ID, "one", true), newPolicy(t, st, a.ID, "two", true), newPolicy(t, st, b.ID, "one", true)
	d1, d2, bDevice := managedDevice(t, st, a.ID), managedDevice(t, st, a.ID), managedDevice(t, st, b.ID)
	standing := func(tenant, device, policy string, next time.Time) store.DeviceCompliance {
		return store.DeviceCompliance{TenantID: tenant, DeviceID: device, PolicyID: policy, State: store.ComplianceNoncompliant,
			Violations: []byte(`[{"rule":0,"reason":"old"}]`), Since: micro(at), Steps: 1, EvaluatedAt: micro(at), NextStepAt: next}
	}
	now := micro(at.Add(time.Hour))
	due1 := standing(a.ID, d1.ID, p1.ID, micro(at.Add(30*time.Minute)))
	due2 := standing(b.ID, bDevice.ID, bPolicy.ID, micro(at.Add(10*time.Minute)))
	due3 := standing(a.ID, d2.ID, p1.ID, now) // due exactly now
	later := standing(a.ID, d1.ID, p2.ID, micro(at.Add(2*time.Hour)))
	compliant := standing(a.ID, d2.ID, p2.ID, time.Time{})
	compliant.State, compliant.Violations, compliant.Steps = store.ComplianceCompliant, nil, 0
	tx(t, st, func(q store.Queries) error {
		for _, s := range []store.DeviceCompliance{due1, due2, due3, later, compliant} {
			if err := q.Compliance().PutStanding(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range []struct {
		name string
		s    store.DeviceCompliance
	}{
		{"another tenant's device", standing(a.ID, bDevice.ID, p1.ID, now)},
		{"another tenant's policy", standing(a.ID, d1.ID, bPolicy.ID, now)},
		{"overwriting from another tenant", standing(b.ID, d1.ID, p1.ID, now)},
	} {
		wantErr(t, st.Read().Compliance().PutStanding(ctx, c.s), store.ErrNotFound, "PutStanding "+c.name)
	}
	r := st.Read().Compliance()
	due, err := r.DueSteps(ctx, now, 0)
	if must(t, err); !reflect.DeepEqual(due, []store.DeviceCompliance{due2, due1, due3}) {
		t.Fatalf("DueSteps = %+v", due)
	}
	if due, err := r.DueSteps(ctx, now, 1); err != nil || !reflect.DeepEqual(due, []store.DeviceCompliance{due2}) {
		t.Fatalf("DueSteps limit 1 = %+v, %v", due, err)
	}
	due1.Steps, due1.NextStepAt = 2, time.Time{} // the step was carried out
	must(t, st.Read().Compliance().PutStanding(ctx, due1))
	want := []store.DeviceCompliance{due1, later}
	if p2.ID < p1.ID {
		want = []store.DeviceCompliance{later, due1}
	}
	if list, err := r.Standings(ctx, a.ID, d1.ID); err != nil || !reflect.DeepEqual(list, want) {
		t.Fatalf("Standings = %+v, %v; want %+v", list, err, want)
	}
	want = []store.DeviceCompliance{due1, due3}
	if d2.ID < d1.ID {
		want = []store.DeviceCompliance{due3, due1}
	}
	if list, err := r.ForPolicy(ctx, a.ID, p1.ID); err != nil || !reflect.DeepEqual(list, want) {
		t.Fatalf("ForPolicy = %+v, %v; want %+v", list, err, want)
	}
	if list, err := r.ForPolicy(ctx, b.ID, p1.ID); err != nil || len(list) != 0 {
		t.Fatalf("ForPolicy from another tenant = %+v, %v", list, err)
	}
	wantErr(t, st.Read().Compliance().DeleteStanding(ctx, b.ID, d1.ID, p1.ID), store.ErrNotFound, "DeleteStanding through another tenant")
	must(t, st.Read().Compliance().DeleteStanding(ctx, a.ID, d1.ID, p1.ID))
	wantErr(t, st.Read().Compliance().DeleteStanding(ctx, a.ID, d1.ID, p1.ID), store.ErrNotFound, "DeleteStanding twice")
}

func testComplianceHistory(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	d, bDevice := managedDevice(t, st, a.ID), managedDevice(t, st, b.ID)
	event := func(tenant, device, action string, expires time.Time) store.ComplianceEvent {
		e := store.ComplianceEvent{ID: store.NewID(), TenantID: tenant, DeviceID: device, PolicyID: "p", State: store.ComplianceNoncompliant,
			Violations: []byte(`["r1"]`), Action: action, At: micro(at), ExpiresAt: micro(expires)}
		tx(t, st, func(q store.Queries) error { return q.Compliance().AppendEvent(ctx, e) })
		return e
	}
	old := event(a.ID, d.ID, "", at.Add(time.Hour))
	mid := event(a.ID, d.ID, "notify", at.Add(2*time.Hour))
	recent := event(a.ID, d.ID, "lock", at.Add(48*time.Hour))
	bOld := event(b.ID, bDevice.ID, "", at.Add(time.Hour))
	wantErr(t, st.Read().Compliance().AppendEvent(ctx, old), store.ErrConflict, "AppendEvent with a used ID")

	r := st.Read().Compliance()
	first, err := r.History(ctx, a.ID, d.ID, store.Page{Limit: 2})
	if must(t, err); !reflect.DeepEqual(first, []store.ComplianceEvent{recent, mid}) {
		t.Fatalf("History page 1 = %+v", first)
	}
	if rest, err := r.History(ctx, a.ID, d.ID, store.Page{After: mid.ID}); err != nil || !reflect.DeepEqual(rest, []store.ComplianceEvent{old}) {
		t.Fatalf("History page 2 = %+v, %v", rest, err)
	}
	if list, err := r.History(ctx, b.ID, d.ID, store.Page{}); err != nil || len(list) != 0 {
		t.Fatalf("History from another tenant = %+v, %v", list, err)
	}
	cutoff := at.Add(3 * time.Hour)
	counts, err := st.Read().Compliance().PurgeHistory(ctx, cutoff, 1)
	if must(t, err); len(counts) != 1 || counts[0].Rows != 1 {
		t.Fatalf("PurgeHistory limit 1 = %+v", counts)
	}
	var total int
	for {
		counts, err := st.Read().Compliance().PurgeHistory(ctx, cutoff, 0)
		must(t, err)
		if len(counts) == 0 {
			break
		}
		for _, c := range counts {
			if c.Category != "compliance_history" || (c.TenantID != a.ID && c.TenantID != b.ID) {
				t.Fatalf("PurgeHistory count %+v", c)
			}
			total += c.Rows
		}
	}
	if total != 2 {
		t.Fatalf("PurgeHistory removed %d more events, want 2 (3 expired in all)", total)
	}
	if list, err := r.History(ctx, a.ID, d.ID, store.Page{}); err != nil || !reflect.DeepEqual(list, []store.ComplianceEvent{recent}) {
		t.Fatalf("History after purge = %+v, %v", list, err)
	}
	if list, _ := r.History(ctx, b.ID, bDevice.ID, store.Page{}); len(list) != 0 {
		t.Fatalf("the other tenant's expired event %s survived", bOld.ID)
	}
}

func testActions(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	d1, d2 := managedDevice(t, st, a.ID), managedDevice(t, st, a.ID)
	batch := store.NewID()
	action := func(tenant, device, state, approval string) store.DeviceAction {
		return store.DeviceAction{ID: store.NewID(), TenantID: tenant, BatchID: batch, DeviceID: device, Action: "lock",
			Reason: "lost", RequestedBy: "admin-1", ApprovalID: approval, State: state, CreatedAt: micro(at), UpdatedAt: micro(at)}
	}
	x1, x2 := action(a.ID, d1.ID, store.ActionAwaitingApproval, "appr-1"), action(a.ID, d2.ID, store.ActionAwaitingApproval, "appr-1")
	x3 := action(a.ID, d1.ID, store.ActionRefused, "")
	x3.Error, x3.RefusalCode = "device is personal", "ownership"
	foreign := action(b.ID, d1.ID, store.ActionAwaitingApproval, "appr-1")
	tx(t, st, func(q store.Queries) error { return q.Actions().Create(ctx, []store.DeviceAction{x1, x2, x3}) })
	must(t, st.Read().Actions().Create(ctx, []store.DeviceAction{foreign}))
	must(t, st.Read().Actions().Create(ctx, nil))
	again := action(a.ID, d1.ID, store.ActionQueued, "")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Actions().Create(ctx, []store.DeviceAction{again, x1}) }),
		store.ErrConflict, "Create with a used ID")
	r := st.Read().Actions()
	_, err := r.Get(ctx, a.ID, again.ID)
	wantErr(t, err, store.ErrNotFound, "an action of the refused batch")
	if got, err := r.Get(ctx, a.ID, x3.ID); err != nil || !reflect.DeepEqual(got, x3) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, x3)
	}
	_, err = r.Get(ctx, b.ID, x1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	first, err := r.Batch(ctx, a.ID, batch, store.Page{Limit: 2})
	must(t, err)
	rest, err := r.Batch(ctx, a.ID, batch, store.Page{After: first[1].ID})
	if must(t, err); !reflect.DeepEqual(append(first, rest...), []store.DeviceAction{x1, x2, x3}) {
		t.Fatalf("Batch pages = %+v + %+v", first, rest)
	}
	counts, err := r.BatchCounts(ctx, a.ID, batch)
	if must(t, err); !reflect.DeepEqual(counts, map[string]int{store.ActionAwaitingApproval: 2, store.ActionRefused: 1}) {
		t.Fatalf("BatchCounts = %v", counts)
	}
	if list, err := r.ForApproval(ctx, a.ID, "appr-1"); err != nil || !reflect.DeepEqual(list, []store.DeviceAction{x1, x2}) {
		t.Fatalf("ForApproval = %+v, %v", list, err)
	}
	if _, err := r.ForApproval(ctx, a.ID, ""); err == nil {
		t.Fatal("ForApproval with an empty approval ID listed actions")
	}

	x1.State, x1.CommandID, x1.Final, x1.UpdatedAt = store.ActionQueued, "cmd-9", true, micro(at.Add(time.Minute))
	tx(t, st, func(q store.Queries) error { return q.Actions().Update(ctx, x1) })
	x2.State, x2.Error, x2.RefusalCode, x2.UpdatedAt = store.ActionRefused, "the device is leaving", "leaving", micro(at.Add(time.Minute))
	tx(t, st, func(q store.Queries) error { return q.Actions().Update(ctx, x2) })
	if got, err := r.Get(ctx, a.ID, x2.ID); err != nil || !reflect.DeepEqual(got, x2) {
		t.Fatalf("Get after a refusing Update = %+v, %v; want %+v", got, err, x2)
	}
	x2.State, x2.Error, x2.RefusalCode = store.ActionAwaitingApproval, "", ""
	tx(t, st, func(q store.Queries) error { return q.Actions().Update(ctx, x2) })
	moved := x2
	moved.TenantID, moved.State = b.ID, store.ActionRejected
	wantErr(t, st.Read().Actions().Update(ctx, moved), store.ErrNotFound, "Update across tenants")
	if got, err := r.ByCommand(ctx, a.ID, "cmd-9"); err != nil || !reflect.DeepEqual(got, x1) {
		t.Fatalf("ByCommand = %+v, %v", got, err)
	}
	_, err = r.ByCommand(ctx, b.ID, "cmd-9")
	wantErr(t, err, store.ErrNotFound, "ByCommand from another tenant")
	// x3 is newer but queued nothing.
	if got, err := r.LastQueued(ctx, a.ID, d1.ID, "lock"); err != nil || !reflect.DeepEqual(got, x1) {
		t.Fatalf("LastQueued = %+v, %v; want %+v", got, err, x1)
	}
	_, err = r.LastQueued(ctx, a.ID, d2.ID, "lock")
	wantErr(t, err, store.ErrNotFound, "LastQueued of a device with nothing queued")
	_, err = r.LastQueued(ctx, a.ID, d1.ID, "wipe")
	wantErr(t, err, store.ErrNotFound, "LastQueued of another action")
	_, err = r.LastQueued(ctx, b.ID, d1.ID, "lock")
	wantErr(t, err, store.ErrNotFound, "LastQueued from another tenant")
	// LastPINTaken: the newest with a PIN that the device acknowledged, or
	// whose command it fetched and has not answered; not one it put off
	// (NotNow), had cancelled, or never fetched.
	var cmds []store.Command
	kept := func(state, command string, pin bool) store.DeviceAction {
		k := action(a.ID, d2.ID, state, "")
		k.BatchID, k.UpdatedAt = store.NewID(), micro(at.Add(time.Minute))
		if pin {
			k.SealedPIN = []byte("sealed PIN " + k.ID)
		}
		if command != "" {
			k.CommandID = "cmd-" + k.ID
			cmds = append(cmds, store.Command{ID: k.CommandID, TenantID: a.ID, DeviceID: d2.ID, RequestType: "DeviceLock",
				Payload: []byte("p"), State: command, RequestedBy: "admin:x", CreatedAt: micro(at)})
		}
		return k
	}
	acked := kept(store.ActionDone, store.CommandAcknowledged, true)
	fetched := kept(store.ActionQueued, store.CommandSent, true)
	newer := []store.DeviceAction{kept(store.ActionQueued, store.CommandNotNow, true), kept(store.ActionFailed, store.CommandCancelled, true),
		kept(store.ActionQueued, store.CommandQueued, true), kept(store.ActionDone, store.CommandAcknowledged, false)}
	tx(t, st, func(q store.Queries) error {
		if err := q.Actions().Create(ctx, append([]store.DeviceAction{acked, fetched}, newer...)); err != nil {
			return err
		}
		for i, c := range cmds {
			queued := c
			queued.State = store.CommandQueued
			if err := q.Commands().Enqueue(ctx, []store.Command{queued}, 100); err != nil {
				return err
			}
			if c.State != store.CommandQueued { // each sent once, a minute apart
				c.SentAt = micro(at.Add(time.Duration(i+2) * time.Minute))
				if err := q.Commands().Update(ctx, c); err != nil {
					return err
				}
			}
		}
		return nil
	})
	sentAt := func(a store.DeviceAction) time.Time {
		c, err := st.Read().Commands().Get(ctx, a.TenantID, a.CommandID)
		must(t, err)
		return c.SentAt
	}
	if got, when, err := r.LastPINTaken(ctx, a.ID, d2.ID, "lock"); err != nil || got.ID != fetched.ID || !when.Equal(sentAt(fetched)) || when.IsZero() {
		t.Fatalf("LastPINTaken = %s at %v, %v; want the fetched one (%s) at %v", got.ID, when, err, fetched.ID, sentAt(fetched))
	}
	answered, err := st.Read().Commands().Get(ctx, a.ID, fetched.CommandID)
	must(t, err)
	answered.State = store.CommandError
	tx(t, st, func(q store.Queries) error { return q.Commands().Update(ctx, answered) })
	if got, when, err := r.LastPINTaken(ctx, a.ID, d2.ID, "lock"); err != nil || !reflect.DeepEqual(got, acked) || !when.Equal(acked.UpdatedAt) {
		t.Fatalf("LastPINTaken once the fetched one failed = %+v at %v, %v; want %+v", got, when, err, acked)
	}
	_, _, err = r.LastPINTaken(ctx, a.ID, d1.ID, "lock")
	wantErr(t, err, store.ErrNotFound, "LastPINTaken of a device without one")
	_, _, err = r.LastPINTaken(ctx, b.ID, d2.ID, "lock")
	wantErr(t, err, store.ErrNotFound, "LastPINTaken from another tenant")
	_, _, err = r.LastPINTaken(ctx, a.ID, d2.ID, "wipe")
	wantErr(t, err, store.ErrNotFound, "LastPINTaken of another action")
	if n, err := r.BatchDevices(ctx, a.ID, batch); err != nil || n != 2 {
		t.Fatalf("BatchDevices = %d, %v; want 2 (two actions name one device)", n, err)
	}
	if n, err := r.BatchDevices(ctx, a.ID, "no-such-batch"); err != nil || n != 0 {
		t.Fatalf("BatchDevices of no batch = %d, %v", n, err)
	}
	counts, err = r.BatchCounts(ctx, a.ID, batch)
	if must(t, err); !reflect.DeepEqual(counts, map[string]int{store.ActionAwaitingApproval: 1, store.ActionQueued: 1, store.ActionRefused: 1}) {
		t.Fatalf("BatchCounts after Update = %v", counts)
	}
	newest, err := r.ForDevice(ctx, a.ID, d1.ID, store.Page{Limit: 1})
	must(t, err)
	older, err := r.ForDevice(ctx, a.ID, d1.ID, store.Page{After: newest[0].ID})
	if must(t, err); !reflect.DeepEqual(append(newest, older...), []store.DeviceAction{x3, x1}) {
		t.Fatalf("ForDevice pages = %+v + %+v", newest, older)
	}
}
