package iam

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/iam/totp"
	"github.com/steward-mdm/steward/internal/store"
)

// touchEvery limits last-seen writes to one per session or token per period.
const touchEvery = 30 * time.Second

var errNoCredential = apperr.New(apperr.KindUnauthenticated, "sign in, or send a valid API token as 'Authorization: Bearer stt_…'")

// Authenticate resolves a bearer secret (session or API token) to a
// principal. A session still waiting for its second factor is returned with
// Session.MFAVerified false; the caller decides which routes it may reach.
func (s *Service) Authenticate(ctx context.Context, secret, sourceIP string) (*Principal, error) {
	kind, hash, err := credential.Parse(secret)
	if err != nil {
		return nil, errNoCredential
	}
	now := s.clock()
	switch kind {
	case credential.Session:
		return s.authenticateSession(ctx, hash, now)
	case credential.APIToken:
		return s.authenticateToken(ctx, hash, sourceIP, now)
	default:
		return nil, errNoCredential
	}
}

func (s *Service) authenticateSession(ctx context.Context, hash []byte, now time.Time) (*Principal, error) {
	sess, err := s.st.Read().Sessions().GetBySecretHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoCredential
	}
	if err != nil {
		return nil, err
	}
	if !sess.RevokedAt.IsZero() || !now.Before(sess.IdleExpiry) || !now.Before(sess.AbsExpiry) {
		return nil, apperr.New(apperr.KindUnauthenticated, "the session has ended; sign in again")
	}
	admin, err := s.st.Read().Admins().GetByID(ctx, sess.AdminID)
	if err != nil || admin.Disabled {
		return nil, errNoCredential
	}
	if sess.MFAVerified && now.Sub(sess.LastSeenAt) >= touchEvery {
		idle := s.cfg.BrowserIdle
		if sess.Kind == store.SessionCLI {
			idle = s.cfg.CLIIdle
		}
		next := now.Add(idle)
		if next.After(sess.AbsExpiry) {
			next = sess.AbsExpiry
		}
		if err := s.st.Tx(ctx, func(q store.Queries) error { return q.Sessions().Touch(ctx, sess.ID, now, next) }); err != nil {
			return nil, err
		}
		sess.LastSeenAt, sess.IdleExpiry = now, next
	}
	return &Principal{Type: store.ActorAdmin, AdminID: sess.AdminID, HomeTenant: sess.TenantID, Session: &sess, MFAEnrolled: admin.MFAEnabled, admin: &admin}, nil
}

func (s *Service) authenticateToken(ctx context.Context, hash []byte, sourceIP string, now time.Time) (*Principal, error) {
	tok, err := s.st.Read().Tokens().GetBySecretHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoCredential
	}
	if err != nil {
		return nil, err
	}
	if !tok.RevokedAt.IsZero() || !now.Before(tok.ExpiresAt) {
		return nil, apperr.New(apperr.KindUnauthenticated, "this API token is revoked or expired; create a new one")
	}
	// A token acts for its creator: it stops when they are disabled or gone.
	creator, err := s.st.Read().Admins().GetByID(ctx, tok.CreatedBy)
	if err != nil || creator.Disabled {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, apperr.New(apperr.KindUnauthenticated, "the admin who created this API token is disabled or deleted; create a new one")
	}
	if now.Sub(tok.LastUsedAt) >= touchEvery || tok.LastUsedIP != sourceIP {
		if err := s.st.Tx(ctx, func(q store.Queries) error { return q.Tokens().TouchUsed(ctx, tok.ID, now, sourceIP) }); err != nil {
			return nil, err
		}
		tok.LastUsedAt, tok.LastUsedIP = now, sourceIP
	}
	return &Principal{Type: store.ActorToken, AdminID: tok.CreatedBy, HomeTenant: tok.TenantID, Token: &tok, admin: &creator}, nil
}

// CheckCSRF compares the token a browser sent with its session's, in
// constant time.
func CheckCSRF(sess *store.Session, token string) bool {
	if sess == nil || len(sess.CSRFHash) == 0 {
		return false
	}
	kind, hash, err := credential.Parse(token)
	if err != nil || kind != credential.Session {
		return false
	}
	return subtle.ConstantTimeCompare(hash, sess.CSRFHash) == 1
}

// CheckAllowlists enforces the IP allowlists of every tenant the request
// touches: the caller's home tenant and the tenant addressed.
func (s *Service) CheckAllowlists(ctx context.Context, sourceIP string, tenantIDs ...string) error {
	for _, id := range tenantIDs {
		if id == "" {
			continue
		}
		t, err := s.st.Read().Tenants().Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // the route answers 404 for an unknown tenant
		}
		if err != nil {
			return err
		}
		if !ipAllowed(t.AllowedCIDRs, sourceIP) {
			return apperr.Forbidden("requests from this network are not allowed for this tenant")
		}
	}
	return nil
}

// CheckTenantPolicy applies the addressed tenant's own rules (t, as Grants
// read it) to a caller who has access to it: its IP allowlist, and its MFA
// requirement for people (a provider's admin without a second factor cannot
// manage a customer that requires one).
func CheckTenantPolicy(p *Principal, sourceIP string, t store.Tenant) error {
	if !ipAllowed(t.AllowedCIDRs, sourceIP) {
		return apperr.Forbidden("requests from this network are not allowed for this tenant")
	}
	if t.RequireMFA && p.Session != nil && !p.MFAEnrolled {
		return apperr.Forbidden("this tenant requires a second factor; enrol an authenticator (POST /api/v1/me/mfa/enroll) and sign in again")
	}
	return nil
}

// VerifyMFA completes a pending login with a TOTP code or a recovery code.
// The session is replaced by a new one (new secret, new CSRF token), so a
// secret seen before the second factor is worth nothing after it.
func (s *Service) VerifyMFA(ctx context.Context, p *Principal, code, recoveryCode string, actor Actor) (LoginResult, error) {
	if p.Session == nil || p.Session.MFAVerified {
		return LoginResult{}, apperr.Conflict("this session does not wait for a second factor")
	}
	now := s.clock()
	admin, err := s.st.Read().Admins().GetByID(ctx, p.AdminID)
	if err != nil {
		return LoginResult{}, err
	}
	if !admin.MFAEnabled {
		return LoginResult{}, apperr.Conflict("no authenticator is enrolled; enrol one first")
	}
	if allowed, retry := s.login.Check(admin.FailedLogins, admin.LastFailureAt, admin.LockedUntil, now); !allowed {
		return LoginResult{}, apperr.New(apperr.KindRateLimited, "too many failed attempts; try again later").With("retry_after_seconds", int(retry.Seconds()+0.999))
	}
	var step int64
	usedRecovery := false
	switch {
	case recoveryCode != "":
		usedRecovery = true
	case code != "":
		secret, err := s.sealer.Open(admin.MFASecret, totpAD(admin.ID))
		if err != nil {
			return LoginResult{}, err
		}
		var ok bool
		step, ok = totp.Validate(secret, code, now, admin.MFALastStep)
		if !ok {
			return LoginResult{}, s.recordLoginFailure(ctx, admin, actor, "auth.mfa", "wrong_code")
		}
	default:
		return LoginResult{}, apperr.Invalid("send either code or recovery_code")
	}
	// Everything that makes the factor single-use happens in one transaction:
	// the pending session is consumed (of two racing requests one wins), the
	// recovery code is burnt, and the TOTP step is checked again and recorded.
	var res LoginResult
	failure := ""
	err = s.st.Tx(ctx, func(q store.Queries) error {
		failure = ""
		a, err := q.Admins().Get(ctx, admin.TenantID, admin.ID)
		if err != nil {
			return err
		}
		if err := q.Sessions().Consume(ctx, a.ID, p.Session.ID, now); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.New(apperr.KindUnauthenticated, "this sign-in was already completed or has ended; sign in again")
			}
			return err
		}
		if usedRecovery {
			ok, err := q.Admins().ConsumeRecoveryCode(ctx, a.ID, totp.HashRecoveryCode(recoveryCode))
			if err != nil {
				return err
			}
			if !ok {
				failure = "wrong_recovery_code"
				return errWrongFactor
			}
		} else {
			claimed := step > a.MFALastStep
			if claimed {
				if claimed, err = claimStep(ctx, q, a.ID, step, a.MFALastStep); err != nil {
					return err
				}
			}
			if !claimed {
				failure = "code_replayed"
				return errWrongFactor
			}
			a.MFALastStep = step
		}
		a.FailedLogins, a.LockedUntil, a.UpdatedAt = 0, time.Time{}, now
		if err := q.Admins().Update(ctx, a); err != nil {
			return err
		}
		res, err = s.openSession(ctx, q, a, p.Session.Kind, true, actor, now)
		if err != nil {
			return err
		}
		res.State = LoginComplete
		rec := actor.Entry(a.TenantID, "auth.login", "session", res.Session.ID, outcomeSuccess)
		rec.Details = map[string]any{"client": string(p.Session.Kind), "second_factor": map[bool]string{true: "recovery_code", false: "totp"}[usedRecovery]}
		return appendAudit(ctx, q, rec)
	})
	if errors.Is(err, errWrongFactor) {
		return LoginResult{}, s.recordLoginFailure(ctx, admin, actor, "auth.mfa", failure)
	}
	return res, err
}

// errWrongFactor rolls back a second-factor transaction whose code turned
// out to be wrong or used; the failure is then recorded on its own.
var errWrongFactor = errors.New("iam: wrong or used second factor")

// Logout revokes the caller's session.
func (s *Service) Logout(ctx context.Context, p *Principal, actor Actor) error {
	if p.Session == nil {
		return apperr.Invalid("only a session can log out; revoke a token instead")
	}
	return s.revokeSession(ctx, p, p.Session.ID, "auth.logout", actor)
}

// ListSessions lists the caller's own sessions, newest last.
func (s *Service) ListSessions(ctx context.Context, p *Principal) ([]store.Session, error) {
	return s.st.Read().Sessions().ListForAdmin(ctx, p.AdminID)
}

// RevokeSession ends one of the caller's own sessions.
func (s *Service) RevokeSession(ctx context.Context, p *Principal, sessionID string, actor Actor) error {
	return s.revokeSession(ctx, p, sessionID, "session.revoke", actor)
}

func (s *Service) revokeSession(ctx context.Context, p *Principal, sessionID, action string, actor Actor) error {
	now := s.clock()
	return s.st.Tx(ctx, func(q store.Queries) error {
		if err := q.Sessions().Revoke(ctx, p.AdminID, sessionID, now); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return apperr.NotFound("session")
			}
			return err
		}
		return appendAudit(ctx, q, actor.Entry(p.HomeTenant, action, "session", sessionID, outcomeSuccess))
	})
}

// RevokeOtherSessions ends every session of the caller but the current one.
func (s *Service) RevokeOtherSessions(ctx context.Context, p *Principal, actor Actor) (int, error) {
	except := ""
	if p.Session != nil {
		except = p.Session.ID
	}
	now := s.clock()
	var n int
	err := s.st.Tx(ctx, func(q store.Queries) error {
		var err error
		if n, err = q.Sessions().RevokeAllForAdmin(ctx, p.AdminID, except, now); err != nil {
			return err
		}
		rec := actor.Entry(p.HomeTenant, "session.revoke_others", "admin", p.AdminID, outcomeSuccess)
		rec.Details = map[string]any{"revoked": n}
		return appendAudit(ctx, q, rec)
	})
	return n, err
}

// PurgeSessions deletes sessions that ended more than a day ago.
func (s *Service) PurgeSessions(ctx context.Context) (int, error) {
	var n int
	err := s.st.Tx(ctx, func(q store.Queries) error {
		var err error
		n, err = q.Sessions().DeleteExpired(ctx, s.clock().Add(-24*time.Hour))
		return err
	})
	return n, err
}

func totpAD(adminID string) []byte { return []byte("totp:" + adminID) }
