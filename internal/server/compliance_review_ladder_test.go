package server

import (
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// failingPolicy creates a policy every device fails, with ladder.
func failingPolicy(f *testFleet, ladder compliance.Ladder) string {
	var pol api.PolicyView
	f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Platform: "ios", Name: "Current OS",
		Rules: compliance.Rules{MinOSVersion: "99.0"}, Ladder: &ladder}, &pol)
	return pol.ID
}

func editLadder(f *testFleet, policyID string, ladder compliance.Ladder) {
	f.must(200, f.owner, "PUT", f.path("/compliance/policies/"+policyID), compliance.PolicyInput{Platform: "ios", Name: "Current OS",
		Rules: compliance.Rules{MinOSVersion: "99.0"}, Ladder: &ladder}, nil)
}

func actionsOn(t *testing.T, st store.Store, f *testFleet, deviceID string) []string {
	t.Helper()
	acts, err := st.Read().Actions().ForDevice(f.ctx, f.tenant, deviceID, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(acts))
	for i, a := range acts {
		out[i] = a.Action
	}
	return out
}

// A step added before one already carried out is passed over, and the
// step carried out is not carried out again.
func TestComplianceLadderEditDoesNotRepeatStepTaken(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.enrol("corporate", "", "", nil)
		policyID := failingPolicy(f, compliance.Ladder{{Action: compliance.StepLock}})
		if n, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil || n != 1 {
			t.Fatalf("the lock step: %d ran, %v", n, err)
		}
		f.poll(phone)
		editLadder(f, policyID, compliance.Ladder{{Action: compliance.StepNotify}, {Action: compliance.StepLock}})
		for range 3 {
			if n, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil || n != 0 {
				t.Fatalf("steps ran after the edit: %d, %v", n, err)
			}
		}
		if n := lockCount(t, st, f, phoneID); n != 1 {
			t.Errorf("one lock step, %d locks: %v", n, actionsOn(t, st, f, phoneID))
		}
		s, err := st.Read().Compliance().Standings(f.ctx, f.tenant, phoneID)
		if err != nil || len(s) != 1 {
			t.Fatalf("after the edit: %d standings, %v", len(s), err)
		}
		if s[0].Steps != 2 || !s[0].NextStepAt.IsZero() {
			t.Errorf("after the edit: %d steps counted, next at %v; want both, none due", s[0].Steps, s[0].NextStepAt)
		}
	})
}

// Removing a step already taken does not skip the next one: the lock still
// comes before the retire.
func TestComplianceLadderEditDoesNotSkipNextStep(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, phoneID := f.enrol("corporate", "", "", nil)
		policyID := failingPolicy(f, compliance.Ladder{{Action: compliance.StepNotify}, {Action: compliance.StepLock, AfterHours: 24}})
		if n, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil || n != 1 {
			t.Fatalf("the notify step: %d ran, %v", n, err)
		}
		editLadder(f, policyID, compliance.Ladder{{Action: compliance.StepLock, AfterHours: 24}, {Action: compliance.StepRetire, AfterHours: 48}})
		later := time.Now().Add(72 * time.Hour)
		f.app.Compliance.SetClock(func() time.Time { return later })
		if n, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil || n != 1 {
			t.Fatalf("the first step after the edit: %d ran, %v", n, err)
		}
		if got := actionsOn(t, st, f, phoneID); len(got) != 1 || got[0] != string(actions.Lock) {
			t.Fatalf("the first step after the edit carried out %v; want the lock", got)
		}
		if n, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil || n != 1 {
			t.Fatalf("the retire step: %d ran, %v", n, err)
		}
		if got := actionsOn(t, st, f, phoneID); len(got) != 2 || !containsAction(got, actions.Retire) {
			t.Errorf("after the lock the ladder requested %v; want the retire too", got)
		}
	})
}

func containsAction(acts []string, k actions.Kind) bool {
	for _, a := range acts {
		if a == string(k) {
			return true
		}
	}
	return false
}

// A step of a policy disabled, before the pass that drops its standings
// reaches the device, is not carried out, and its standing goes.
func TestComplianceDisabledPolicyStepDoesNotRun(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, phoneID := f.enrol("corporate", "", "", nil)
		policyID := failingPolicy(f, compliance.Ladder{{Action: compliance.StepLock}})
		// What UpdatePolicy commits before its pass reaches the device.
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			p, err := q.Compliance().GetPolicy(f.ctx, f.tenant, policyID)
			if err != nil {
				return err
			}
			p.Enabled = false
			return q.Compliance().UpdatePolicy(f.ctx, p)
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil {
			t.Fatal(err)
		}
		if got := actionsOn(t, st, f, phoneID); len(got) != 0 {
			t.Errorf("the disabled policy's ladder carried out %v", got)
		}
		if s, err := st.Read().Compliance().Standings(f.ctx, f.tenant, phoneID); err != nil || len(s) != 0 {
			t.Errorf("the disabled policy's standing stays: %d standings, %v", len(s), err)
		}
	})
}
