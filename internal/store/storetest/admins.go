package storetest

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

func testAdminCRUD(t *testing.T, st store.Store) {
	ctx := context.Background()
	home := newTenant(t, st, "")
	other := newTenant(t, st, "")
	a := newAdmin(t, st, home.ID)
	r := st.Read().Admins()

	got, err := r.Get(ctx, home.ID, a.ID)
	must(t, err)
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("Get = %+v, want %+v", got, a)
	}
	_, err = r.Get(ctx, other.ID, a.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	got, err = r.GetByID(ctx, a.ID)
	must(t, err)
	if got.ID != a.ID {
		t.Fatal("GetByID returned another admin")
	}
	got, err = r.GetByEmail(ctx, strings.ToUpper(a.Email))
	must(t, err)
	if got.ID != a.ID {
		t.Fatal("GetByEmail returned another admin")
	}
	_, err = r.GetByEmail(ctx, "nobody@example.test")
	wantErr(t, err, store.ErrNotFound, "GetByEmail missing")

	dup := store.Admin{ID: store.NewID(), TenantID: other.ID, Email: strings.ToUpper(a.Email), PasswordHash: "h",
		CreatedAt: at}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Admins().Create(ctx, dup) }),
		store.ErrConflict, "Create with an email taken in another tenant")

	a.DisplayName, a.MFASecret, a.MFAEnabled, a.MFALastStep = "Renamed", []byte{1, 2, 3}, true, 58_000_000
	a.Disabled, a.FailedLogins, a.LastFailureAt, a.LockedUntil = true, 3, micro(at.Add(time.Minute)), micro(at.Add(time.Hour))
	a.UpdatedAt = micro(at.Add(2 * time.Hour))
	tx(t, st, func(q store.Queries) error { return q.Admins().Update(ctx, a) })
	got, err = r.Get(ctx, home.ID, a.ID)
	must(t, err)
	if got.MFASecret != nil {
		t.Fatalf("Update wrote the authenticator secret: %x", got.MFASecret)
	}
	tx(t, st, func(q store.Queries) error { return q.Admins().SetMFASecret(ctx, a.TenantID, a.ID, a.MFASecret) })
	got, err = r.Get(ctx, home.ID, a.ID)
	must(t, err)
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("after Update and SetMFASecret Get = %+v, want %+v", got, a)
	}
	moved := a
	moved.TenantID = other.ID
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Admins().Update(ctx, moved) }),
		store.ErrNotFound, "Update through another tenant")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Admins().Delete(ctx, other.ID, a.ID) }),
		store.ErrNotFound, "Delete through another tenant")

	for range 4 {
		newAdmin(t, st, home.ID)
	}
	page1, err := r.List(ctx, home.ID, store.Page{Limit: 3})
	must(t, err)
	page2, err := r.List(ctx, home.ID, store.Page{After: page1[len(page1)-1].ID, Limit: 3})
	must(t, err)
	if len(page1) != 3 || len(page2) != 2 || page1[0].ID != a.ID || page2[0].ID <= page1[2].ID {
		t.Fatalf("List pages of %d and %d admins, want 3 and 2 in ID order", len(page1), len(page2))
	}
	none, err := r.List(ctx, other.ID, store.Page{})
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("List of another tenant returned %d admins", len(none))
	}
	n, err := r.Count(ctx)
	must(t, err)
	if n != 5 {
		t.Fatalf("Count = %d, want 5", n)
	}
}

func testAdminDeleteCascades(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	a := newAdmin(t, st, tn.ID)
	role := newRole(t, st, tn.ID, "ops")
	sess := newSession(t, st, a)
	asg := store.Assignment{ID: store.NewID(), AdminID: a.ID, TenantID: tn.ID, RoleID: role.ID, CreatedAt: at}
	tx(t, st, func(q store.Queries) error {
		if err := q.Assignments().Create(ctx, asg); err != nil {
			return err
		}
		if err := q.Admins().AddPasswordHistory(ctx, a.ID, "old", at); err != nil {
			return err
		}
		return q.Admins().ReplaceRecoveryCodes(ctx, a.ID, [][]byte{{1}, {2}})
	})
	tx(t, st, func(q store.Queries) error { return q.Admins().Delete(ctx, tn.ID, a.ID) })

	r := st.Read()
	_, err := r.Sessions().GetBySecretHash(ctx, sess.SecretHash)
	wantErr(t, err, store.ErrNotFound, "session after admin Delete")
	_, err = r.Assignments().Get(ctx, tn.ID, asg.ID)
	wantErr(t, err, store.ErrNotFound, "assignment after admin Delete")
	hist, err := r.Admins().RecentPasswordHashes(ctx, a.ID, 5)
	must(t, err)
	codes, err := r.Admins().CountRecoveryCodes(ctx, a.ID)
	must(t, err)
	if len(hist) != 0 || codes != 0 {
		t.Fatalf("after admin Delete: %d history rows and %d codes remain", len(hist), codes)
	}
	// The role itself is the tenant's, not the admin's.
	if _, err := r.Roles().Get(ctx, tn.ID, role.ID); err != nil {
		t.Fatalf("role after admin Delete: %v", err)
	}
}

func testPasswordHistory(t *testing.T, st store.Store) {
	ctx := context.Background()
	a := newAdmin(t, st, newTenant(t, st, "").ID)
	tx(t, st, func(q store.Queries) error {
		for i, h := range []string{"h1", "h2", "h3", "h4"} {
			if err := q.Admins().AddPasswordHistory(ctx, a.ID, h, at.Add(time.Duration(i)*time.Hour)); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := st.Read().Admins().RecentPasswordHashes(ctx, a.ID, 3)
	must(t, err)
	if want := []string{"h4", "h3", "h2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("RecentPasswordHashes = %v, want %v", got, want)
	}
}

func testRecoveryCodes(t *testing.T, st store.Store) {
	ctx := context.Background()
	a := newAdmin(t, st, newTenant(t, st, "").ID)
	b := newAdmin(t, st, newTenant(t, st, "").ID)
	tx(t, st, func(q store.Queries) error {
		if err := q.Admins().ReplaceRecoveryCodes(ctx, a.ID, [][]byte{{1}, {2}, {3}}); err != nil {
			return err
		}
		if err := q.Admins().ReplaceRecoveryCodes(ctx, a.ID, [][]byte{{4}, {5}}); err != nil {
			return err
		}
		return q.Admins().ReplaceRecoveryCodes(ctx, b.ID, [][]byte{{4}})
	})
	r := st.Read().Admins()
	n, err := r.CountRecoveryCodes(ctx, a.ID)
	must(t, err)
	if n != 2 {
		t.Fatalf("CountRecoveryCodes after replace = %d, want 2", n)
	}
	var replaced, consumed, again bool
	tx(t, st, func(q store.Queries) error {
		var err error
		if replaced, err = q.Admins().ConsumeRecoveryCode(ctx, a.ID, []byte{1}); err != nil {
			return err
		}
		if consumed, err = q.Admins().ConsumeRecoveryCode(ctx, a.ID, []byte{4}); err != nil {
			return err
		}
		again, err = q.Admins().ConsumeRecoveryCode(ctx, a.ID, []byte{4})
		return err
	})
	if replaced || !consumed || again {
		t.Fatalf("Consume(replaced, fresh, fresh again) = %v, %v, %v; want false, true, false", replaced, consumed, again)
	}
	if n, _ := r.CountRecoveryCodes(ctx, b.ID); n != 1 {
		t.Fatalf("another admin's identical code was consumed: %d left", n)
	}
}

func testRecoveryCodeConsumedOnce(t *testing.T, st store.Store) {
	ctx := context.Background()
	a := newAdmin(t, st, newTenant(t, st, "").ID)
	code := []byte("one-time")
	tx(t, st, func(q store.Queries) error { return q.Admins().ReplaceRecoveryCodes(ctx, a.ID, [][]byte{code}) })
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			consume := func(q store.Queries) error {
				ok, err := q.Admins().ConsumeRecoveryCode(ctx, a.ID, code)
				if ok {
					wins.Add(1)
				}
				return err
			}
			var err error
			if i%2 == 0 {
				err = st.Tx(ctx, consume)
			} else {
				err = consume(st.Read())
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("code consumed %d times, want once", wins.Load())
	}
}
