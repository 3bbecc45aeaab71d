package mdm

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/store"
)

// ForgetTenant is the tenant-deletion hook: it deletes the tenant's CA keys,
// SCEP records, push certificate (and APNs' refusal of it), unused
// certificate bindings and the replacements waiting on its earlier records
// inside the deleting transaction, and drops this node's cached CA, push
// failure counts and APNs clients of the tenant (should the deletion roll
// back, the next push builds the client again). Another node's cache keeps
// a deleted tenant's CA until it restarts, but it can no longer use it:
// every request also needs the tenant's enrolments or devices, which are
// gone. Its APNs client, and one a push rebuilt here before the deletion
// committed, are closed by the pushers' idle sweep within idleClientLife.
func (s *Service) ForgetTenant(ctx context.Context, q store.Queries, tenantID string) error {
	if err := scep.ForgetTenant(ctx, q.Settings(), tenantID); err != nil {
		return err
	}
	if err := q.Settings().Delete(ctx, pushCertKey(tenantID)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := deletePushRefusal(ctx, q, tenantID); err != nil {
		return err
	}
	if err := forgetCertBindings(ctx, q, tenantID); err != nil {
		return err
	}
	if _, err := q.Settings().DeletePrefix(ctx, replacementsOf(tenantID)); err != nil {
		return err
	}
	s.cas.Delete(tenantID)
	s.dropPushClients(tenantID)
	s.pushFailures.DeletePartialMatch(prometheus.Labels{"tenant": tenantID})
	s.deviceRequests.DeletePartialMatch(prometheus.Labels{"tenant": tenantID})
	return nil
}

// forgetCertBindings deletes tenantID's certificate bindings, and unreadable
// ones, which nothing could use. They are keyed by certificate, so every
// binding is read; a tenant is deleted rarely, and bindings live only from
// issuance to the device's first check-in.
func forgetCertBindings(ctx context.Context, q store.Queries, tenantID string) error {
	after := ""
	for {
		page, err := q.Settings().ListPrefix(ctx, certBindingPrefix, after, 500)
		if err != nil || len(page) == 0 {
			return err
		}
		after = page[len(page)-1].Key
		for _, s := range page {
			var b certBinding
			if json.Unmarshal(s.Value, &b) == nil && b.TenantID != tenantID {
				continue
			}
			// Another node forgetting the same tenant may have deleted it.
			if err := q.Settings().Delete(ctx, s.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
}

// PurgeStaleCertBindings deletes the bindings of certificates that expired
// unused (SCEP issued them, the device never checked in with them) and any
// binding that cannot be read, which could never be used either.
func (s *Service) PurgeStaleCertBindings(ctx context.Context) (int, error) {
	now := s.clock()
	return store.PurgeSettings(ctx, s.st, certBindingPrefix, func(set store.Setting) bool {
		var b certBinding
		if json.Unmarshal(set.Value, &b) != nil {
			return true
		}
		return !b.NotAfter.IsZero() && !now.Before(b.NotAfter)
	})
}

// PurgeExpiredChallenges deletes the SCEP challenges of profiles that were
// downloaded but not installed before they expired.
func (s *Service) PurgeExpiredChallenges(ctx context.Context) (int, error) {
	return scep.PurgeExpiredChallenges(ctx, s.st, s.clock())
}
