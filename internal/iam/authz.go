package iam

import (
	"context"
	"errors"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/rbac"
	"github.com/steward-mdm/steward/internal/store"
)

// Principal is an authenticated caller: an admin through a session, or an
// API token.
type Principal struct {
	Type       store.ActorType // ActorAdmin or ActorToken
	AdminID    string          // the admin, or for a token the admin who created it
	HomeTenant string          // the admin's home tenant, or the token's tenant
	Session    *store.Session  // set for session logins
	Token      *store.APIToken // set for token calls
	// MFAEnrolled says the admin signs in with a second factor, so tenants
	// that require one accept the session.
	MFAEnrolled bool
}

// Actor turns the principal into the audit actor for one request.
func (p *Principal) Actor(sourceIP, requestID, userAgent string) Actor {
	a := Actor{Type: p.Type, ID: p.AdminID, SourceIP: sourceIP, RequestID: requestID, UserAgent: userAgent}
	if p.Token != nil {
		a.ID = p.Token.ID
	}
	return a
}

// maxTenantDepth bounds the parent walk so a corrupted parent cycle cannot
// loop forever.
const maxTenantDepth = 8

// TenantChain returns tenantID followed by its ancestors, nearest first.
// ErrNotFound (as an apperr) when the tenant does not exist.
func (s *Service) TenantChain(ctx context.Context, q store.Queries, tenantID string) ([]store.Tenant, error) {
	var chain []store.Tenant
	id := tenantID
	for i := 0; id != "" && i < maxTenantDepth; i++ {
		t, err := q.Tenants().Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.NotFound("tenant")
		}
		if err != nil {
			return nil, err
		}
		chain = append(chain, t)
		id = t.ParentID
	}
	return chain, nil
}

// Permissions returns what p may do on tenantID: the union of the roles
// assigned on that tenant or any tenant above it. For an API token it is the
// token's role, cut down to what its creator still holds, so a token never
// outlives its creator's access. An empty set means no access at all; callers
// answer 404 then, so a tenant's existence is not revealed.
func (s *Service) Permissions(ctx context.Context, p *Principal, tenantID string) (rbac.Set, error) {
	q := s.st.Read()
	chain, err := s.TenantChain(ctx, q, tenantID)
	if apperr.IsKind(err, apperr.KindNotFound) {
		return rbac.Set{}, nil
	}
	if err != nil {
		return nil, err
	}
	inChain := make(map[string]bool, len(chain))
	for _, t := range chain {
		inChain[t.ID] = true
	}
	adminPerms, err := s.adminPermissions(ctx, q, p.AdminID, inChain)
	if err != nil {
		return nil, err
	}
	if p.Token == nil {
		return adminPerms, nil
	}
	if !inChain[p.Token.TenantID] {
		return rbac.Set{}, nil
	}
	rolePerms, err := s.rolePermissions(ctx, q, p.Token.TenantID, p.Token.RoleID)
	if err != nil {
		return nil, err
	}
	out := rbac.Set{}
	for perm := range rolePerms {
		if adminPerms.Has(perm) {
			out[perm] = true
		}
	}
	return out, nil
}

func (s *Service) adminPermissions(ctx context.Context, q store.Queries, adminID string, inChain map[string]bool) (rbac.Set, error) {
	admin, err := q.Admins().GetByID(ctx, adminID)
	if errors.Is(err, store.ErrNotFound) {
		return rbac.Set{}, nil
	}
	if err != nil {
		return nil, err
	}
	if admin.Disabled {
		return rbac.Set{}, nil
	}
	as, err := q.Assignments().ListForAdmin(ctx, adminID)
	if err != nil {
		return nil, err
	}
	perms := rbac.Set{}
	for _, a := range as {
		if !inChain[a.TenantID] {
			continue
		}
		rp, err := s.rolePermissions(ctx, q, a.TenantID, a.RoleID)
		if err != nil {
			return nil, err
		}
		perms.Add(rp)
	}
	return perms, nil
}

// rolePermissions resolves a built-in role or a custom role of tenantID. A
// custom role deleted under an assignment grants nothing.
func (s *Service) rolePermissions(ctx context.Context, q store.Queries, tenantID, roleID string) (rbac.Set, error) {
	if b, ok := rbac.BuiltinByID(roleID); ok {
		return rbac.NewSet(b.Permissions...), nil
	}
	r, err := q.Roles().Get(ctx, tenantID, roleID)
	if errors.Is(err, store.ErrNotFound) {
		return rbac.Set{}, nil
	}
	if err != nil {
		return nil, err
	}
	set := rbac.Set{}
	for _, p := range r.Permissions {
		if rbac.Known(rbac.Permission(p)) {
			set[rbac.Permission(p)] = true
		}
	}
	return set, nil
}

// Authorize answers one route's question: may p use perm on tenantID? It
// returns 404 when p has no access to the tenant at all and 403 when p sees
// the tenant but lacks perm.
func (s *Service) Authorize(ctx context.Context, p *Principal, tenantID string, perm rbac.Permission) (rbac.Set, error) {
	perms, err := s.Permissions(ctx, p, tenantID)
	if err != nil {
		return nil, err
	}
	if len(perms) == 0 {
		return nil, apperr.NotFound("tenant")
	}
	if !perms.Has(perm) {
		return nil, apperr.Forbidden("this action needs the %q permission on this tenant", perm)
	}
	return perms, nil
}

// VisibleTenants lists the tenants p holds perm on, starting from the tenants
// p is assigned to and walking down to their customers.
func (s *Service) VisibleTenants(ctx context.Context, p *Principal, perm rbac.Permission) ([]store.Tenant, error) {
	q := s.st.Read()
	var roots []string
	if p.Token != nil {
		roots = []string{p.Token.TenantID}
	} else {
		as, err := q.Assignments().ListForAdmin(ctx, p.AdminID)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			roots = append(roots, a.TenantID)
		}
	}
	seen := map[string]bool{}
	var out []store.Tenant
	var walk func(id string, depth int) error
	walk = func(id string, depth int) error {
		if seen[id] || depth > maxTenantDepth {
			return nil
		}
		seen[id] = true
		perms, err := s.Permissions(ctx, p, id)
		if err != nil {
			return err
		}
		if perms.Has(perm) {
			t, err := q.Tenants().Get(ctx, id)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		after := ""
		for {
			kids, err := q.Tenants().ListChildren(ctx, id, store.Page{After: after, Limit: 1000})
			if err != nil {
				return err
			}
			for _, k := range kids {
				if err := walk(k.ID, depth+1); err != nil {
					return err
				}
			}
			if len(kids) < 1000 {
				return nil
			}
			after = kids[len(kids)-1].ID
		}
	}
	for _, r := range roots {
		if err := walk(r, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}
