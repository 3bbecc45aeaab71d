package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

func newSession(t *testing.T, st store.Store, a store.Admin) store.Session {
	t.Helper()
	id := store.NewID()
	s := store.Session{ID: id, AdminID: a.ID, TenantID: a.TenantID, Kind: store.SessionBrowser,
		SecretHash: []byte("secret-" + id), CSRFHash: []byte("csrf-" + id), SourceIP: "192.0.2.1", UserAgent: "test",
		CreatedAt: at, LastSeenAt: at, IdleExpiry: at.Add(30 * time.Minute), AbsExpiry: at.Add(12 * time.Hour)}
	tx(t, st, func(q store.Queries) error { return q.Sessions().Create(context.Background(), s) })
	s.CreatedAt, s.LastSeenAt, s.IdleExpiry, s.AbsExpiry = micro(at), micro(at), micro(s.IdleExpiry), micro(s.AbsExpiry)
	return s
}

func testSessions(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	a, b := newAdmin(t, st, tn.ID), newAdmin(t, st, tn.ID)
	s1, s2, s3 := newSession(t, st, a), newSession(t, st, a), newSession(t, st, a)
	other := newSession(t, st, b)
	r := st.Read().Sessions()
	got, err := r.GetBySecretHash(ctx, s1.SecretHash)
	must(t, err)
	if !reflect.DeepEqual(got, s1) {
		t.Fatalf("GetBySecretHash = %+v, want %+v", got, s1)
	}
	_, err = r.GetBySecretHash(ctx, []byte("unknown"))
	wantErr(t, err, store.ErrNotFound, "GetBySecretHash unknown")
	dup := s1
	dup.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Sessions().Create(ctx, dup) }),
		store.ErrConflict, "Create with a used secret hash")

	seen, idle := at.Add(time.Minute), at.Add(time.Hour)
	s1.MFAVerified, s1.CSRFHash, s1.AbsExpiry = true, []byte("new-csrf"), micro(at.Add(24*time.Hour))
	tx(t, st, func(q store.Queries) error {
		if err := q.Sessions().Touch(ctx, s1.ID, seen, idle); err != nil {
			return err
		}
		return q.Sessions().Update(ctx, s1)
	})
	// Update ran after Touch and writes s1's IdleExpiry, so only LastSeenAt keeps Touch's value.
	s1.LastSeenAt = micro(seen)
	got, err = r.GetBySecretHash(ctx, s1.SecretHash)
	must(t, err)
	if !reflect.DeepEqual(got, s1) {
		t.Fatalf("after Touch+Update = %+v, want %+v", got, s1)
	}

	// Touch alone moves both LastSeenAt and IdleExpiry; a missing session is ErrNotFound.
	must(t, st.Read().Sessions().Touch(ctx, s3.ID, seen, idle))
	if got, err := r.GetBySecretHash(ctx, s3.SecretHash); err != nil ||
		!got.LastSeenAt.Equal(micro(seen)) || !got.IdleExpiry.Equal(micro(idle)) {
		t.Fatalf("after Touch: %+v, %v", got, err)
	}
	wantErr(t, st.Read().Sessions().Touch(ctx, store.NewID(), seen, idle), store.ErrNotFound, "Touch missing")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Sessions().Revoke(ctx, b.ID, s1.ID, at) }),
		store.ErrNotFound, "Revoke another admin's session")
	revokedAt := at.Add(2 * time.Hour)
	tx(t, st, func(q store.Queries) error { return q.Sessions().Revoke(ctx, a.ID, s2.ID, revokedAt) })
	var n int
	tx(t, st, func(q store.Queries) error {
		var err error
		n, err = q.Sessions().RevokeAllForAdmin(ctx, a.ID, s1.ID, revokedAt)
		return err
	})
	if n != 1 {
		t.Fatalf("RevokeAllForAdmin revoked %d, want 1 (s3 only)", n)
	}
	list, err := r.ListForAdmin(ctx, a.ID)
	must(t, err)
	if len(list) != 3 || list[0].ID != s1.ID || !list[0].RevokedAt.IsZero() ||
		!list[1].RevokedAt.Equal(micro(revokedAt)) || list[2].ID != s3.ID || list[2].RevokedAt.IsZero() {
		t.Fatalf("ListForAdmin after revocations = %+v", list)
	}

	// Revoked s2, s3 before the cutoff go; s1 and b's session live on.
	tx(t, st, func(q store.Queries) error {
		var err error
		n, err = q.Sessions().DeleteExpired(ctx, at.Add(3*time.Hour))
		return err
	})
	if n != 2 {
		t.Fatalf("DeleteExpired = %d, want 2", n)
	}
	tx(t, st, func(q store.Queries) error {
		var err error
		n, err = q.Sessions().DeleteExpired(ctx, at.Add(13*time.Hour))
		return err
	})
	if n != 1 { // other's absolute expiry passed; s1 was extended to 24h
		t.Fatalf("DeleteExpired past absolute expiry = %d, want 1", n)
	}
	if _, err := r.GetBySecretHash(ctx, other.SecretHash); err == nil {
		t.Fatal("expired session survived DeleteExpired")
	}
}

func testTokens(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	a := newAdmin(t, st, tn.ID)
	mk := func() store.APIToken {
		id := store.NewID()
		x := store.APIToken{ID: id, TenantID: tn.ID, RoleID: "builtin:viewer", Name: "ci", CreatedBy: a.ID,
			SecretHash: []byte("tok-" + id), ExpiresAt: at.Add(90 * 24 * time.Hour), CreatedAt: at}
		tx(t, st, func(q store.Queries) error { return q.Tokens().Create(ctx, x) })
		x.ExpiresAt, x.CreatedAt = micro(x.ExpiresAt), micro(at)
		return x
	}
	t1, t2 := mk(), mk()
	r := st.Read().Tokens()
	got, err := r.GetBySecretHash(ctx, t1.SecretHash)
	must(t, err)
	if !reflect.DeepEqual(got, t1) {
		t.Fatalf("GetBySecretHash = %+v, want %+v", got, t1)
	}
	_, err = r.Get(ctx, other.ID, t1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	dup := t1
	dup.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tokens().Create(ctx, dup) }),
		store.ErrConflict, "Create with a used secret hash")

	used := at.Add(time.Minute)
	must(t, st.Read().Tokens().TouchUsed(ctx, t2.ID, used, "198.51.100.7"))
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tokens().Revoke(ctx, other.ID, t1.ID, at) }),
		store.ErrNotFound, "Revoke through another tenant")
	tx(t, st, func(q store.Queries) error { return q.Tokens().Revoke(ctx, tn.ID, t1.ID, used) })
	list, err := r.List(ctx, tn.ID, store.Page{})
	must(t, err)
	if len(list) != 2 || !list[0].RevokedAt.Equal(micro(used)) || !list[1].LastUsedAt.Equal(micro(used)) ||
		list[1].LastUsedIP != "198.51.100.7" {
		t.Fatalf("List after Revoke/TouchUsed = %+v", list)
	}
	page, err := r.List(ctx, tn.ID, store.Page{After: t1.ID, Limit: 5})
	must(t, err)
	if len(page) != 1 || page[0].ID != t2.ID {
		t.Fatalf("List after cursor = %+v", page)
	}
}

func testSessionConsumedOnce(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	a, b := newAdmin(t, st, tn.ID), newAdmin(t, st, tn.ID)
	s := newSession(t, st, a)
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Sessions().Consume(ctx, b.ID, s.ID, at) }),
		store.ErrConflict, "Consume another admin's session")
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			err := st.Tx(ctx, func(q store.Queries) error { return q.Sessions().Consume(ctx, a.ID, s.ID, at) })
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrConflict):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("session consumed %d times, want once", wins.Load())
	}
	got, err := st.Read().Sessions().GetBySecretHash(ctx, s.SecretHash)
	if err != nil || !got.RevokedAt.Equal(micro(at)) {
		t.Fatalf("consumed session = %+v, %v", got, err)
	}
}
