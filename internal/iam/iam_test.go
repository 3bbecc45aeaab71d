package iam_test

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"sync"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/iam/totp"
	"github.com/steward-mdm/steward/internal/rbac"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	t     *testing.T
	ctx   context.Context
	svc   *iam.Service
	st    store.Store
	clk   *clock
	owner store.Admin
	totp  []byte
}

const ownerPW = "Juniper-Falcon-Orbit-62"

var local = iam.Actor{Type: store.ActorAnonymous, SourceIP: "127.0.0.1", RequestID: "test-request"}

func newFixture(t *testing.T, cfg iam.Config) *fixture {
	t.Helper()
	return newFixtureOn(t, cfg, storetest.OpenSQLite(t))
}

func newFixtureOn(t *testing.T, cfg iam.Config, st store.Store) *fixture {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := secrets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	svc := iam.New(st, sealer, cfg, iam.WithClock(clk.now))
	f := &fixture{t: t, ctx: context.Background(), svc: svc, st: st, clk: clk}
	f.owner, err = svc.BootstrapDirect(f.ctx, iam.BootstrapInput{Organisation: "Fixture Org", Email: "owner@fixture.test", DisplayName: "Fixture Owner", Password: ownerPW})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// login signs the owner in as a CLI client, enrolling MFA on first use.
func (f *fixture) login() (*iam.Principal, iam.LoginResult) {
	f.t.Helper()
	res, err := f.svc.Login(f.ctx, "owner@fixture.test", ownerPW, store.SessionCLI, local)
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := f.svc.Authenticate(f.ctx, res.Secret, "127.0.0.1")
	if err != nil {
		f.t.Fatal(err)
	}
	switch res.State {
	case iam.LoginMFAEnrollment:
		en, err := f.svc.BeginMFAEnrollment(f.ctx, p, local)
		if err != nil {
			f.t.Fatal(err)
		}
		f.totp, _ = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
		f.clk.add(31 * time.Second)
		conf, err := f.svc.ConfirmMFA(f.ctx, p, totp.Code(f.totp, f.clk.now()), local)
		if err != nil {
			f.t.Fatal(err)
		}
		res = *conf.Login
	case iam.LoginMFARequired:
		f.clk.add(31 * time.Second)
		if res, err = f.svc.VerifyMFA(f.ctx, p, totp.Code(f.totp, f.clk.now()), "", local); err != nil {
			f.t.Fatal(err)
		}
	}
	p, err = f.svc.Authenticate(f.ctx, res.Secret, "127.0.0.1")
	if err != nil {
		f.t.Fatal(err)
	}
	return p, res
}

func wantKind(t *testing.T, err error, kind apperr.Kind) {
	t.Helper()
	if !apperr.IsKind(err, kind) {
		t.Fatalf("error %v, want kind %s", err, kind)
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t, iam.DefaultConfig())
	_, res := f.login()
	cfg := iam.DefaultConfig()
	// Use keeps the session alive past the idle window...
	for i := 0; i < 4; i++ {
		f.clk.add(cfg.CLIIdle - time.Minute)
		if _, err := f.svc.Authenticate(f.ctx, res.Secret, "127.0.0.1"); err != nil {
			t.Fatalf("active session ended after %d idle periods: %v", i, err)
		}
	}
	// ...but never past the absolute lifetime.
	f.clk.add(cfg.CLIAbsolute)
	_, err := f.svc.Authenticate(f.ctx, res.Secret, "127.0.0.1")
	wantKind(t, err, apperr.KindUnauthenticated)

	_, res = f.login()
	f.clk.add(cfg.CLIIdle + time.Second)
	_, err = f.svc.Authenticate(f.ctx, res.Secret, "127.0.0.1")
	wantKind(t, err, apperr.KindUnauthenticated)
}

func TestMFACodeCannotBeReplayed(t *testing.T) {
	f := newFixture(t, iam.DefaultConfig())
	f.login()
	res, err := f.svc.Login(f.ctx, "owner@fixture.test", ownerPW, store.SessionCLI, local)
	if err != nil || res.State != iam.LoginMFARequired {
		t.Fatalf("%v %v", res.State, err)
	}
	p, _ := f.svc.Authenticate(f.ctx, res.Secret, "127.0.0.1")
	f.clk.add(31 * time.Second)
	code := totp.Code(f.totp, f.clk.now())
	if _, err := f.svc.VerifyMFA(f.ctx, p, code, "", local); err != nil {
		t.Fatal(err)
	}
	res2, _ := f.svc.Login(f.ctx, "owner@fixture.test", ownerPW, store.SessionCLI, local)
	p2, _ := f.svc.Authenticate(f.ctx, res2.Secret, "127.0.0.1")
	_, err = f.svc.VerifyMFA(f.ctx, p2, code, "", local)
	wantKind(t, err, apperr.KindUnauthenticated)
}

func TestRecoveryCodeWorksOnce(t *testing.T) {
	f := newFixture(t, iam.DefaultConfig())
	p, _ := f.login()
	f.clk.add(31 * time.Second)
	codes, err := f.svc.RegenerateRecoveryCodes(f.ctx, p, totp.Code(f.totp, f.clk.now()), local)
	if err != nil || len(codes) != 10 {
		t.Fatalf("%v %v", codes, err)
	}
	for i := 0; i < 2; i++ {
		f.clk.add(2 * time.Minute)
		res, err := f.svc.Login(f.ctx, "owner@fixture.test", ownerPW, store.SessionCLI, local)
		if err != nil {
			t.Fatal(err)
		}
		pending, _ := f.svc.Authenticate(f.ctx, res.Secret, "127.0.0.1")
		_, err = f.svc.VerifyMFA(f.ctx, pending, "", codes[0], local)
		if i == 0 && err != nil {
			t.Fatalf("first use of a recovery code: %v", err)
		}
		if i == 1 {
			wantKind(t, err, apperr.KindUnauthenticated)
		}
	}
}

func TestPasswordPolicyOnChange(t *testing.T) {
	f := newFixture(t, iam.DefaultConfig())
	p, _ := f.login()
	for _, bad := range []string{"short-1", "password1234", "Fixture-Owner-Name-11", ownerPW} {
		err := f.svc.ChangePassword(f.ctx, p, ownerPW, bad, local)
		wantKind(t, err, apperr.KindInvalid)
	}
	if err := f.svc.ChangePassword(f.ctx, p, ownerPW, "Saffron-Glacier-Tempo-83", local); err != nil {
		t.Fatal(err)
	}
}

func TestLastOwnerStays(t *testing.T) {
	f := newFixture(t, iam.DefaultConfig())
	p, _ := f.login()
	asgs, err := f.svc.ListAssignments(f.ctx, f.owner.TenantID, store.Page{})
	if err != nil || len(asgs) != 1 {
		t.Fatalf("%v %v", asgs, err)
	}
	wantKind(t, f.svc.Unassign(f.ctx, p, f.owner.TenantID, asgs[0].ID, local), apperr.KindConflict)
	wantKind(t, f.svc.DeleteAdmin(f.ctx, p, f.owner.TenantID, f.owner.ID, local), apperr.KindConflict)
}

func TestRolesCannotEscalate(t *testing.T) {
	f := newFixture(t, iam.DefaultConfig())
	helpdesk, _ := rbac.BuiltinByID("helpdesk")
	granter := rbac.NewSet(helpdesk.Permissions...)
	_, err := f.svc.CreateRole(f.ctx, f.owner.TenantID, iam.RoleInput{Name: "Wiper", Permissions: []string{"device.read", "device.wipe"}}, granter, local)
	wantKind(t, err, apperr.KindForbidden)
	_, err = f.svc.CreateRole(f.ctx, f.owner.TenantID, iam.RoleInput{Name: "Odd", Permissions: []string{"device.teleport"}}, granter, local)
	wantKind(t, err, apperr.KindInvalid)
	r, err := f.svc.CreateRole(f.ctx, f.owner.TenantID, iam.RoleInput{Name: "Looker", Permissions: []string{"device.read", "tenant.read"}}, granter, local)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.CreateRole(f.ctx, f.owner.TenantID, iam.RoleInput{Name: "Looker", Permissions: []string{"device.read"}}, granter, local)
	wantKind(t, err, apperr.KindConflict)
	wantKind(t, f.svc.DeleteRole(f.ctx, f.owner.TenantID, "owner", local), apperr.KindConflict)
	if err := f.svc.DeleteRole(f.ctx, f.owner.TenantID, r.ID, local); err != nil {
		t.Fatal(err)
	}
}

func TestTokenExpiresAndFollowsCreator(t *testing.T) {
	f := newFixture(t, iam.DefaultConfig())
	p, _ := f.login()
	nt, err := f.svc.CreateToken(f.ctx, p, f.owner.TenantID, iam.TokenInput{Name: "ci", RoleID: "administrator", ExpiresIn: 48 * time.Hour}, local)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := f.svc.Authenticate(f.ctx, nt.Secret, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	perms, _ := f.svc.Permissions(f.ctx, tp, f.owner.TenantID)
	if !perms.Has("tenant.manage") || perms.Has("admin.owner") {
		t.Fatalf("token permissions %v", perms.Sorted())
	}
	_, err = f.svc.CreateToken(f.ctx, p, f.owner.TenantID, iam.TokenInput{Name: "forever", RoleID: "readonly", ExpiresIn: 10 * 365 * 24 * time.Hour}, local)
	wantKind(t, err, apperr.KindInvalid)
	f.clk.add(49 * time.Hour)
	_, err = f.svc.Authenticate(f.ctx, nt.Secret, "127.0.0.1")
	wantKind(t, err, apperr.KindUnauthenticated)
}

func TestTenantRequiresMFAEvenWhenOptional(t *testing.T) {
	cfg := iam.DefaultConfig()
	cfg.RequireMFA = false
	f := newFixture(t, cfg)
	res, err := f.svc.Login(f.ctx, "owner@fixture.test", ownerPW, store.SessionCLI, local)
	if err != nil || res.State != iam.LoginComplete {
		t.Fatalf("optional MFA: %v %v", res.State, err)
	}
	yes := true
	if _, err := f.svc.UpdateTenant(f.ctx, f.owner.TenantID, iam.TenantPatch{RequireMFA: &yes}, local); err != nil {
		t.Fatal(err)
	}
	res, err = f.svc.Login(f.ctx, "owner@fixture.test", ownerPW, store.SessionCLI, local)
	if err != nil || res.State != iam.LoginMFAEnrollment {
		t.Fatalf("tenant-required MFA: %v %v", res.State, err)
	}
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{"Acme GmbH": "acme-gmbh", "  --Ünïcode & Co.  ": "n-code-co", "!!!": "tenant", "a  b": "a-b"} {
		if got := iam.Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
	}
}
