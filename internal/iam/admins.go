package iam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/iam/password"
	"github.com/steward-mdm/steward/internal/store"
)

// AdminInput is what an administrator supplies for a new or changed admin.
type AdminInput struct {
	Email       string
	DisplayName string
}

func (in AdminInput) validate() error {
	email := normaliseEmail(in.Email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		return apperr.Invalid("email must be a plain address such as name@example.org").With("field", "email")
	}
	return validateDisplayName(in.DisplayName)
}

func validateDisplayName(name string) error {
	n := strings.TrimSpace(name)
	if n == "" || utf8.RuneCountInString(n) > 100 || strings.ContainsAny(n, "\x00\r\n") {
		return apperr.Invalid("display_name must be 1 to 100 characters on one line").With("field", "display_name")
	}
	return nil
}

// SetupCode is a one-time code that lets an invited admin (or the first
// owner) choose their own password. Only its hash is stored.
type SetupCode struct {
	Code      string
	ExpiresAt time.Time
}

type setupRecord struct {
	AdminID   string    `json:"admin_id"`
	TenantID  string    `json:"tenant_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

func setupKey(hash []byte) string { return fmt.Sprintf("setup:%x", hash) }

// setupOwnerKey names the one live setup code of an admin, so issuing a new
// code (a reset) kills the previous one.
func setupOwnerKey(adminID string) string { return "setup-admin:" + adminID }

// InviteAdmin creates an admin without a password in tenantID and returns
// the one-time setup code to hand them. There is never a default password.
func (s *Service) InviteAdmin(ctx context.Context, tenantID string, in AdminInput, actor Actor) (store.Admin, SetupCode, error) {
	if err := in.validate(); err != nil {
		return store.Admin{}, SetupCode{}, err
	}
	now := s.clock()
	a := store.Admin{ID: store.NewID(), TenantID: tenantID, Email: normaliseEmail(in.Email),
		DisplayName: strings.TrimSpace(in.DisplayName), CreatedAt: now, UpdatedAt: now}
	var code SetupCode
	err := s.st.Tx(ctx, func(q store.Queries) error {
		if err := q.Admins().Create(ctx, a); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("an admin with this email already exists")
			}
			return err
		}
		var err error
		if code, err = s.issueSetupCode(ctx, q, a, now); err != nil {
			return err
		}
		return appendAudit(ctx, q, actor.Entry(tenantID, "admin.invite", "admin", a.ID, outcomeSuccess))
	})
	return a, code, err
}

func (s *Service) issueSetupCode(ctx context.Context, q store.Queries, a store.Admin, now time.Time) (SetupCode, error) {
	display, hash, err := credential.New(credential.BootstrapCode)
	if err != nil {
		return SetupCode{}, err
	}
	if err := dropSetupCode(ctx, q, a.ID); err != nil {
		return SetupCode{}, err
	}
	rec := setupRecord{AdminID: a.ID, TenantID: a.TenantID, ExpiresAt: now.Add(s.cfg.InviteTTL)}
	raw, _ := json.Marshal(rec)
	if err := q.Settings().Put(ctx, setupKey(hash), raw); err != nil {
		return SetupCode{}, err
	}
	if err := q.Settings().Put(ctx, setupOwnerKey(a.ID), []byte(setupKey(hash))); err != nil {
		return SetupCode{}, err
	}
	return SetupCode{Code: display, ExpiresAt: rec.ExpiresAt}, nil
}

// dropSetupCode forgets the admin's live setup code, if any.
func dropSetupCode(ctx context.Context, q store.Queries, adminID string) error {
	key, err := q.Settings().Get(ctx, setupOwnerKey(adminID))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range []string{string(key), setupOwnerKey(adminID)} {
		if err := q.Settings().Delete(ctx, k); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// ResetPassword is an administrator issuing a new setup code for an admin who
// lost their password: the old password stops working and sessions end.
func (s *Service) ResetPassword(ctx context.Context, p *Principal, tenantID, adminID string, actor Actor) (SetupCode, error) {
	now := s.clock()
	var code SetupCode
	err := s.st.Tx(ctx, func(q store.Queries) error {
		a, err := getAdmin(ctx, q, tenantID, adminID)
		if err != nil {
			return err
		}
		if err := s.ensureCanManage(ctx, q, p, a); err != nil {
			return err
		}
		a.PasswordHash, a.UpdatedAt = "", now
		if err := q.Admins().Update(ctx, a); err != nil {
			return err
		}
		if _, err := q.Sessions().RevokeAllForAdmin(ctx, a.ID, "", now); err != nil {
			return err
		}
		if code, err = s.issueSetupCode(ctx, q, a, now); err != nil {
			return err
		}
		return appendAudit(ctx, q, actor.Entry(tenantID, "admin.password_reset", "admin", a.ID, outcomeSuccess))
	})
	return code, err
}

// CompleteSetup sets the password of the admin a setup code was issued for
// and burns the code.
func (s *Service) CompleteSetup(ctx context.Context, code, newPassword string, actor Actor) (store.Admin, error) {
	kind, hash, err := credential.Parse(code)
	if err != nil || kind != credential.BootstrapCode {
		return store.Admin{}, apperr.Invalid("the setup code is not valid; ask an administrator for a new one")
	}
	now := s.clock()
	// Read first, so a wrong code costs no password hash.
	a, err := s.setupCodeAdmin(ctx, s.st.Read(), hash, now)
	if err != nil {
		return store.Admin{}, err
	}
	pwHash, err := s.hashPassword(ctx, a, newPassword)
	if err != nil {
		return store.Admin{}, err
	}
	var out store.Admin
	err = s.st.Tx(ctx, func(q store.Queries) error {
		a, err := s.setupCodeAdmin(ctx, q, hash, now)
		if err != nil {
			return err
		}
		if err := storePassword(ctx, q, &a, pwHash, now); err != nil {
			return err
		}
		if err := dropSetupCode(ctx, q, a.ID); err != nil {
			return err
		}
		// Whoever held the account before the code was issued is out.
		if _, err := q.Sessions().RevokeAllForAdmin(ctx, a.ID, "", now); err != nil {
			return err
		}
		actor.Type, actor.ID = store.ActorAdmin, a.ID
		out = a
		return appendAudit(ctx, q, actor.Entry(a.TenantID, "admin.setup_complete", "admin", a.ID, outcomeSuccess))
	})
	return out, err
}

// setupCodeAdmin returns the admin a live setup code (given by its hash) was
// issued for.
func (s *Service) setupCodeAdmin(ctx context.Context, q store.Queries, codeHash []byte, now time.Time) (store.Admin, error) {
	raw, err := q.Settings().Get(ctx, setupKey(codeHash))
	if errors.Is(err, store.ErrNotFound) {
		return store.Admin{}, apperr.Invalid("the setup code is not valid or was already used; ask an administrator for a new one")
	}
	if err != nil {
		return store.Admin{}, err
	}
	var rec setupRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return store.Admin{}, err
	}
	if !now.Before(rec.ExpiresAt) {
		return store.Admin{}, apperr.Invalid("the setup code has expired; ask an administrator for a new one")
	}
	return getAdmin(ctx, q, rec.TenantID, rec.AdminID)
}

// hashPassword checks pw against the policy (length, breached list, personal
// words, reuse) and hashes it. Callers run it before their transaction:
// argon2id costs ~65 ms per hash, and one more per history entry compared,
// while on SQLite a transaction holds the single writer every device
// check-in waits for.
func (s *Service) hashPassword(ctx context.Context, a store.Admin, pw string) (string, error) {
	history, err := s.st.Read().Admins().RecentPasswordHashes(ctx, a.ID, s.policy.HistoryDepth)
	if err != nil {
		return "", err
	}
	local, _, _ := strings.Cut(a.Email, "@")
	if err := s.policy.Check(ctx, pw, append([]string{local}, strings.Fields(a.DisplayName)...), history); err != nil {
		var pe *password.PolicyError
		if errors.As(err, &pe) {
			return "", apperr.New(apperr.KindInvalid, "%s", pe.Error()).With("field", "password").With("reason", pe.Code)
		}
		return "", err
	}
	return password.Hash(ctx, pw)
}

// storePassword makes pwHash a's password and adds it to the history.
func storePassword(ctx context.Context, q store.Queries, a *store.Admin, pwHash string, now time.Time) error {
	a.PasswordHash, a.PasswordSetAt, a.UpdatedAt = pwHash, now, now
	a.FailedLogins, a.LockedUntil = 0, time.Time{}
	if err := q.Admins().Update(ctx, *a); err != nil {
		return err
	}
	return q.Admins().AddPasswordHistory(ctx, a.ID, pwHash, now)
}

// ChangePassword is an admin changing their own password; their other
// sessions end.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next string, actor Actor) error {
	if p.Session == nil || !p.Session.MFAVerified {
		return apperr.Forbidden("change your password from a fully signed-in session")
	}
	now := s.clock()
	admin, err := s.st.Read().Admins().Get(ctx, p.HomeTenant, p.AdminID)
	if err != nil {
		return err
	}
	if allowed, retry := s.login.Check(admin.FailedLogins, admin.LastFailureAt, admin.LockedUntil, now); !allowed {
		return apperr.New(apperr.KindRateLimited, "too many failed attempts; try again later").With("retry_after_seconds", int(retry.Seconds()+0.999))
	}
	ok, _, err := password.Verify(ctx, admin.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		// Counts towards lockout like a failed login: a hijacked session
		// must not be a free oracle for the password.
		if ferr := s.recordLoginFailure(ctx, admin, actor, "admin.password_change", "wrong_current_password"); apperr.IsKind(ferr, apperr.KindInternal) {
			return ferr
		}
		return apperr.Invalid("the current password is wrong").With("field", "current_password")
	}
	pwHash, err := s.hashPassword(ctx, admin, next)
	if err != nil {
		return err
	}
	return s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Admins().Get(ctx, p.HomeTenant, p.AdminID)
		if err != nil {
			return err
		}
		if a.PasswordHash != admin.PasswordHash {
			return apperr.Conflict("the password changed meanwhile; sign in again")
		}
		if err := storePassword(ctx, q, &a, pwHash, now); err != nil {
			return err
		}
		if _, err := q.Sessions().RevokeAllForAdmin(ctx, a.ID, p.Session.ID, now); err != nil {
			return err
		}
		return appendAudit(ctx, q, actor.Entry(a.TenantID, "admin.password_change", "admin", a.ID, outcomeSuccess))
	})
}

// GetAdmin returns an admin of tenantID.
func (s *Service) GetAdmin(ctx context.Context, tenantID, adminID string) (store.Admin, error) {
	return getAdmin(ctx, s.st.Read(), tenantID, adminID)
}

// ListAdmins pages through tenantID's admins.
func (s *Service) ListAdmins(ctx context.Context, tenantID string, p store.Page) ([]store.Admin, error) {
	return s.st.Read().Admins().List(ctx, tenantID, p)
}

// AdminPatch changes an admin; nil fields stay as they are.
type AdminPatch struct {
	DisplayName *string
	Disabled    *bool
}

// UpdateAdmin renames, disables or re-enables an admin. Disabling ends their
// sessions; an admin cannot disable themself or the last owner.
func (s *Service) UpdateAdmin(ctx context.Context, p *Principal, tenantID, adminID string, patch AdminPatch, actor Actor) (store.Admin, error) {
	if patch.DisplayName != nil {
		if err := validateDisplayName(*patch.DisplayName); err != nil {
			return store.Admin{}, err
		}
	}
	now := s.clock()
	var out store.Admin
	err := s.st.Tx(ctx, func(q store.Queries) error {
		a, err := getAdmin(ctx, q, tenantID, adminID)
		if err != nil {
			return err
		}
		changed := map[string]any{}
		if patch.DisplayName != nil {
			a.DisplayName = strings.TrimSpace(*patch.DisplayName)
			changed["display_name"] = true
		}
		if err := s.ensureCanManage(ctx, q, p, a); err != nil {
			return err
		}
		if patch.Disabled != nil && *patch.Disabled != a.Disabled {
			if *patch.Disabled {
				if a.ID == p.AdminID {
					return apperr.Conflict("you cannot disable your own account")
				}
				if err := ensureNotLastOwner(ctx, q, a.ID); err != nil {
					return err
				}
				if _, err := q.Sessions().RevokeAllForAdmin(ctx, a.ID, "", now); err != nil {
					return err
				}
			}
			a.Disabled = *patch.Disabled
			changed["disabled"] = a.Disabled
		}
		a.UpdatedAt = now
		if err := q.Admins().Update(ctx, a); err != nil {
			return err
		}
		out = a
		rec := actor.Entry(tenantID, "admin.update", "admin", a.ID, outcomeSuccess)
		rec.Details = changed
		return appendAudit(ctx, q, rec)
	})
	return out, err
}

// UnlockAdmin clears a lockout after failed logins.
func (s *Service) UnlockAdmin(ctx context.Context, tenantID, adminID string, actor Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		a, err := getAdmin(ctx, q, tenantID, adminID)
		if err != nil {
			return err
		}
		a.FailedLogins, a.LockedUntil, a.UpdatedAt = 0, time.Time{}, s.clock()
		if err := q.Admins().Update(ctx, a); err != nil {
			return err
		}
		return appendAudit(ctx, q, actor.Entry(tenantID, "admin.unlock", "admin", a.ID, outcomeSuccess))
	})
}

// DeleteAdmin removes an admin with their sessions and assignments. The audit
// trail keeps only their ID.
func (s *Service) DeleteAdmin(ctx context.Context, p *Principal, tenantID, adminID string, actor Actor) error {
	if adminID == p.AdminID {
		return apperr.Conflict("you cannot delete your own account")
	}
	return s.st.Tx(ctx, func(q store.Queries) error {
		a, err := getAdmin(ctx, q, tenantID, adminID)
		if err != nil {
			return err
		}
		if err := s.ensureCanManage(ctx, q, p, a); err != nil {
			return err
		}
		if err := ensureNotLastOwner(ctx, q, adminID); err != nil {
			return err
		}
		if err := dropSetupCode(ctx, q, adminID); err != nil {
			return err
		}
		if err := q.Admins().Delete(ctx, tenantID, adminID); err != nil {
			return err
		}
		return appendAudit(ctx, q, actor.Entry(tenantID, "admin.delete", "admin", adminID, outcomeSuccess))
	})
}

// ensureCanManage refuses to act on an admin holding a role the caller could
// not grant: otherwise an Administrator could reset an Owner's password or
// authenticator, sign in as them and hold admin.owner.
func (s *Service) ensureCanManage(ctx context.Context, q store.Queries, p *Principal, target store.Admin) error {
	as, err := q.Assignments().ListForAdmin(ctx, target.ID)
	if err != nil {
		return err
	}
	for _, a := range as {
		held, err := s.rolePermissions(ctx, q, a.TenantID, a.RoleID)
		if err != nil {
			return err
		}
		granter, err := s.Permissions(ctx, p, a.TenantID)
		if err != nil {
			return err
		}
		if !granter.Covers(held.Sorted()) || (a.RoleID == "owner" && !granter.Has("admin.owner")) {
			return apperr.Forbidden("this admin holds roles you could not grant yourself; ask someone who can")
		}
	}
	return nil
}

// ensureNotLastOwner refuses to remove or disable the only active Owner of
// a tenant, which would leave it unmanageable.
func ensureNotLastOwner(ctx context.Context, q store.Queries, adminID string) error {
	as, err := q.Assignments().ListForAdmin(ctx, adminID)
	if err != nil {
		return err
	}
	for _, a := range as {
		if a.RoleID != "owner" {
			continue
		}
		others, err := activeOwners(ctx, q, a.TenantID, adminID)
		if err != nil {
			return err
		}
		if others == 0 {
			return apperr.Conflict("this admin is the last active Owner of a tenant; make someone else Owner first")
		}
	}
	return nil
}

// activeOwners counts the enabled Owners of tenantID other than except.
func activeOwners(ctx context.Context, q store.Queries, tenantID, except string) (int, error) {
	n, page := 0, store.Page{Limit: 1000}
	for {
		as, err := q.Assignments().ListForTenant(ctx, tenantID, page)
		if err != nil {
			return 0, err
		}
		for _, a := range as {
			if a.RoleID != "owner" || a.AdminID == except {
				continue
			}
			if admin, err := q.Admins().GetByID(ctx, a.AdminID); err == nil && !admin.Disabled {
				n++
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return 0, err
			}
		}
		if len(as) < page.Limit {
			return n, nil
		}
		page.After = as[len(as)-1].ID
	}
}

func getAdmin(ctx context.Context, q store.Queries, tenantID, adminID string) (store.Admin, error) {
	a, err := q.Admins().Get(ctx, tenantID, adminID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Admin{}, apperr.NotFound("admin")
	}
	return a, err
}

// GetAdminByID returns the admin a principal names.
func (s *Service) GetAdminByID(ctx context.Context, adminID string) (store.Admin, error) {
	a, err := s.st.Read().Admins().GetByID(ctx, adminID)
	return a, notFoundAs(err, "admin")
}
