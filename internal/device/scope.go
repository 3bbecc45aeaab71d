package device

import (
	"context"
	"slices"

	"github.com/steward-mdm/steward/internal/store"
)

// Scope is the part of a tenant's fleet a caller may see or act on: every
// device, or the members of some groups (a group-limited role).
type Scope struct {
	groups  []string
	limited bool
}

// Everything is the scope of a tenant-wide permission.
func Everything() Scope { return Scope{} }

// Groups limits a scope to the members of groups (none: nothing at all).
func Groups(groups []string) Scope { return Scope{groups: slices.Clone(groups), limited: true} }

// Limited reports whether the scope is narrower than the tenant.
func (s Scope) Limited() bool { return s.limited }

// Filter is the store's DeviceQuery.Scope: nil for everything.
func (s Scope) Filter() []string {
	if !s.limited {
		return nil
	}
	if s.groups == nil {
		return []string{}
	}
	return s.groups
}

// AllowsGroup reports whether a whole group lies inside the scope.
func (s Scope) AllowsGroup(groupID string) bool {
	return !s.limited || slices.Contains(s.groups, groupID)
}

// Contains reports whether the device lies inside the scope.
func (s Scope) Contains(ctx context.Context, q store.Queries, tenantID, deviceID string) (bool, error) {
	if !s.limited {
		return true, nil
	}
	if len(s.groups) == 0 {
		return false, nil
	}
	return q.Groups().InAny(ctx, tenantID, deviceID, s.groups)
}
