package iam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/store"
)

// maxAllowedCIDRs bounds an allowlist; longer lists belong in a firewall.
const maxAllowedCIDRs = 64

func validateTenantName(name string) error {
	n := strings.TrimSpace(name)
	if n == "" || utf8.RuneCountInString(n) > 100 || strings.ContainsAny(n, "\x00\r\n") {
		return apperr.Invalid("name must be 1 to 100 characters on one line").With("field", "name")
	}
	return nil
}

// Slugify derives a URL-safe identifier from a tenant name: lower-case ASCII
// letters and digits separated by single hyphens, at most 48 characters.
func Slugify(name string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			hyphen = false
		case b.Len() > 0 && !hyphen:
			b.WriteByte('-')
			hyphen = true
		}
		if b.Len() >= 48 {
			break
		}
	}
	slug := strings.Trim(b.String(), "-")
	if slug == "" {
		return "tenant"
	}
	return slug
}

// normaliseCIDRs validates an allowlist and returns it in canonical form
// (masked prefixes, single addresses as /32 or /128).
func normaliseCIDRs(in []string) ([]string, error) {
	if len(in) > maxAllowedCIDRs {
		return nil, apperr.Invalid("allowed_cidrs holds at most %d entries", maxAllowedCIDRs).With("field", "allowed_cidrs")
	}
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, c := range in {
		c = strings.TrimSpace(c)
		p, err := netip.ParsePrefix(c)
		if err != nil {
			addr, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return nil, apperr.Invalid("allowed_cidrs entries must be addresses or CIDR prefixes such as 192.0.2.0/24").
					With("field", "allowed_cidrs").With("value", truncate(c, 64))
			}
			p = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		s := p.Masked().String()
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// TenantInput describes a new customer tenant.
type TenantInput struct {
	Name         string
	Slug         string // optional; derived from Name when empty
	RequireMFA   bool
	AllowedCIDRs []string
}

// CreateCustomer adds a customer tenant under a provider. Customers do not
// have customers of their own: an MSP is one level deep.
func (s *Service) CreateCustomer(ctx context.Context, parentID string, in TenantInput, actor Actor) (store.Tenant, error) {
	if err := validateTenantName(in.Name); err != nil {
		return store.Tenant{}, err
	}
	slug := in.Slug
	if slug == "" {
		slug = Slugify(in.Name)
	} else if Slugify(slug) != slug {
		return store.Tenant{}, apperr.Invalid("slug must be lower-case letters, digits and single hyphens, at most 48 characters").With("field", "slug")
	}
	cidrs, err := normaliseCIDRs(in.AllowedCIDRs)
	if err != nil {
		return store.Tenant{}, err
	}
	now := s.clock()
	t := store.Tenant{ID: store.NewID(), ParentID: parentID, Kind: store.TenantCustomer, Name: strings.TrimSpace(in.Name),
		Slug: slug, RequireMFA: in.RequireMFA, AllowedCIDRs: cidrs, CreatedAt: now, UpdatedAt: now}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		parent, err := q.Tenants().Get(ctx, parentID)
		if err != nil {
			return notFoundAs(err, "tenant")
		}
		if parent.Kind != store.TenantProvider {
			return apperr.Invalid("customer tenants cannot have customers of their own")
		}
		if err := q.Tenants().Create(ctx, t); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("a tenant with this slug already exists; choose another slug").With("field", "slug")
			}
			return err
		}
		rec := actor.Entry(parentID, "tenant.create", "tenant", t.ID, outcomeSuccess)
		rec.Details = map[string]any{"require_mfa": t.RequireMFA, "allowed_cidrs": len(t.AllowedCIDRs)}
		return appendAudit(ctx, q, rec, actor.Entry(t.ID, "tenant.create", "tenant", t.ID, outcomeSuccess))
	})
	return t, err
}

// RootTenant returns the provider at the top of the install.
func (s *Service) RootTenant(ctx context.Context) (store.Tenant, error) {
	roots, err := s.st.Read().Tenants().ListChildren(ctx, "", store.Page{Limit: 1})
	if err != nil {
		return store.Tenant{}, err
	}
	if len(roots) == 0 {
		return store.Tenant{}, apperr.NotFound("tenant")
	}
	return roots[0], nil
}

// GetTenant returns one tenant.
func (s *Service) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	t, err := s.st.Read().Tenants().Get(ctx, id)
	return t, notFoundAs(err, "tenant")
}

// ListCustomers lists the customer tenants of a provider.
func (s *Service) ListCustomers(ctx context.Context, parentID string, p store.Page) ([]store.Tenant, error) {
	return s.st.Read().Tenants().ListChildren(ctx, parentID, p)
}

// TenantPatch changes a tenant; nil fields stay as they are.
type TenantPatch struct {
	Name         *string
	RequireMFA   *bool
	AllowedCIDRs *[]string
}

// UpdateTenant renames a tenant or changes its MFA and allowlist settings. An
// allowlist that would shut out the caller's own address is refused, so an
// admin cannot lock themself out by mistake.
func (s *Service) UpdateTenant(ctx context.Context, id string, patch TenantPatch, actor Actor) (store.Tenant, error) {
	var cidrs []string
	if patch.Name != nil {
		if err := validateTenantName(*patch.Name); err != nil {
			return store.Tenant{}, err
		}
	}
	if patch.AllowedCIDRs != nil {
		var err error
		if cidrs, err = normaliseCIDRs(*patch.AllowedCIDRs); err != nil {
			return store.Tenant{}, err
		}
		if len(cidrs) > 0 && !ipAllowed(cidrs, actor.SourceIP) {
			return store.Tenant{}, apperr.Invalid("the new allowlist does not include your own address; add it first").With("field", "allowed_cidrs")
		}
	}
	var out store.Tenant
	err := s.st.Tx(ctx, func(q store.Queries) error {
		t, err := q.Tenants().Get(ctx, id)
		if err != nil {
			return notFoundAs(err, "tenant")
		}
		changed := map[string]any{}
		if patch.Name != nil {
			t.Name = strings.TrimSpace(*patch.Name)
			changed["name"] = true
		}
		if patch.RequireMFA != nil {
			t.RequireMFA = *patch.RequireMFA
			changed["require_mfa"] = t.RequireMFA
		}
		if patch.AllowedCIDRs != nil {
			t.AllowedCIDRs = cidrs
			changed["allowed_cidrs"] = cidrs
		}
		t.UpdatedAt = s.clock()
		if err := q.Tenants().Update(ctx, t); err != nil {
			return notFoundAs(err, "tenant")
		}
		out = t
		rec := actor.Entry(t.ID, "tenant.update", "tenant", t.ID, outcomeSuccess)
		rec.Details = changed
		return appendAudit(ctx, q, rec)
	})
	return out, err
}

// DeleteTenant removes a customer tenant that no longer has admins, customer
// tenants or managed devices, with everything it holds: its devices' and
// people's records, its key vault (so its encrypted data is unreadable in
// every backup too), and, through the OnTenantDeleted hooks, what other
// services keep for it. The root provider cannot be deleted. Its audit
// chain stays in the database for the retention period: deleting a customer
// must not erase the record of what was done to it.
func (s *Service) DeleteTenant(ctx context.Context, id string, actor Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		t, err := q.Tenants().Get(ctx, id)
		if err != nil {
			return notFoundAs(err, "tenant")
		}
		if t.ParentID == "" {
			return apperr.Conflict("the provider tenant cannot be deleted")
		}
		if err := q.Tenants().Delete(ctx, id); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("the tenant still has admins, customer tenants or managed devices; " +
					"remove the admins and tenants, and retire, wipe or remove the devices first")
			}
			return notFoundAs(err, "tenant")
		}
		if err := s.forgetTenant(ctx, q, id); err != nil {
			return err
		}
		// A backup taken before now would bring the tenant back: the vault
		// remembers that it was deleted (ReconcileDeletedTenants).
		if err := q.Tombstones().Put(ctx, store.Tombstone{Kind: store.TombstoneTenantDeleted, SubjectID: id,
			ScopeID: t.ParentID, DecidedAt: s.now()}); err != nil {
			return err
		}
		return appendAudit(ctx, q, actor.Entry(t.ParentID, "tenant.delete", "tenant", t.ID, outcomeSuccess))
	})
}

func (s *Service) forgetTenant(ctx context.Context, q store.Queries, id string) error {
	for _, forget := range s.tenantDeleted {
		if err := forget(ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

// ReconcileDeletedTenants deletes again the customer tenants a restored
// backup brought back: deleted after the backup was taken, they return
// with their Apple keys (sealed under the master key, so readable) though
// not their personal data (their vault is gone). Each goes with whatever
// the backup holds of it, since it had none of that left when it was
// deleted, and the deletion is recorded again in its parent's audit log.
// A customer deleted before its provider goes first. For a day after a
// deletion it also removes what a request racing the deletion wrote.
// It runs after every restore, at start-up and every hour, on every node:
// a tenant another node deleted meanwhile counts as done. One tenant's
// failure does not hold the others back. It returns how many tenants it
// deleted.
func (s *Service) ReconcileDeletedTenants(ctx context.Context) (int, error) {
	var stones []store.Tombstone
	for p := (store.Page{Limit: 500}); ; {
		batch, err := s.st.Read().Tombstones().List(ctx, store.TombstoneTenantDeleted, s.now(), p)
		if err != nil {
			return 0, err
		}
		// Most tombstones have nothing left to do: read, do not lock.
		for _, stone := range batch {
			_, err := s.st.Read().Tenants().Get(ctx, stone.SubjectID)
			switch {
			case err == nil, s.now().Sub(stone.DecidedAt) < residueWindow:
				stones = append(stones, stone)
			case !errors.Is(err, store.ErrNotFound):
				return 0, err
			}
		}
		if len(batch) < p.Limit {
			break
		}
		p.After = batch[len(batch)-1].SubjectID
	}
	done := 0
	var failed []error
	// Each pass deletes the tenants whose customers are gone, so a chain of
	// deleted tenants needs as many passes as it is deep.
	for len(stones) > 0 {
		var waiting []store.Tombstone
		for _, stone := range stones {
			deleted, err := s.deleteAgain(ctx, stone)
			switch {
			case errors.Is(err, store.ErrConflict):
				waiting = append(waiting, stone)
			case err != nil:
				failed = append(failed, fmt.Errorf("tenant %s: %w", stone.SubjectID, err))
			case deleted:
				done++
			}
		}
		if len(waiting) == len(stones) {
			// A customer tenant no tombstone names (deleted before they
			// were kept) holds its provider back.
			for _, stone := range waiting {
				failed = append(failed, fmt.Errorf("tenant %s, which a restored backup brought back, still has customer tenants", stone.SubjectID))
			}
			break
		}
		stones = waiting
	}
	return done, errors.Join(failed...)
}

// residueWindow is how long after a tenant's deletion each pass removes
// again what is left of it: a request that read the tenant before its
// deletion committed (creating its CA, RA or push certificate, a notice, a
// setting) can write just after it, and nothing else would remove that.
const residueWindow = 25 * time.Hour

// deleteAgain deletes the tenant of stone if the database holds it, and
// reports whether it did; within residueWindow of the deletion, a tenant
// still gone has what is left of it removed.
func (s *Service) deleteAgain(ctx context.Context, stone store.Tombstone) (bool, error) {
	deleted := false
	err := s.st.Tx(ctx, func(q store.Queries) error {
		deleted = false
		err := q.Tenants().DeleteAgain(ctx, stone.SubjectID)
		if errors.Is(err, store.ErrNotFound) {
			// Gone already (another node, or its deletion itself).
			if s.now().Sub(stone.DecidedAt) >= residueWindow {
				return nil
			}
			if err := q.Tenants().PurgeLeftovers(ctx, stone.SubjectID); err != nil {
				return err
			}
			return s.forgetTenant(ctx, q, stone.SubjectID)
		}
		if err != nil {
			return err
		}
		if err := s.forgetTenant(ctx, q, stone.SubjectID); err != nil {
			return err
		}
		deleted = true
		e := SystemActor.Entry(stone.ScopeID, "tenant.delete", "tenant", stone.SubjectID, outcomeSuccess)
		e.Details = map[string]any{"reapplied_after_restore": true, "deleted_at": stone.DecidedAt.UTC().Format(time.RFC3339)}
		return appendAudit(ctx, q, e)
	})
	return deleted, err
}

// OnTenantDeleted registers fn to run in the transaction that deletes a
// tenant, for services that keep the tenant's data outside its tables (keys
// under their own names, caches). Register before serving requests.
func (s *Service) OnTenantDeleted(fn func(ctx context.Context, q store.Queries, tenantID string) error) {
	s.tenantDeleted = append(s.tenantDeleted, fn)
}

// notFoundAs turns store.ErrNotFound into the API's 404 for what.
func notFoundAs(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound(what)
	}
	return err
}
