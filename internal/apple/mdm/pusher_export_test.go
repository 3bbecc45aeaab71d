package mdm

// HasClient reports whether the pusher holds an APNs client for the tenant.
func (p *Pusher) HasClient(tenantID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.clients[tenantID]
	return ok
}

// DropIdleClients runs the idle-client sweep of Run's loop.
func (p *Pusher) DropIdleClients() { p.dropIdleClients() }
