package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// departedRows is what a device leaves in the tables that go with it.
type departedRows struct {
	device                                              bool
	channel, userChannels, enrolment, commands, actions int
	groups, profiles, standings, events                 int
}

func (r departedRows) children() int {
	return r.channel + r.userChannels + r.enrolment + r.commands + r.actions + r.groups + r.profiles + r.standings + r.events
}

// CheckPurgeDeprovisionedInRowBatches checks DeviceStore.PurgeDeprovisioned
// bounds every call by rows, not devices: a departed device's own rows go
// in batches of at most the limit, each counted under its category, and
// the device row only once none is left, so that every state between two
// calls is one the next call finishes. Devices still managed, or retired
// after the cutoff, keep everything.
func CheckPurgeDeprovisionedInRowBatches(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	type management struct{ group, profile, policy string }
	of := map[string]management{}
	for _, tn := range []string{a.ID, b.ID} {
		of[tn] = management{newGroup(t, st, tn, "fleet").ID, newProfile(t, st, tn, "com.example.wifi").ID,
			newPolicy(t, st, tn, "baseline", true).ID}
	}
	// fill gives d a channel, a user channel, its enrolment, commands
	// finished commands and, when managed is set, a row in every
	// management table.
	fill := func(d store.Device, commands int, managed bool) {
		enrolment := "enr-" + d.ID
		tx(t, st, func(q store.Queries) error {
			if err := q.Enrolments().Create(ctx, store.Enrolment{ID: enrolment, TenantID: d.TenantID, Ownership: "corporate",
				NoticeVersion: 1, SecretHash: []byte(enrolment), State: store.EnrolmentUsed, CreatedBy: "admin:x", DeviceID: d.ID,
				CreatedAt: micro(at), ExpiresAt: micro(at), UsedAt: micro(at)}); err != nil {
				return err
			}
			if err := q.AppleChannels().Create(ctx, store.AppleChannel{DeviceID: d.ID, TenantID: d.TenantID,
				CertFingerprint: []byte("fp-" + d.ID), CertNotAfter: micro(at), EnrolmentID: enrolment,
				ChannelIndex: []byte("ix-" + d.ID), CreatedAt: micro(at), UpdatedAt: micro(at)}); err != nil {
				return err
			}
			if _, err := q.AppleUserChannels().Open(ctx, store.AppleUserChannel{ID: store.NewID(), TenantID: d.TenantID,
				DeviceID: d.ID, UserIndex: []byte("user"), AccountIndex: []byte("account"), UpdatedAt: micro(at)}); err != nil {
				return err
			}
			var cmds []store.Command
			for range commands {
				cmds = append(cmds, store.Command{ID: store.NewID(), TenantID: d.TenantID, DeviceID: d.ID, RequestType: "ProfileList",
					Payload: []byte("p"), State: store.CommandCancelled, RequestedBy: "admin:x", CreatedAt: micro(at)})
			}
			if err := q.Commands().Enqueue(ctx, cmds, commands+1); err != nil || !managed {
				return err
			}
			m := of[d.TenantID]
			if _, err := q.Groups().AddMembers(ctx, d.TenantID, m.group, []string{d.ID}, micro(at)); err != nil {
				return err
			}
			if err := q.DeviceProfiles().Put(ctx, store.DeviceProfile{TenantID: d.TenantID, DeviceID: d.ID, ProfileID: m.profile,
				Digest: "digest", Status: "installed", UpdatedAt: micro(at)}); err != nil {
				return err
			}
			if err := q.Compliance().PutStanding(ctx, store.DeviceCompliance{TenantID: d.TenantID, DeviceID: d.ID, PolicyID: m.policy,
				State: "compliant", Since: micro(at), EvaluatedAt: micro(at)}); err != nil {
				return err
			}
			if err := q.Compliance().AppendEvent(ctx, store.ComplianceEvent{ID: store.NewID(), TenantID: d.TenantID, DeviceID: d.ID,
				PolicyID: m.policy, State: "compliant", At: micro(at), ExpiresAt: micro(at.Add(365 * 24 * time.Hour))}); err != nil {
				return err
			}
			return q.Actions().Create(ctx, []store.DeviceAction{{ID: store.NewID(), TenantID: d.TenantID, BatchID: store.NewID(),
				DeviceID: d.ID, Action: "lock", Reason: "lost on the train", RequestedBy: "admin:x", State: store.ActionDone,
				CreatedAt: micro(at), UpdatedAt: micro(at)}})
		})
	}
	retire := func(d store.Device, when time.Time) store.Device {
		d.State, d.DeprovisionedAt = store.DeviceDeprovisioned, micro(when)
		tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, d) })
		return d
	}
	left := func(d store.Device) departedRows {
		t.Helper()
		r := departedRows{}
		q := st.Read()
		_, err := q.Devices().Get(ctx, d.TenantID, d.ID)
		r.device = err == nil
		if _, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID); err == nil {
			r.channel = 1
		}
		users, err := q.AppleUserChannels().List(ctx, d.TenantID, d.ID)
		must(t, err)
		r.userChannels = len(users)
		if _, err := q.Enrolments().Get(ctx, d.TenantID, "enr-"+d.ID); err == nil {
			r.enrolment = 1
		}
		cmds, err := q.Commands().List(ctx, d.TenantID, d.ID, store.Page{Limit: 500})
		must(t, err)
		r.commands = len(cmds)
		actions, err := q.Actions().ForDevice(ctx, d.TenantID, d.ID, store.Page{Limit: 500})
		must(t, err)
		r.actions = len(actions)
		groups, err := q.Groups().GroupsOf(ctx, d.TenantID, d.ID)
		must(t, err)
		r.groups = len(groups)
		profiles, err := q.DeviceProfiles().ForDevice(ctx, d.TenantID, d.ID)
		must(t, err)
		r.profiles = len(profiles)
		standings, err := q.Compliance().Standings(ctx, d.TenantID, d.ID)
		must(t, err)
		r.standings = len(standings)
		events, err := q.Compliance().History(ctx, d.TenantID, d.ID, store.Page{Limit: 500})
		must(t, err)
		r.events = len(events)
		return r
	}
	full := departedRows{device: true, channel: 1, userChannels: 1, enrolment: 1, commands: 7, actions: 1, groups: 1,
		profiles: 1, standings: 1, events: 1}

	// Oldest departure first: first, then second, then b's.
	first, second := newDevice(t, st, a.ID, "", "corporate"), newDevice(t, st, a.ID, "", "corporate")
	managed, recent := newDevice(t, st, a.ID, "", "corporate"), newDevice(t, st, b.ID, "", "corporate")
	other := newDevice(t, st, b.ID, "", "corporate")
	for _, d := range []store.Device{first, second, managed, recent} {
		fill(d, full.commands, true)
	}
	fill(other, 2, false)
	cutoff := at.Add(time.Hour)
	first, second = retire(first, at), retire(second, at.Add(time.Second))
	other, recent = retire(other, at.Add(2*time.Second)), retire(recent, cutoff.Add(time.Second))
	if got := left(first); got != full {
		t.Fatalf("the fixture left %+v, want %+v", got, full)
	}

	const limit = 4
	total := map[string]int{}
	calls := 0
	for ; ; calls++ {
		if calls > 20 {
			t.Fatalf("the purge did not end after %d calls: %v", calls, total)
		}
		var counts []store.PurgeCount
		tx(t, st, func(q store.Queries) error {
			var err error
			counts, err = q.Devices().PurgeDeprovisioned(ctx, cutoff, limit)
			return err
		})
		n := 0
		for _, c := range counts {
			n += c.Rows
			total[c.TenantID+"/"+c.Category] += c.Rows
		}
		if n > limit {
			t.Fatalf("call %d removed %d rows, more than its limit of %d: %+v", calls, n, limit, counts)
		}
		for _, d := range []store.Device{first, second, other} {
			if r := left(d); !r.device && r.children() > 0 {
				t.Fatalf("call %d removed device %s before its rows: %+v left", calls, d.ID, r)
			}
		}
		if calls == 0 {
			if r := left(first); !r.device || r.commands != full.commands-limit || left(second) != full {
				t.Fatalf("the first call did not start with the oldest departure's commands: %+v, %+v", r, left(second))
			}
		}
		if n == 0 {
			break
		}
	}
	for _, d := range []store.Device{first, second, other} {
		if r := left(d); r != (departedRows{}) {
			t.Fatalf("retired device %s kept %+v", d.ID, r)
		}
	}
	for _, d := range []store.Device{managed, recent} {
		if r := left(d); r != full {
			t.Fatalf("device %s, managed or retired after the cutoff, lost rows: %+v left", d.ID, r)
		}
	}
	want := map[string]int{
		a.ID + "/deprovisioned_devices": 2, b.ID + "/deprovisioned_devices": 1,
		a.ID + "/deprovisioned_device_commands": 2 * full.commands, b.ID + "/deprovisioned_device_commands": 2,
		a.ID + "/deprovisioned_device_channels": 2, b.ID + "/deprovisioned_device_channels": 1,
		a.ID + "/deprovisioned_device_user_channels": 2, b.ID + "/deprovisioned_device_user_channels": 1,
		a.ID + "/deprovisioned_device_enrolments": 2, b.ID + "/deprovisioned_device_enrolments": 1,
		a.ID + "/deprovisioned_device_actions": 2, a.ID + "/deprovisioned_device_group_members": 2,
		a.ID + "/deprovisioned_device_profiles": 2, a.ID + "/deprovisioned_device_compliance": 2,
		a.ID + "/deprovisioned_device_compliance_events": 2,
	}
	rows := 0
	for k, n := range want {
		rows += n
		if total[k] != n {
			t.Errorf("%s: counted %d, want %d", k, total[k], n)
		}
	}
	if len(total) != len(want) {
		t.Errorf("counted %v, want %v", total, want)
	}
	if min := (rows + limit - 1) / limit; calls < min {
		t.Errorf("%d rows went in %d calls of at most %d", rows, calls, limit)
	}
	if _, err := st.Read().Devices().Get(ctx, a.ID, first.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a purged device is still there: %v", err)
	}
}
