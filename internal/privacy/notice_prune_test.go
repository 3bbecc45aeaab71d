package privacy_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// keptVersions returns the notice versions whose policy the tenant keeps
// for class o, ascending.
func (f *fixture) keptVersions(o privacy.Ownership) []int64 {
	f.t.Helper()
	s, _, err := privacy.LoadSettings(f.ctx, f.st.Read(), f.tenant)
	if err != nil {
		f.t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(s.NoticePolicies[o]))
}

// TestNoticePoliciesPruned: publishing a notice drops the policies kept
// for versions nobody stands on any more, and keeps those a live consent
// or a pending enrolment was made under, the current one and the earliest
// (the floor for versions Steward cannot tell).
func TestNoticePoliciesPruned(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika, bob := f.person("erika@acme.test"), f.person("bob@acme.test")
		f.publishNotice(privacy.Personal) // 1
		f.publishNotice(privacy.Personal) // 2
		f.accept(erika.ID, 2)
		f.publishNotice(privacy.Personal) // 3
		enrolment := store.Enrolment{ID: store.NewID(), TenantID: f.tenant, Ownership: string(privacy.Personal), SubjectID: bob.ID,
			NoticeVersion: 3, SecretHash: []byte("a pending link"), State: store.EnrolmentOpen, CreatedBy: "admin:admin-1",
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := st.Tx(f.ctx, func(q store.Queries) error { return q.Enrolments().Create(f.ctx, enrolment) }); err != nil {
			t.Fatal(err)
		}
		f.publishNotice(privacy.Personal) // 4
		f.publishNotice(privacy.Personal) // 5
		if got := f.keptVersions(privacy.Personal); !slices.Equal(got, []int64{1, 2, 3, 5}) {
			t.Errorf("kept %v, want 1 (earliest), 2 (Erika's consent), 3 (Bob's pending enrolment) and 5 (current)", got)
		}

		// Bob's link is revoked and Erika accepts version 5: 2 and 3 go.
		enrolment.State = store.EnrolmentRevoked
		if err := st.Tx(f.ctx, func(q store.Queries) error { return q.Enrolments().Update(f.ctx, enrolment) }); err != nil {
			t.Fatal(err)
		}
		consents, err := f.svc.Consents(f.ctx, f.tenant, erika.ID)
		if err != nil || len(consents.Consents) != 1 {
			t.Fatalf("Erika's consents: %+v, %v", consents, err)
		}
		f.accept(erika.ID, 5)
		if _, err := f.svc.WithdrawConsent(f.ctx, f.tenant, erika.ID, consents.Consents[0].ID, admin); err != nil {
			t.Fatal(err)
		}
		f.publishNotice(privacy.Personal) // 6
		if got := f.keptVersions(privacy.Personal); !slices.Equal(got, []int64{1, 5, 6}) {
			t.Errorf("kept %v, want 1 (earliest), 5 (Erika's consent) and 6 (current)", got)
		}
	})
}
