package mdm

import (
	"context"
	"errors"

	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/store"
)

// ForgetTenant is the tenant-deletion hook: it deletes the tenant's CA keys,
// SCEP records and push certificate inside the deleting transaction, and
// drops this node's cached CA. Another node's cache keeps a deleted
// tenant's CA until it restarts, but it can no longer use it: every
// request also needs the tenant's enrolments or devices, which are gone.
func (s *Service) ForgetTenant(ctx context.Context, q store.Queries, tenantID string) error {
	if err := scep.ForgetTenant(ctx, q.Settings(), tenantID); err != nil {
		return err
	}
	if err := q.Settings().Delete(ctx, pushCertKey(tenantID)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.cas.Delete(tenantID)
	return nil
}

// PurgeExpiredChallenges deletes the SCEP challenges of profiles that were
// downloaded but not installed before they expired.
func (s *Service) PurgeExpiredChallenges(ctx context.Context) (int, error) {
	return scep.PurgeExpiredChallenges(ctx, s.st, s.clock())
}
