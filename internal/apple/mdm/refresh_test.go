package mdm_test

import (
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// refreshCommands returns the device's commands the periodic refresh queued.
func (f *fixture) refreshCommands(deviceID string) []store.Command {
	f.t.Helper()
	cmds, err := f.st.Read().Commands().List(f.ctx, f.tenant, deviceID, store.Page{Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	return slices.DeleteFunc(cmds, func(c store.Command) bool { return c.Reason != mdm.FactsRefreshReason })
}

func (f *fixture) refresh(perTenant int) int {
	f.t.Helper()
	n, err := f.svc.RefreshSecurityFacts(f.ctx, perTenant)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// TestRefreshSecurityFacts: devices whose security and OS answers are a
// day old are asked for them again, up to the bound per run, with the OS
// queries only; not while a question waits for a device that checks in,
// nor again within the day when its answer stored nothing.
func TestRefreshSecurityFacts(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		f.svc.SetClock(func() time.Time { return f.now })
		_, a := f.polled(ts, privacy.Corporate, "")
		f.polled(ts, privacy.Corporate, "")
		f.polled(ts, privacy.Corporate, "")
		if n := f.refresh(10); n != 0 {
			t.Fatalf("devices that just answered: %d asked", n)
		}

		f.now = f.now.Add(25 * time.Hour)
		if n := f.refresh(2); n != 2 {
			t.Fatalf("a day on, bounded to 2: %d asked", n)
		}
		if n := f.refresh(2); n != 1 {
			t.Fatalf("the next run: %d asked, want the third device", n)
		}
		cmds := f.refreshCommands(a.ID)
		types := []string{}
		for _, c := range cmds {
			types = append(types, c.RequestType)
			if c.RequestType == string(mdmproto.RequestDeviceInformation) &&
				(!slices.Contains(c.Queries, "OSVersion") || slices.Contains(c.Queries, "SerialNumber")) {
				t.Errorf("the refresh's DeviceInformation asks %v; want the OS queries", c.Queries)
			}
		}
		if slices.Sort(types); !slices.Equal(types, []string{string(mdmproto.RequestDeviceInformation), string(mdmproto.RequestSecurityInfo)}) {
			t.Fatalf("the refresh queued %v", types)
		}

		// It checks in without taking them yet: still not asked twice.
		if err := st.Tx(f.ctx, func(q store.Queries) error { return q.Devices().Touch(f.ctx, f.tenant, a.ID, f.now) }); err != nil {
			t.Fatal(err)
		}
		if n := f.refresh(10); n != 0 {
			t.Errorf("with its questions open: %d asked", n)
		}
		// Answered without anything stored: asked again only a day later.
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			_, err := q.Commands().CancelOpen(f.ctx, f.tenant, a.ID, "", f.now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if n := f.refresh(10); n != 0 {
			t.Errorf("asked an hour ago: %d asked", n)
		}
		f.now = f.now.Add(25 * time.Hour)
		if n := f.refresh(10); n != 1 {
			t.Errorf("a day later: %d asked, want that device only (the others are silent with their questions open)", n)
		}
	})
}

// TestRefreshAsksWhatThePolicyKeeps: where the policy drops the security
// state, the refresh asks for the OS facts only; with the OS dropped too,
// nothing.
func TestRefreshAsksWhatThePolicyKeeps(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	f.svc.SetClock(func() time.Time { return f.now })
	_, d := f.polled(ts, privacy.Corporate, "")
	f.changePolicy(privacy.Change{Ownership: privacy.Corporate, Category: privacy.SecurityState, Mode: privacy.Drop})
	f.now = f.now.Add(25 * time.Hour)
	if n := f.refresh(10); n != 1 {
		t.Fatalf("%d asked", n)
	}
	if cmds := f.refreshCommands(d.ID); len(cmds) != 1 || cmds[0].RequestType != string(mdmproto.RequestDeviceInformation) {
		t.Errorf("with the security state dropped, the refresh queued %+v", cmds)
	}
	f.changePolicy(privacy.Change{Ownership: privacy.Corporate, Category: privacy.OS, Mode: privacy.Drop})
	f.now = f.now.Add(50 * time.Hour)
	if n := f.refresh(10); n != 0 {
		t.Errorf("with both dropped: %d asked", n)
	}
}
