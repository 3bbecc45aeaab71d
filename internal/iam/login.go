package iam

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/iam/password"
	"github.com/steward-mdm/steward/internal/store"
)

// LoginState tells the client what the session may do next.
type LoginState string

const (
	LoginComplete      LoginState = "complete"                // fully signed in
	LoginMFARequired   LoginState = "mfa_required"            // send a TOTP or recovery code
	LoginMFAEnrollment LoginState = "mfa_enrollment_required" // enrol a TOTP authenticator first
)

// pendingLifetime bounds a session that has passed the password but not the
// second factor.
const pendingLifetime = 10 * time.Minute

// LoginResult carries the new session's bearer secret (shown once) and, for
// browsers, the CSRF token the console must echo on every state change.
type LoginResult struct {
	State     LoginState
	Secret    string
	CSRFToken string
	Session   store.Session
}

// errBadCredentials never says which half was wrong.
var errBadCredentials = apperr.New(apperr.KindUnauthenticated, "email or password is wrong")

// Login checks an email and password and opens a session of the given kind.
// Failures are audited and feed the account's back-off and lockout.
func (s *Service) Login(ctx context.Context, email, pw string, kind store.SessionKind, actor Actor) (LoginResult, error) {
	if kind != store.SessionBrowser && kind != store.SessionCLI {
		return LoginResult{}, apperr.Invalid("client must be %q or %q", store.SessionBrowser, store.SessionCLI)
	}
	now := s.clock()
	admin, err := s.st.Read().Admins().GetByEmail(ctx, normaliseEmail(email))
	if errors.Is(err, store.ErrNotFound) {
		password.VerifyDecoy(ctx, pw)
		return LoginResult{}, s.auditAnonymousFailure(ctx, actor, "unknown_account")
	}
	if err != nil {
		return LoginResult{}, err
	}
	actor.Type, actor.ID = store.ActorAdmin, admin.ID
	if admin.Disabled || admin.PasswordHash == "" {
		password.VerifyDecoy(ctx, pw)
		return LoginResult{}, s.auditFailure(ctx, actor, admin.TenantID, "auth.login", admin.ID, "account_disabled_or_not_set_up", errBadCredentials)
	}
	if allowed, retry := s.login.Check(admin.FailedLogins, admin.LastFailureAt, admin.LockedUntil, now); !allowed {
		password.VerifyDecoy(ctx, pw) // same cost as any other answer
		e := apperr.New(apperr.KindRateLimited, "too many failed logins; try again later").With("retry_after_seconds", int(retry.Seconds()+0.999))
		if admin.LockedUntil.After(now) {
			e = apperr.New(apperr.KindLocked, "this account is locked after repeated failed logins; wait or ask an administrator to unlock it").With("retry_after_seconds", int(retry.Seconds()+0.999))
		}
		return LoginResult{}, s.auditFailure(ctx, actor, admin.TenantID, "auth.login", admin.ID, "throttled", e)
	}
	home, err := s.st.Read().Tenants().Get(ctx, admin.TenantID)
	if err != nil {
		return LoginResult{}, err
	}
	if !ipAllowed(home.AllowedCIDRs, actor.SourceIP) {
		// The generic answer: a distinct one would tell an outsider that
		// the email has an account. The audit entry keeps the reason.
		password.VerifyDecoy(ctx, pw)
		return LoginResult{}, s.auditFailure(ctx, actor, admin.TenantID, "auth.login", admin.ID, "ip_not_allowed", errBadCredentials)
	}
	ok, rehash, err := password.Verify(ctx, admin.PasswordHash, pw)
	if err != nil {
		return LoginResult{}, err
	}
	if !ok {
		return LoginResult{}, s.recordLoginFailure(ctx, admin, actor, "auth.login", "wrong_password")
	}
	// Rehashed before the transaction: see hashPassword.
	var rehashed string
	if rehash {
		if rehashed, err = password.Hash(ctx, pw); err != nil {
			return LoginResult{}, err
		}
	}

	state := LoginComplete
	switch {
	case admin.MFAEnabled:
		state = LoginMFARequired
	case s.cfg.RequireMFA || home.RequireMFA:
		state = LoginMFAEnrollment
	}
	var res LoginResult
	err = s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Admins().Get(ctx, admin.TenantID, admin.ID)
		if err != nil {
			return err
		}
		a.FailedLogins, a.LockedUntil, a.UpdatedAt = 0, time.Time{}, now
		if rehashed != "" && a.PasswordHash == admin.PasswordHash {
			a.PasswordHash = rehashed
		}
		if err := q.Admins().Update(ctx, a); err != nil {
			return err
		}
		res, err = s.openSession(ctx, q, a, kind, state == LoginComplete, actor, now)
		if err != nil {
			return err
		}
		res.State = state
		action := "auth.login"
		if state != LoginComplete {
			action = "auth.password_verified"
		}
		rec := actor.Entry(a.TenantID, action, "session", res.Session.ID, outcomeSuccess)
		rec.Details = map[string]any{"client": string(kind), "state": string(state)}
		return appendAudit(ctx, q, rec)
	})
	return res, err
}

// openSession creates a session; a session still waiting for its second
// factor lives only pendingLifetime.
func (s *Service) openSession(ctx context.Context, q store.Queries, a store.Admin, kind store.SessionKind, verified bool, actor Actor, now time.Time) (LoginResult, error) {
	secret, hash, err := credential.New(credential.Session)
	if err != nil {
		return LoginResult{}, err
	}
	idle, abs := s.cfg.BrowserIdle, s.cfg.BrowserAbsolute
	if kind == store.SessionCLI {
		idle, abs = s.cfg.CLIIdle, s.cfg.CLIAbsolute
	}
	if !verified {
		idle, abs = pendingLifetime, pendingLifetime
	}
	sess := store.Session{
		ID: store.NewID(), AdminID: a.ID, TenantID: a.TenantID, Kind: kind, SecretHash: hash,
		MFAVerified: verified, SourceIP: actor.SourceIP, UserAgent: truncate(actor.UserAgent, 200),
		CreatedAt: now, LastSeenAt: now, IdleExpiry: now.Add(idle), AbsExpiry: now.Add(abs),
	}
	res := LoginResult{Secret: secret}
	if kind == store.SessionBrowser {
		csrf, csrfHash, err := credential.New(credential.Session)
		if err != nil {
			return LoginResult{}, err
		}
		sess.CSRFHash, res.CSRFToken = csrfHash, csrf
	}
	if err := q.Sessions().Create(ctx, sess); err != nil {
		return LoginResult{}, err
	}
	res.Session = sess
	return res, nil
}

// recordLoginFailure counts a failed password or second factor against the
// account, locking it per the login policy, and returns the generic error.
func (s *Service) recordLoginFailure(ctx context.Context, admin store.Admin, actor Actor, action, reason string) error {
	now := s.clock()
	var locked bool
	err := s.st.Tx(ctx, func(q store.Queries) error {
		locked = false // the Tx may run again
		a, err := q.Admins().Get(ctx, admin.TenantID, admin.ID)
		if err != nil {
			return err
		}
		var lockUntil time.Time
		a.FailedLogins, lockUntil = s.login.OnFailure(a.FailedLogins, now)
		a.LastFailureAt, a.UpdatedAt = now, now
		rec := actor.Entry(a.TenantID, action, "admin", a.ID, outcomeFailure)
		rec.Details = map[string]any{"reason": reason, "failed_logins": a.FailedLogins}
		if !lockUntil.IsZero() {
			a.LockedUntil, locked = lockUntil, true
		}
		if err := q.Admins().Update(ctx, a); err != nil {
			return err
		}
		if err := appendAudit(ctx, q, rec); err != nil {
			return err
		}
		if locked {
			lock := SystemActor.Entry(a.TenantID, "auth.lockout", "admin", a.ID, outcomeSuccess)
			lock.SourceIP, lock.RequestID = actor.SourceIP, actor.RequestID
			lock.Details = map[string]any{"locked_until": lockUntil.Format(time.RFC3339)}
			return appendAudit(ctx, q, lock)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Warn("login failure", "admin_id", admin.ID, "reason", reason, "locked", locked, "request_id", actor.RequestID)
	if action == "auth.mfa" {
		return apperr.New(apperr.KindUnauthenticated, "the code is wrong or was already used")
	}
	return errBadCredentials
}

func (s *Service) auditFailure(ctx context.Context, actor Actor, tenantID, action, adminID, reason string, ret error) error {
	err := s.st.Tx(ctx, func(q store.Queries) error {
		rec := actor.Entry(tenantID, action, "admin", adminID, outcomeDenied)
		rec.Details = map[string]any{"reason": reason}
		return appendAudit(ctx, q, rec)
	})
	if err != nil {
		return err
	}
	s.log.Warn("login refused", "admin_id", adminID, "reason", reason, "request_id", actor.RequestID)
	return ret
}

// auditAnonymousFailure records a login for an unknown account in the root
// tenant's chain, without the email: it is personal data of whoever typed it.
func (s *Service) auditAnonymousFailure(ctx context.Context, actor Actor, reason string) error {
	roots, err := s.st.Read().Tenants().ListChildren(ctx, "", store.Page{Limit: 1})
	if err != nil {
		return err
	}
	if len(roots) == 0 {
		return errBadCredentials
	}
	actor.Type, actor.ID = store.ActorAnonymous, ""
	return s.auditFailure(ctx, actor, roots[0].ID, "auth.login", "", reason, errBadCredentials)
}

// ipAllowed reports whether ip is inside one of cidrs; an empty list allows
// every address.
func ipAllowed(cidrs []string, ip string) bool {
	if len(cidrs) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

func normaliseEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
