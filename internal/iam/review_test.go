package iam_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/iam/totp"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// One pending session and one code, sent many times at once, make exactly
// one full session.
func TestSecondFactorIsSingleUseUnderConcurrency(t *testing.T) {
	f := newFixture(t, iam.DefaultConfig())
	f.login()
	res, err := f.svc.Login(f.ctx, "owner@fixture.test", ownerPW, store.SessionCLI, local)
	if err != nil {
		t.Fatal(err)
	}
	pending, _ := f.svc.Authenticate(f.ctx, res.Secret, "127.0.0.1")
	f.clk.add(31 * time.Second)
	code := totp.Code(f.totp, f.clk.now())
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := f.svc.VerifyMFA(f.ctx, pending, code, "", local); err == nil {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d full sessions from one pending session and one code", wins.Load())
	}
}

// Two sign-ins racing with the same code (one observed over a shoulder):
// one wins, on both engines.
func TestOneCodeOneSignInAcrossSessions(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixtureOn(t, iam.DefaultConfig(), st)
		f.login()
		var pending []*iam.Principal
		for range 4 {
			res, err := f.svc.Login(f.ctx, "owner@fixture.test", ownerPW, store.SessionCLI, local)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := f.svc.Authenticate(f.ctx, res.Secret, "127.0.0.1")
			pending = append(pending, p)
		}
		f.clk.add(31 * time.Second)
		code := totp.Code(f.totp, f.clk.now())
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, p := range pending {
			wg.Go(func() {
				if _, err := f.svc.VerifyMFA(f.ctx, p, code, "", local); err == nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("one code signed in %d times", wins.Load())
		}
	})
}

// Wrong codes on a signed-in session count towards the lockout.
func TestWrongCodesFromASessionAreThrottled(t *testing.T) {
	f := newFixture(t, iam.DefaultConfig())
	p, _ := f.login()
	var last error
	for range 12 {
		_, last = f.svc.RegenerateRecoveryCodes(f.ctx, p, "000000", local)
		if apperr.IsKind(last, apperr.KindRateLimited) {
			break
		}
		wantKind(t, last, apperr.KindInvalid)
	}
	wantKind(t, last, apperr.KindRateLimited)
	entries, err := f.st.Read().Audit().List(f.ctx, f.owner.TenantID, store.AuditFilter{Action: "auth.mfa"})
	if err != nil || len(entries) < 3 {
		t.Fatalf("wrong codes audited %d times (%v)", len(entries), err)
	}
}

func TestDisabledOwnersDoNotCount(t *testing.T) {
	f := newFixture(t, iam.DefaultConfig())
	p, _ := f.login()
	other, _, err := f.svc.InviteAdmin(f.ctx, f.owner.TenantID, iam.AdminInput{Email: "second@fixture.test", DisplayName: "Second Owner"}, local)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Assign(f.ctx, p, f.owner.TenantID, other.ID, "owner", nil, local); err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := f.svc.UpdateAdmin(f.ctx, p, f.owner.TenantID, other.ID, iam.AdminPatch{Disabled: &yes}, local); err != nil {
		t.Fatal(err)
	}
	// Only one active Owner remains, so their Owner role stays.
	asgs, _ := f.svc.ListAssignments(f.ctx, f.owner.TenantID, store.Page{})
	for _, a := range asgs {
		if a.AdminID == f.owner.ID {
			wantKind(t, f.svc.Unassign(f.ctx, p, f.owner.TenantID, a.ID, local), apperr.KindConflict)
		}
	}
}

func TestTenantMFARequirementReachesVisitors(t *testing.T) {
	cfg := iam.DefaultConfig()
	cfg.RequireMFA = false
	f := newFixture(t, cfg)
	res, err := f.svc.Login(f.ctx, "owner@fixture.test", ownerPW, store.SessionCLI, local)
	if err != nil || res.State != iam.LoginComplete {
		t.Fatalf("%v %v", res.State, err)
	}
	p, _ := f.svc.Authenticate(f.ctx, res.Secret, "127.0.0.1")
	c, err := f.svc.CreateCustomer(f.ctx, f.owner.TenantID, iam.TenantInput{Name: "Strict Customer", RequireMFA: true}, local)
	if err != nil {
		t.Fatal(err)
	}
	policy := func(tenantID string) error {
		g, err := f.svc.Grants(f.ctx, p, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		return iam.CheckTenantPolicy(p, "127.0.0.1", g.Addressed)
	}
	wantKind(t, policy(c.ID), apperr.KindForbidden)
	if err := policy(f.owner.TenantID); err != nil {
		t.Fatalf("the provider itself does not require MFA: %v", err)
	}
}
