package iam

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam/totp"
	"github.com/steward-mdm/steward/internal/store"
)

// recoveryCodeCount is how many single-use recovery codes an admin gets.
const recoveryCodeCount = 10

// MFAEnrollment is what an authenticator app needs; shown once.
type MFAEnrollment struct {
	Secret string // base32, for typing in by hand
	URI    string // otpauth:// for a QR code
}

// BeginMFAEnrollment creates a new TOTP secret, sealed at rest, that becomes
// active only when ConfirmMFA sees a code from it.
func (s *Service) BeginMFAEnrollment(ctx context.Context, p *Principal, actor Actor) (MFAEnrollment, error) {
	if p.Session == nil {
		return MFAEnrollment{}, apperr.Forbidden("MFA is enrolled by the admin in a signed-in session, not with an API token")
	}
	secret, err := totp.NewSecret()
	if err != nil {
		return MFAEnrollment{}, err
	}
	var out MFAEnrollment
	err = s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Admins().Get(ctx, p.HomeTenant, p.AdminID)
		if err != nil {
			return err
		}
		if a.MFAEnabled {
			return apperr.Conflict("an authenticator is already enrolled; disable it or ask an administrator to reset it first")
		}
		sealed, err := s.sealer.Seal(secret, totpAD(a.ID))
		if err != nil {
			return err
		}
		a.MFASecret, a.MFALastStep, a.UpdatedAt = sealed, 0, s.clock()
		if err := q.Admins().Update(ctx, a); err != nil {
			return err
		}
		if err := q.Admins().SetMFASecret(ctx, a.TenantID, a.ID, sealed); err != nil {
			return err
		}
		out = MFAEnrollment{Secret: base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret), URI: totp.URI(s.cfg.Issuer, a.Email, secret)}
		return appendAudit(ctx, q, actor.Entry(a.TenantID, "mfa.enroll_begin", "admin", a.ID, outcomeSuccess))
	})
	return out, err
}

// MFAConfirmation returns the recovery codes (shown once) and, when the
// confirmation completed a pending login, the new full session.
type MFAConfirmation struct {
	RecoveryCodes []string
	Login         *LoginResult
}

// ConfirmMFA activates the enrolled secret once the admin proves their app
// produces its codes.
func (s *Service) ConfirmMFA(ctx context.Context, p *Principal, code string, actor Actor) (MFAConfirmation, error) {
	if p.Session == nil {
		return MFAConfirmation{}, apperr.Forbidden("MFA is enrolled in a signed-in session")
	}
	now := s.clock()
	var out MFAConfirmation
	err := s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Admins().Get(ctx, p.HomeTenant, p.AdminID)
		if err != nil {
			return err
		}
		if a.MFAEnabled || len(a.MFASecret) == 0 {
			return apperr.Conflict("there is no pending enrolment; start one first")
		}
		secret, err := s.sealer.Open(a.MFASecret, totpAD(a.ID))
		if err != nil {
			return err
		}
		step, ok := totp.Validate(secret, code, now, a.MFALastStep)
		if ok {
			ok, err = claimStep(ctx, q, a.ID, step, a.MFALastStep)
			if err != nil {
				return err
			}
		}
		if !ok {
			return apperr.Invalid("the code does not match; check the device clock and try the current code")
		}
		display, hashes, err := totp.NewRecoveryCodes(recoveryCodeCount)
		if err != nil {
			return err
		}
		a.MFAEnabled, a.MFALastStep, a.UpdatedAt = true, step, now
		if err := q.Admins().Update(ctx, a); err != nil {
			return err
		}
		if err := q.Admins().ReplaceRecoveryCodes(ctx, a.ID, hashes); err != nil {
			return err
		}
		out.RecoveryCodes = display
		if !p.Session.MFAVerified {
			if err := q.Sessions().Consume(ctx, a.ID, p.Session.ID, now); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return apperr.New(apperr.KindUnauthenticated, "this sign-in was already completed or has ended; sign in again")
				}
				return err
			}
			res, err := s.openSession(ctx, q, a, p.Session.Kind, true, actor, now)
			if err != nil {
				return err
			}
			res.State = LoginComplete
			out.Login = &res
		}
		return appendAudit(ctx, q, actor.Entry(a.TenantID, "mfa.enroll", "admin", a.ID, outcomeSuccess))
	})
	return out, err
}

// RegenerateRecoveryCodes replaces the recovery codes; needs a current code.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p *Principal, code string, actor Actor) ([]string, error) {
	var out []string
	err := s.withVerifiedCode(ctx, p, code, actor, func(q store.Queries, a *store.Admin) error {
		display, hashes, err := totp.NewRecoveryCodes(recoveryCodeCount)
		if err != nil {
			return err
		}
		if err := q.Admins().ReplaceRecoveryCodes(ctx, a.ID, hashes); err != nil {
			return err
		}
		out = display
		return appendAudit(ctx, q, actor.Entry(a.TenantID, "mfa.recovery_codes_regenerate", "admin", a.ID, outcomeSuccess))
	})
	return out, err
}

// DisableMFA removes the caller's authenticator where policy allows it.
func (s *Service) DisableMFA(ctx context.Context, p *Principal, code string, actor Actor) error {
	home, err := s.st.Read().Tenants().Get(ctx, p.HomeTenant)
	if err != nil {
		return err
	}
	if s.cfg.RequireMFA || home.RequireMFA {
		return apperr.Forbidden("MFA is required for this account and cannot be disabled; an administrator can reset it so you can enrol a new authenticator")
	}
	return s.withVerifiedCode(ctx, p, code, actor, func(q store.Queries, a *store.Admin) error {
		a.MFAEnabled, a.MFASecret, a.MFALastStep = false, nil, 0
		if err := q.Admins().Update(ctx, *a); err != nil {
			return err
		}
		if err := q.Admins().SetMFASecret(ctx, a.TenantID, a.ID, nil); err != nil {
			return err
		}
		if err := q.Admins().ReplaceRecoveryCodes(ctx, a.ID, nil); err != nil {
			return err
		}
		return appendAudit(ctx, q, actor.Entry(a.TenantID, "mfa.disable", "admin", a.ID, outcomeSuccess))
	})
}

// claimStep records, through a unique key, that the admin's TOTP step was
// used. MFALastStep alone is read without a lock on PostgreSQL, so two
// transactions racing with one code could both pass it; only one of them
// can insert the key. The previous step's key is dropped as this one lands.
func claimStep(ctx context.Context, q store.Queries, adminID string, step, lastStep int64) (bool, error) {
	ok, err := q.Settings().PutIfAbsent(ctx, fmt.Sprintf("totp-step:%s:%d", adminID, step), []byte{1})
	if err != nil || !ok {
		return false, err
	}
	if err := q.Settings().Delete(ctx, fmt.Sprintf("totp-step:%s:%d", adminID, lastStep)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	return true, nil
}

// withVerifiedCode runs fn in a transaction after checking a fresh TOTP code
// of the caller, and records the step so the code cannot be reused. Wrong
// codes count towards the same back-off and lockout as failed logins: a
// stolen session must not be a free oracle for guessing codes.
func (s *Service) withVerifiedCode(ctx context.Context, p *Principal, code string, actor Actor, fn func(q store.Queries, a *store.Admin) error) error {
	if p.Session == nil || !p.Session.MFAVerified {
		return apperr.Forbidden("this needs a fully signed-in session")
	}
	now := s.clock()
	admin, err := s.st.Read().Admins().Get(ctx, p.HomeTenant, p.AdminID)
	if err != nil {
		return err
	}
	if allowed, retry := s.login.Check(admin.FailedLogins, admin.LastFailureAt, admin.LockedUntil, now); !allowed {
		return apperr.New(apperr.KindRateLimited, "too many failed attempts; try again later").With("retry_after_seconds", int(retry.Seconds()+0.999))
	}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Admins().Get(ctx, p.HomeTenant, p.AdminID)
		if err != nil {
			return err
		}
		if !a.MFAEnabled {
			return apperr.Conflict("no authenticator is enrolled")
		}
		secret, err := s.sealer.Open(a.MFASecret, totpAD(a.ID))
		if err != nil {
			return err
		}
		step, ok := totp.Validate(secret, code, now, a.MFALastStep)
		if ok {
			ok, err = claimStep(ctx, q, a.ID, step, a.MFALastStep)
			if err != nil {
				return err
			}
		}
		if !ok {
			return errWrongFactor
		}
		a.MFALastStep, a.FailedLogins, a.LockedUntil, a.UpdatedAt = step, 0, time.Time{}, now
		if err := q.Admins().Update(ctx, a); err != nil {
			return err
		}
		return fn(q, &a)
	})
	if errors.Is(err, errWrongFactor) {
		if ferr := s.recordLoginFailure(ctx, admin, actor, "auth.mfa", "wrong_code"); apperr.IsKind(ferr, apperr.KindInternal) {
			return ferr
		}
		return apperr.Invalid("the code does not match or was already used").With("field", "code")
	}
	return err
}

// ResetMFA is an administrator clearing another admin's authenticator (a lost
// phone): their sessions end and they enrol again at next login.
func (s *Service) ResetMFA(ctx context.Context, p *Principal, tenantID, adminID string, actor Actor) error {
	now := s.clock()
	return s.st.Tx(ctx, func(q store.Queries) error {
		a, err := getAdmin(ctx, q, tenantID, adminID)
		if err != nil {
			return err
		}
		if err := s.ensureCanManage(ctx, q, p, a); err != nil {
			return err
		}
		a.MFAEnabled, a.MFASecret, a.MFALastStep, a.UpdatedAt = false, nil, 0, now
		if err := q.Admins().Update(ctx, a); err != nil {
			return err
		}
		if err := q.Admins().SetMFASecret(ctx, a.TenantID, a.ID, nil); err != nil {
			return err
		}
		if err := q.Admins().ReplaceRecoveryCodes(ctx, a.ID, nil); err != nil {
			return err
		}
		if _, err := q.Sessions().RevokeAllForAdmin(ctx, a.ID, "", now); err != nil {
			return err
		}
		return appendAudit(ctx, q, actor.Entry(tenantID, "mfa.reset", "admin", a.ID, outcomeSuccess))
	})
}
