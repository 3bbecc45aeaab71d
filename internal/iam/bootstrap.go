package iam

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/store"
)

const bootstrapKey = "bootstrap.code"

// bootstrapTTL bounds the first-owner code printed at start-up.
const bootstrapTTL = 24 * time.Hour

type bootstrapRecord struct {
	Hash      []byte    `json:"hash"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NeedsBootstrap reports whether no admin exists yet.
func (s *Service) NeedsBootstrap(ctx context.Context) (bool, error) {
	n, err := s.st.Read().Admins().Count(ctx)
	return n == 0, err
}

// IssueBootstrapCode replaces any earlier first-owner code with a new one.
// The server prints it at start-up while no admin exists.
func (s *Service) IssueBootstrapCode(ctx context.Context) (SetupCode, error) {
	display, hash, err := credential.New(credential.BootstrapCode)
	if err != nil {
		return SetupCode{}, err
	}
	rec := bootstrapRecord{Hash: hash, ExpiresAt: s.clock().Add(bootstrapTTL)}
	raw, _ := json.Marshal(rec)
	err = s.st.Tx(ctx, func(q store.Queries) error { return q.Settings().Put(ctx, bootstrapKey, raw) })
	return SetupCode{Code: display, ExpiresAt: rec.ExpiresAt}, err
}

// BootstrapInput creates the first owner and the provider tenant.
type BootstrapInput struct {
	Organisation string
	Email        string
	DisplayName  string
	Password     string
}

// Bootstrap creates the first owner with the one-time code printed at
// start-up; it works once, only while no admin exists.
func (s *Service) Bootstrap(ctx context.Context, code string, in BootstrapInput, actor Actor) (store.Admin, error) {
	kind, hash, err := credential.Parse(code)
	if err != nil || kind != credential.BootstrapCode {
		return store.Admin{}, apperr.Invalid("the bootstrap code is not valid; use the one printed by the server at start-up")
	}
	return s.bootstrap(ctx, in, actor, func(q store.Queries) error {
		raw, err := q.Settings().Get(ctx, bootstrapKey)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.Invalid("there is no bootstrap code; restart the server to print one")
		}
		if err != nil {
			return err
		}
		var rec bootstrapRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(rec.Hash, hash) != 1 {
			return apperr.Invalid("the bootstrap code is not valid; use the one printed by the server at start-up")
		}
		if !s.clock().Before(rec.ExpiresAt) {
			return apperr.Invalid("the bootstrap code has expired; restart the server to print a new one")
		}
		return nil
	})
}

// BootstrapDirect creates the first owner without a code, for an operator
// with direct access to the database (`steward admin bootstrap`).
func (s *Service) BootstrapDirect(ctx context.Context, in BootstrapInput) (store.Admin, error) {
	return s.bootstrap(ctx, in, SystemActor, func(store.Queries) error { return nil })
}

// bootstrap creates the first owner while none exists and checkCode
// accepts; the code, if any, is burnt with it. Both are checked once on a
// reader, so that a refused attempt costs no password hash, and again in the
// transaction.
func (s *Service) bootstrap(ctx context.Context, in BootstrapInput, actor Actor, checkCode func(store.Queries) error) (store.Admin, error) {
	if err := (AdminInput{Email: in.Email, DisplayName: in.DisplayName}).validate(); err != nil {
		return store.Admin{}, err
	}
	org := strings.TrimSpace(in.Organisation)
	if err := validateTenantName(org); err != nil {
		return store.Admin{}, err
	}
	allowed := func(q store.Queries) error {
		if n, err := q.Admins().Count(ctx); err != nil {
			return err
		} else if n > 0 {
			return apperr.Conflict("Steward already has an owner; sign in instead")
		}
		return checkCode(q)
	}
	if err := allowed(s.st.Read()); err != nil {
		return store.Admin{}, err
	}
	now := s.clock()
	admin := store.Admin{ID: store.NewID(), Email: normaliseEmail(in.Email), DisplayName: strings.TrimSpace(in.DisplayName),
		CreatedAt: now, UpdatedAt: now}
	pwHash, err := s.hashPassword(ctx, admin, in.Password)
	if err != nil {
		return store.Admin{}, err
	}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		if err := allowed(q); err != nil {
			return err
		}
		if err := q.Settings().Delete(ctx, bootstrapKey); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		root, err := s.ensureRootTenant(ctx, q, org, now)
		if err != nil {
			return err
		}
		admin.TenantID = root.ID
		if err := q.Admins().Create(ctx, admin); err != nil {
			return err
		}
		if err := storePassword(ctx, q, &admin, pwHash, now); err != nil {
			return err
		}
		asg := store.Assignment{ID: store.NewID(), AdminID: admin.ID, TenantID: root.ID, RoleID: "owner", CreatedAt: now}
		if err := q.Assignments().Create(ctx, asg); err != nil {
			return err
		}
		return appendAudit(ctx, q,
			actor.Entry(root.ID, "admin.bootstrap", "admin", admin.ID, outcomeSuccess),
			actor.Entry(root.ID, "assignment.create", "assignment", asg.ID, outcomeSuccess))
	})
	return admin, err
}

// ensureRootTenant returns the root provider, creating it on a fresh install.
func (s *Service) ensureRootTenant(ctx context.Context, q store.Queries, name string, now time.Time) (store.Tenant, error) {
	roots, err := q.Tenants().ListChildren(ctx, "", store.Page{Limit: 1})
	if err != nil {
		return store.Tenant{}, err
	}
	if len(roots) > 0 {
		return roots[0], nil
	}
	t := store.Tenant{ID: store.NewID(), Kind: store.TenantProvider, Name: name, Slug: Slugify(name), CreatedAt: now, UpdatedAt: now}
	if err := q.Tenants().Create(ctx, t); err != nil {
		return store.Tenant{}, err
	}
	return t, appendAudit(ctx, q, SystemActor.Entry(t.ID, "tenant.create", "tenant", t.ID, outcomeSuccess))
}
