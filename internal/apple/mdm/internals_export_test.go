package mdm

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/apns"
)

// HasClient reports whether the pusher holds an APNs client for the tenant.
func (p *Pusher) HasClient(tenantID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.clients[tenantID]
	return ok
}

// DropIdleClients runs the idle-client sweep of Run's loop.
func (p *Pusher) DropIdleClients() { p.dropIdleClients() }

// SetClaim makes the pusher's runs claim their channels for d instead of
// pushClaim, and so send for batchTime(d).
func (p *Pusher) SetClaim(d time.Duration) { p.claim = d }

// StrandedHold is strandedHold.
const StrandedHold = strandedHold

// PublicRootPool is publicRootPool.
var PublicRootPool = publicRootPool

// SetPublicRoots makes pool the publicly trusted roots until t ends.
func SetPublicRoots(t *testing.T, pool *x509.CertPool) {
	old := publicRoots
	publicRoots = func() *x509.CertPool { return pool }
	t.Cleanup(func() { publicRoots = old })
}

// RecordPushRefusal is recordPushRefusal, as a node pushing with the
// certificate of serial would call it.
func (s *Service) RecordPushRefusal(ctx context.Context, tenantID, serial string, r apns.Result) (bool, error) {
	return s.recordPushRefusal(ctx, tenantID, serial, r)
}
