package iam_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/iam/password"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// hashFreeTx fails the test when a password hash runs inside a transaction:
// on SQLite that holds the single writer, and every device with it, for as
// long as argon2id takes.
type hashFreeTx struct {
	store.Store
	t *testing.T
}

func (s hashFreeTx) Tx(ctx context.Context, fn func(store.Queries) error) error {
	return s.Store.Tx(ctx, func(q store.Queries) error {
		before, _ := password.Derivations()
		err := fn(q)
		if after, _ := password.Derivations(); after != before {
			s.t.Errorf("%d password hashes ran inside a transaction", after-before)
		}
		return err
	})
}

func TestPasswordsAreHashedOutsideTransactions(t *testing.T) {
	f := newFixtureOn(t, iam.DefaultConfig(), hashFreeTx{Store: storetest.OpenSQLite(t), t: t})
	p, _ := f.login()
	const changed = "Saffron-Glacier-Tempo-83"
	if err := f.svc.ChangePassword(f.ctx, p, ownerPW, changed, local); err != nil {
		t.Fatal(err)
	}
	wantKind(t, f.svc.ChangePassword(f.ctx, p, changed, ownerPW, local), apperr.KindInvalid) // reused

	invited, code, err := f.svc.InviteAdmin(f.ctx, f.owner.TenantID, iam.AdminInput{Email: "second@fixture.test", DisplayName: "Second Admin"}, local)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CompleteSetup(f.ctx, code.Code, "Marble-Heron-Drift-40", local); err != nil {
		t.Fatal(err)
	}
	wantKind(t, errOf(f.svc.CompleteSetup(f.ctx, code.Code, "Marble-Heron-Drift-41", local)), apperr.KindInvalid) // burnt

	// A hash made with weaker parameters is replaced at the next login.
	salt := []byte("0123456789abcdef")
	weak := fmt.Sprintf("$argon2id$v=%d$m=1024,t=1,p=1$%s$%s", argon2.Version, base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte("Marble-Heron-Drift-40"), salt, 1, 1024, 1, 32)))
	if err := f.st.Tx(f.ctx, func(q store.Queries) error {
		a, err := q.Admins().Get(f.ctx, invited.TenantID, invited.ID)
		if err != nil {
			return err
		}
		a.PasswordHash = weak
		return q.Admins().Update(f.ctx, a)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Login(f.ctx, "second@fixture.test", "Marble-Heron-Drift-40", store.SessionCLI, local); err != nil {
		t.Fatal(err)
	}
	a, err := f.st.Read().Admins().Get(f.ctx, invited.TenantID, invited.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$m=65536,t=2,p=2$") {
		t.Fatalf("after login the hash is still %q", a.PasswordHash)
	}
}

func errOf[T any](_ T, err error) error { return err }
