package server

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// readLog records, in order, the device locks, standings reads and policy
// reads made through a store: on PostgreSQL, writers of a device's
// standings serialise only if each locks the device row before it reads
// them and the policies.
type readLog struct{ calls []string }

func (l *readLog) add(call string) { l.calls = append(l.calls, call) }

// lockedFirst reports whether the device was locked before its standings
// and before any policy was read.
func (l *readLog) lockedFirst(deviceID string) bool {
	lock := slices.Index(l.calls, "lock "+deviceID)
	standings := slices.Index(l.calls, "standings "+deviceID)
	policy := slices.Index(l.calls, "policy")
	return lock >= 0 && standings > lock && policy > lock
}

// readAfterLock reports whether the device's standings and the policies
// were read (again) after it was locked.
func (l *readLog) readAfterLock(deviceID string) bool {
	lock := slices.Index(l.calls, "lock "+deviceID)
	return lock >= 0 && slices.Contains(l.calls[lock:], "standings "+deviceID) && slices.Contains(l.calls[lock:], "policy")
}

type loggedStore struct {
	store.Store
	log *readLog
}

func (s loggedStore) Tx(ctx context.Context, fn func(store.Queries) error) error {
	return s.Store.Tx(ctx, func(q store.Queries) error { return fn(loggedQueries{q, s.log}) })
}

type loggedQueries struct {
	store.Queries
	log *readLog
}

func (q loggedQueries) Devices() store.DeviceStore { return loggedDevices{q.Queries.Devices(), q.log} }
func (q loggedQueries) Compliance() store.ComplianceStore {
	return loggedCompliance{q.Queries.Compliance(), q.log}
}

type loggedDevices struct {
	store.DeviceStore
	log *readLog
}

func (d loggedDevices) Lock(ctx context.Context, tenantID, id string) (store.Device, error) {
	d.log.add("lock " + id)
	return d.DeviceStore.Lock(ctx, tenantID, id)
}

type loggedCompliance struct {
	store.ComplianceStore
	log *readLog
}

func (c loggedCompliance) Standings(ctx context.Context, tenantID, deviceID string) ([]store.DeviceCompliance, error) {
	c.log.add("standings " + deviceID)
	return c.ComplianceStore.Standings(ctx, tenantID, deviceID)
}

func (c loggedCompliance) GetPolicy(ctx context.Context, tenantID, id string) (store.CompliancePolicy, error) {
	c.log.add("policy")
	return c.ComplianceStore.GetPolicy(ctx, tenantID, id)
}

func (c loggedCompliance) ListPolicies(ctx context.Context, tenantID string, pg store.Page) ([]store.CompliancePolicy, error) {
	c.log.add("policy")
	return c.ComplianceStore.ListPolicies(ctx, tenantID, pg)
}

// A ladder step, a report's evaluation and a tenant-wide pass each lock
// the device before reading its standings and the policies.
func TestComplianceWritersLockTheDeviceFirst(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, phoneID := f.enrol("corporate", "", "", nil)
		failingPolicy(f, compliance.Ladder{{Action: compliance.StepNotify}, {Action: compliance.StepLock, AfterHours: 24}})
		log := &readLog{}
		logged := loggedStore{st, log}
		engine := compliance.NewEngine(logged, f.app.Privacy, f.app.Actions, f.app.Sealer, nil)

		if n, err := engine.RunDueSteps(f.ctx, 10); err != nil || n != 1 {
			t.Fatalf("the notify step: %d ran, %v", n, err)
		}
		if !log.lockedFirst(phoneID) {
			t.Errorf("a ladder step read before it locked the device: %v", log.calls)
		}

		log.calls = nil
		err := logged.Tx(f.ctx, func(q store.Queries) error {
			d, err := q.Devices().Get(f.ctx, f.tenant, phoneID)
			if err != nil {
				return err
			}
			return engine.EvaluateDevice(f.ctx, q, d, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		if !log.lockedFirst(phoneID) {
			t.Errorf("a report's evaluation read before it locked the device: %v", log.calls)
		}

		// A pass writes only to devices whose evaluation changes something:
		// a summary out of step is one.
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			return q.ManagedDevices().SetCompliance(f.ctx, f.tenant, phoneID, store.ComplianceUnknown, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		log.calls = nil
		if _, err := engine.EvaluateTenant(f.ctx, f.tenant, nil); err != nil {
			t.Fatal(err)
		}
		if !log.readAfterLock(phoneID) {
			t.Errorf("a tenant-wide pass wrote from what it read before it locked the device: %v", log.calls)
		}
		if d := f.device(f.owner, phoneID); d.Compliance != store.ComplianceNoncompliant {
			t.Errorf("the pass left the phone %q", d.Compliance)
		}
	})
}
