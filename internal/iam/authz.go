package iam

import (
	"context"
	"errors"
	"slices"

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
	// admin is the admin as authentication read it, so authorising the
	// same request need not read it again.
	admin *store.Admin
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
// answer 404 then, so a tenant's existence is not revealed. Assignments
// limited to groups are not included: see Grants.
func (s *Service) Permissions(ctx context.Context, p *Principal, tenantID string) (rbac.Set, error) {
	g, err := s.Grants(ctx, p, tenantID)
	return g.Tenant, err
}

// Grants is what a principal holds on one tenant: tenant-wide permissions,
// and permissions that hold only for devices in some groups (a Help Desk
// role limited to one site's devices).
type Grants struct {
	Tenant rbac.Set
	Groups map[rbac.Permission][]string
	// Addressed is the tenant the grants are on, as read to find them.
	Addressed store.Tenant
}

// GroupsFor returns the groups perm is limited to, and whether the
// principal holds perm at all: (nil, true) means tenant-wide.
func (g Grants) GroupsFor(perm rbac.Permission) ([]string, bool) {
	if g.Tenant.Has(perm) {
		return nil, true
	}
	groups := g.Groups[perm]
	return groups, len(groups) > 0
}

// Grants returns p's tenant-wide and group-limited permissions on tenantID.
func (s *Service) Grants(ctx context.Context, p *Principal, tenantID string) (Grants, error) {
	q := s.st.Read()
	chain, err := s.TenantChain(ctx, q, tenantID)
	if apperr.IsKind(err, apperr.KindNotFound) || (err == nil && len(chain) == 0) {
		return Grants{Tenant: rbac.Set{}}, nil
	}
	if err != nil {
		return Grants{}, err
	}
	inChain := make(map[string]bool, len(chain))
	for _, t := range chain {
		inChain[t.ID] = true
	}
	admin, err := s.adminGrants(ctx, q, p, tenantID, inChain)
	admin.Addressed = chain[0]
	if err != nil || p.Token == nil {
		return admin, err
	}
	if !inChain[p.Token.TenantID] {
		return Grants{Tenant: rbac.Set{}}, nil
	}
	rolePerms, err := s.rolePermissions(ctx, q, p.Token.TenantID, p.Token.RoleID)
	if err != nil {
		return Grants{}, err
	}
	out := Grants{Tenant: rbac.Set{}, Groups: map[rbac.Permission][]string{}, Addressed: chain[0]}
	for perm := range rolePerms {
		if admin.Tenant.Has(perm) {
			out.Tenant[perm] = true
		} else if gs := admin.Groups[perm]; len(gs) > 0 {
			out.Groups[perm] = gs
		}
	}
	return out, nil
}

// adminGrants collects the admin's assignments on the tenant chain. A
// group-limited assignment counts only on the tenant its groups belong to,
// and only for the permissions that act on devices one by one.
func (s *Service) adminGrants(ctx context.Context, q store.Queries, p *Principal, tenantID string, inChain map[string]bool) (Grants, error) {
	out := Grants{Tenant: rbac.Set{}, Groups: map[rbac.Permission][]string{}}
	admin := p.admin
	if admin == nil || admin.ID != p.AdminID {
		a, err := q.Admins().GetByID(ctx, p.AdminID)
		if errors.Is(err, store.ErrNotFound) {
			return out, nil
		}
		if err != nil {
			return Grants{}, err
		}
		admin = &a
	}
	if admin.Disabled {
		return out, nil
	}
	as, err := q.Assignments().ListForAdmin(ctx, p.AdminID)
	if err != nil {
		return Grants{}, err
	}
	for _, a := range as {
		if !inChain[a.TenantID] || (len(a.Groups) > 0 && a.TenantID != tenantID) {
			continue
		}
		rp, err := s.rolePermissions(ctx, q, a.TenantID, a.RoleID)
		if err != nil {
			return Grants{}, err
		}
		if len(a.Groups) == 0 {
			out.Tenant.Add(rp)
			continue
		}
		for perm := range rp {
			if rbac.GroupScopable(perm) {
				out.Groups[perm] = appendUnique(out.Groups[perm], a.Groups...)
			}
		}
	}
	return out, nil
}

func appendUnique(list []string, more ...string) []string {
	for _, m := range more {
		if !slices.Contains(list, m) {
			list = append(list, m)
		}
	}
	return list
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
// the tenant but lacks perm tenant-wide.
func (s *Service) Authorize(ctx context.Context, p *Principal, tenantID string, perm rbac.Permission) (rbac.Set, error) {
	g, err := s.AuthorizeScoped(ctx, p, tenantID, perm, false)
	return g.Tenant, err
}

// AuthorizeScoped is Authorize for routes that honour group limits: with
// scoped, perm held on some groups only is enough (the caller then limits
// what it shows and does to g.GroupsFor(perm)).
func (s *Service) AuthorizeScoped(ctx context.Context, p *Principal, tenantID string, perm rbac.Permission, scoped bool) (Grants, error) {
	g, err := s.Grants(ctx, p, tenantID)
	if err != nil {
		return Grants{}, err
	}
	if len(g.Tenant) == 0 && len(g.Groups) == 0 {
		return Grants{}, apperr.NotFound("tenant")
	}
	if _, ok := g.GroupsFor(perm); g.Tenant.Has(perm) || (scoped && ok) {
		return g, nil
	}
	return Grants{}, apperr.Forbidden("this action needs the %q permission on this tenant", perm)
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
