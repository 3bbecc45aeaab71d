package mdm

import (
	"crypto/x509"
	"testing"
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

// PublicRootPool is publicRootPool.
var PublicRootPool = publicRootPool

// SetPublicRoots makes pool the publicly trusted roots until t ends.
func SetPublicRoots(t *testing.T, pool *x509.CertPool) {
	old := publicRoots
	publicRoots = func() *x509.CertPool { return pool }
	t.Cleanup(func() { publicRoots = old })
}
