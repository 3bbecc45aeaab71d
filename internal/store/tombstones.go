package store

import (
	"context"
	"time"
)

// A Tombstone records in the key vault, which no backup holds, a decision
// a restored backup would otherwise undo. Reconciliation after a restore
// (and at every start) applies each one again.
type Tombstone struct {
	Kind string // TombstoneEnrolmentRevoked or TombstoneTenantDeleted
	// SubjectID is what the decision was about: the enrolment or tenant.
	SubjectID string
	// ScopeID is the tenant it was decided in: a link's own tenant, a
	// deleted tenant's parent.
	ScopeID   string
	DecidedAt time.Time
	// Until is when the decision stops mattering (a revoked link that could
	// not be used any more anyway); zero keeps it for good.
	Until time.Time
}

const (
	// TombstoneEnrolmentRevoked marks an enrolment link an admin revoked.
	TombstoneEnrolmentRevoked = "enrolment_revoked"
	// TombstoneTenantDeleted marks a deleted customer tenant.
	TombstoneTenantDeleted = "tenant_deleted"
)

// TombstoneStore holds the vault's tombstones.
type TombstoneStore interface {
	// Put records t; recording the same kind and subject again keeps the
	// first.
	Put(ctx context.Context, t Tombstone) error
	// List pages through the tombstones of kind, by subject ID after
	// p.After, leaving out those whose Until is before now.
	List(ctx context.Context, kind string, now time.Time, p Page) ([]Tombstone, error)
	// PurgeEnded deletes tombstones whose Until is before now.
	PurgeEnded(ctx context.Context, now time.Time) (int, error)
}
