package iam

import (
	"context"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/rbac"
	"github.com/steward-mdm/steward/internal/store"
)

// RoleInput describes a custom role.
type RoleInput struct {
	Name        string
	Description string
	Permissions []string
}

func (in RoleInput) validate(granter rbac.Set) ([]string, error) {
	n := strings.TrimSpace(in.Name)
	if n == "" || utf8.RuneCountInString(n) > 64 || strings.ContainsAny(n, "\x00\r\n") {
		return nil, apperr.Invalid("name must be 1 to 64 characters on one line").With("field", "name")
	}
	if utf8.RuneCountInString(in.Description) > 500 {
		return nil, apperr.Invalid("description must be at most 500 characters").With("field", "description")
	}
	if len(in.Permissions) == 0 {
		return nil, apperr.Invalid("a role needs at least one permission").With("field", "permissions")
	}
	var perms []rbac.Permission
	for _, p := range in.Permissions {
		if !rbac.Known(rbac.Permission(p)) {
			return nil, apperr.Invalid("unknown permission; GET /api/v1/permissions lists them").With("field", "permissions").With("value", truncate(p, 64))
		}
		perms = append(perms, rbac.Permission(p))
	}
	if !granter.Covers(perms) {
		return nil, apperr.Forbidden("a role cannot hold permissions you do not hold yourself")
	}
	out := make([]string, 0, len(perms))
	for _, p := range rbac.NewSet(perms...).Sorted() {
		out = append(out, string(p))
	}
	return out, nil
}

// ListRoles returns the built-in roles followed by the tenant's custom roles.
func (s *Service) ListRoles(ctx context.Context, tenantID string) ([]store.Role, error) {
	out := make([]store.Role, 0, len(rbac.Builtin))
	for _, b := range rbac.Builtin {
		out = append(out, BuiltinRole(b))
	}
	custom, err := s.st.Read().Roles().List(ctx, tenantID)
	return append(out, custom...), err
}

// GetRole returns a built-in role or a custom role of tenantID.
func (s *Service) GetRole(ctx context.Context, tenantID, id string) (store.Role, error) {
	if b, ok := rbac.BuiltinByID(id); ok {
		return BuiltinRole(b), nil
	}
	r, err := s.st.Read().Roles().Get(ctx, tenantID, id)
	return r, notFoundAs(err, "role")
}

// CreateRole adds a custom role to tenantID; granter is what the caller holds
// there, and bounds what the role may contain.
func (s *Service) CreateRole(ctx context.Context, tenantID string, in RoleInput, granter rbac.Set, actor Actor) (store.Role, error) {
	perms, err := in.validate(granter)
	if err != nil {
		return store.Role{}, err
	}
	r := store.Role{ID: store.NewID(), TenantID: tenantID, Name: strings.TrimSpace(in.Name),
		Description: strings.TrimSpace(in.Description), Permissions: perms, CreatedAt: s.clock()}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		if err := q.Roles().Create(ctx, r); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("this tenant already has a role with that name").With("field", "name")
			}
			return err
		}
		rec := actor.Entry(tenantID, "role.create", "role", r.ID, outcomeSuccess)
		rec.Details = map[string]any{"permissions": perms}
		return appendAudit(ctx, q, rec)
	})
	return r, err
}

// UpdateRole replaces a custom role's name, description and permissions.
func (s *Service) UpdateRole(ctx context.Context, tenantID, id string, in RoleInput, granter rbac.Set, actor Actor) (store.Role, error) {
	if _, ok := rbac.BuiltinByID(id); ok {
		return store.Role{}, apperr.Conflict("built-in roles cannot be changed; create a custom role instead")
	}
	perms, err := in.validate(granter)
	if err != nil {
		return store.Role{}, err
	}
	var out store.Role
	err = s.st.Tx(ctx, func(q store.Queries) error {
		r, err := q.Roles().Get(ctx, tenantID, id)
		if err != nil {
			return notFoundAs(err, "role")
		}
		// Removing permissions from a role is always allowed; only what it
		// gains must be held by the granter, which validate checked.
		r.Name, r.Description, r.Permissions = strings.TrimSpace(in.Name), strings.TrimSpace(in.Description), perms
		if err := q.Roles().Update(ctx, r); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("this tenant already has a role with that name").With("field", "name")
			}
			return notFoundAs(err, "role")
		}
		out = r
		rec := actor.Entry(tenantID, "role.update", "role", r.ID, outcomeSuccess)
		rec.Details = map[string]any{"permissions": perms}
		return appendAudit(ctx, q, rec)
	})
	return out, err
}

// DeleteRole removes a custom role that no assignment uses.
func (s *Service) DeleteRole(ctx context.Context, tenantID, id string, actor Actor) error {
	if _, ok := rbac.BuiltinByID(id); ok {
		return apperr.Conflict("built-in roles cannot be deleted")
	}
	return s.st.Tx(ctx, func(q store.Queries) error {
		if err := q.Roles().Delete(ctx, tenantID, id); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("the role is still assigned; remove its assignments first")
			}
			return notFoundAs(err, "role")
		}
		return appendAudit(ctx, q, actor.Entry(tenantID, "role.delete", "role", id, outcomeSuccess))
	})
}

// Assign grants an admin a role on tenantID. The admin must belong to this
// tenant or to the provider above it (an MSP technician), and the caller
// must hold every permission of the role there; Owner needs admin.owner.
//
// groups, when given, limits the role to devices in those groups of
// tenantID, and to its device permissions (rbac.GroupScopable).
func (s *Service) Assign(ctx context.Context, p *Principal, tenantID, adminID, roleID string, groups []string, actor Actor) (store.Assignment, error) {
	granter, err := s.Permissions(ctx, p, tenantID)
	if err != nil {
		return store.Assignment{}, err
	}
	if len(groups) > 50 {
		return store.Assignment{}, apperr.Invalid("a role can be limited to at most 50 groups")
	}
	now := s.clock()
	a := store.Assignment{ID: store.NewID(), AdminID: adminID, TenantID: tenantID, RoleID: roleID, Groups: groups, CreatedAt: now}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		if err := s.ensureGrantable(ctx, q, granter, tenantID, roleID); err != nil {
			return err
		}
		if roleID == "owner" && !granter.Has("admin.owner") {
			return apperr.Forbidden("granting Owner needs the admin.owner permission")
		}
		if err := s.ensureAssignable(ctx, q, p, tenantID, adminID); err != nil {
			return err
		}
		if err := q.Assignments().Create(ctx, a); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("the admin already has this role on this tenant")
			}
			return notFoundAs(err, "group")
		}
		rec := actor.Entry(tenantID, "assignment.create", "assignment", a.ID, outcomeSuccess)
		rec.Details = map[string]any{"admin_id": adminID, "role_id": roleID}
		if len(groups) > 0 {
			rec.Details["groups"] = groups
		}
		return appendAudit(ctx, q, rec)
	})
	return a, err
}

// ensureGrantable checks roleID exists on tenantID and holds nothing the
// granter lacks: nobody hands out, in an assignment or a token, more than
// they hold.
func (s *Service) ensureGrantable(ctx context.Context, q store.Queries, granter rbac.Set, tenantID, roleID string) error {
	perms, err := s.rolePermissions(ctx, q, tenantID, roleID)
	if err != nil {
		return err
	}
	if len(perms) == 0 {
		return apperr.NotFound("role")
	}
	if !granter.Covers(perms.Sorted()) {
		return apperr.Forbidden("you can only grant a role whose permissions you hold yourself")
	}
	return nil
}

// ensureAssignable checks the admin is homed in tenantID or one of its
// providers, and that the caller can see that admin: otherwise an admin ID
// from elsewhere answers 404 like one that does not exist.
func (s *Service) ensureAssignable(ctx context.Context, q store.Queries, p *Principal, tenantID, adminID string) error {
	admin, err := q.Admins().GetByID(ctx, adminID)
	if err != nil {
		return notFoundAs(err, "admin")
	}
	chain, err := s.TenantChain(ctx, q, tenantID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(chain, func(t store.Tenant) bool { return t.ID == admin.TenantID }) {
		return apperr.NotFound("admin")
	}
	if admin.TenantID != tenantID {
		home, err := s.Permissions(ctx, p, admin.TenantID)
		if err != nil {
			return err
		}
		if !home.Has("admin.read") {
			return apperr.NotFound("admin")
		}
	}
	return nil
}

// Unassign removes an assignment; the last Owner of a tenant stays.
func (s *Service) Unassign(ctx context.Context, p *Principal, tenantID, id string, actor Actor) error {
	granter, err := s.Permissions(ctx, p, tenantID)
	if err != nil {
		return err
	}
	return s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Assignments().Get(ctx, tenantID, id)
		if err != nil {
			return notFoundAs(err, "assignment")
		}
		if a.RoleID == "owner" {
			if !granter.Has("admin.owner") {
				return apperr.Forbidden("revoking Owner needs the admin.owner permission")
			}
			others, err := activeOwners(ctx, q, tenantID, a.AdminID)
			if err != nil {
				return err
			}
			if others == 0 && tenantHasNoParent(ctx, q, tenantID) {
				return apperr.Conflict("this is the last Owner of the tenant; make someone else Owner first")
			}
		}
		if err := q.Assignments().Delete(ctx, tenantID, id); err != nil {
			return notFoundAs(err, "assignment")
		}
		rec := actor.Entry(tenantID, "assignment.delete", "assignment", id, outcomeSuccess)
		rec.Details = map[string]any{"admin_id": a.AdminID, "role_id": a.RoleID}
		return appendAudit(ctx, q, rec)
	})
}

// tenantHasNoParent is true for the root provider, whose Owners nobody above
// can replace.
func tenantHasNoParent(ctx context.Context, q store.Queries, tenantID string) bool {
	t, err := q.Tenants().Get(ctx, tenantID)
	return err != nil || t.ParentID == ""
}

// ListAssignments lists the role assignments made on tenantID.
func (s *Service) ListAssignments(ctx context.Context, tenantID string, p store.Page) ([]store.Assignment, error) {
	return s.st.Read().Assignments().ListForTenant(ctx, tenantID, p)
}

// BuiltinRole presents a built-in role like a stored one.
func BuiltinRole(b rbac.BuiltinRole) store.Role {
	perms := make([]string, len(b.Permissions))
	for i, p := range b.Permissions {
		perms[i] = string(p)
	}
	return store.Role{ID: b.ID, Name: b.Name, Description: b.Description, Permissions: perms, BuiltIn: true}
}
