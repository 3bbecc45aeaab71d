package storetest

import (
	"context"
	"testing"

	"github.com/steward-mdm/steward/internal/store"
)

// testSubjectByAccount: a person is found by the index of either their
// e-mail or their Managed Apple Account, in their own tenant only.
func testSubjectByAccount(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	anna := newSubject(t, st, tn.ID, []byte("idx-anna-mail"))
	anna.AppleIDIndex = []byte("idx-anna-apple")
	tx(t, st, func(q store.Queries) error { return q.Subjects().Update(ctx, anna) })
	newSubject(t, st, tn.ID, []byte("idx-bob-mail"))
	for _, idx := range []string{"idx-anna-mail", "idx-anna-apple"} {
		got, err := st.Read().Subjects().GetByAccountIndex(ctx, tn.ID, []byte(idx))
		if err != nil || got.ID != anna.ID {
			t.Fatalf("by %s: %+v %v, want anna", idx, got.ID, err)
		}
	}
	for _, c := range []struct {
		tenant string
		idx    []byte
	}{{tn.ID, []byte("idx-nobody")}, {tn.ID, nil}, {other.ID, []byte("idx-anna-mail")}} {
		_, err := st.Read().Subjects().GetByAccountIndex(ctx, c.tenant, c.idx)
		wantErr(t, err, store.ErrNotFound, "a person by an index nobody there has")
	}
}
