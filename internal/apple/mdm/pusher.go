package mdm

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/store"
)

// Pusher drains the push queue: device and user channels with work waiting
// get an APNs push so that they check in. The queue is in the database
// (channels' due times), so a crash loses no push and any node can carry
// on. A lease keeps the work to one node at a time, and claims keep two
// nodes from pushing one channel when a slow batch outlives the lease.
type Pusher struct {
	Service *Service
	// Endpoint overrides the APNs endpoint (tests, the sandbox).
	Endpoint string
	// Options are passed to every APNs client (root CAs in tests).
	Options []apns.Option
	Holder  string
	Log     *slog.Logger

	claim time.Duration // how long a run holds its channels: pushClaim unless a test shortens it

	mu      sync.Mutex
	clients map[string]*pushClient // by tenant; the Service drops a tenant's (dropPushClients)
}

type pushClient struct {
	serial   string
	topic    string
	client   *apns.Client
	lastUsed time.Time // on the service clock
}

// idleClientLife is how long a tenant's APNs client stays cached unused. A
// sweep closes older ones on every node, the lease holder or not: a node
// that lost the lease, or a client rebuilt while its tenant was being
// deleted, would otherwise hold its connections until APNs drops them.
const idleClientLife = time.Hour

// retryDelay grows with the attempts, up to an hour, give or take a fifth:
// the channels of a batch that failed together (APNs down) would otherwise
// come due together at every retry.
func retryDelay(attempts int) time.Duration {
	d := min(time.Duration(1<<min(attempts, 12))*time.Second, time.Hour)
	return d - d/5 + rand.N(2*d/5+1)
}

// pushClaim is how long a pusher holds the channels it took: longer than a
// batch may take (batchTime), so that another node does not push them again
// meanwhile, and short enough that a node that died mid-batch delays them
// little.
const pushClaim = 5 * time.Minute

// strandedHold is how long a channel enrolled under a topic the tenant's
// certificate no longer has waits before it is looked at again.
const strandedHold = 24 * time.Hour

// batchTime is how long a run may send for under a claim of claim: the last
// tenth is left to record the outcomes, so that a node taking the channels
// once the claim lapsed finds them recorded and pushes none twice.
func batchTime(claim time.Duration) time.Duration { return claim - claim/10 }

func (p *Pusher) claimTime() time.Duration {
	if p.claim > 0 {
		return p.claim
	}
	return pushClaim
}

// pushTarget is a channel claimed for a push: a device channel, or a user
// channel (userChannel set).
type pushTarget struct {
	tenantID, deviceID, userChannel string
	topic                           string // the channel's; only a certificate for it can wake the device
	token                           []byte
	magic                           string
	attempts                        int
	claimed                         time.Time
}

// claimPushes takes the device and user channels due a push, for claim.
func (s *Service) claimPushes(ctx context.Context, limit int, claim time.Duration) ([]pushTarget, error) {
	now := s.clock()
	until := now.Add(claim)
	var out []pushTarget
	err := s.st.Tx(ctx, func(q store.Queries) error {
		devices, err := q.AppleChannels().ClaimPushes(ctx, now, until, limit)
		if err != nil {
			return err
		}
		users, err := q.AppleUserChannels().ClaimPushes(ctx, now, until, limit)
		if err != nil {
			return err
		}
		out = make([]pushTarget, 0, len(devices)+len(users))
		for _, ch := range devices {
			out = append(out, pushTarget{tenantID: ch.TenantID, deviceID: ch.DeviceID, topic: ch.Topic, token: ch.PushToken,
				magic: ch.PushMagic, attempts: ch.PushAttempts, claimed: ch.PushDueAt})
		}
		for _, uc := range users {
			out = append(out, pushTarget{tenantID: uc.TenantID, deviceID: uc.DeviceID, userChannel: uc.ID, topic: uc.Topic,
				token: uc.PushToken, magic: uc.PushMagic, attempts: uc.PushAttempts, claimed: uc.PushDueAt})
		}
		return nil
	})
	return out, err
}

// RunOnce pushes every channel that is due and returns how many pushes APNs
// accepted.
func (p *Pusher) RunOnce(ctx context.Context) (int, error) {
	s := p.Service
	if p.Log == nil {
		p.Log = s.log
	}
	claim, start := p.claimTime(), time.Now()
	due, err := s.claimPushes(ctx, 1000, claim)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	// Sending stops before the claim lapses, however slow APNs is. The
	// outcomes are recorded until the claim's end even once ctx ends (the
	// node stops): a push delivered but not recorded would be sent again.
	send, cancelSend := context.WithDeadline(ctx, start.Add(batchTime(claim)))
	defer cancelSend()
	record, cancelRecord := context.WithDeadline(context.WithoutCancel(ctx), start.Add(claim))
	defer cancelRecord()
	byTenant := map[string][]pushTarget{}
	for _, t := range due {
		byTenant[t.tenantID] = append(byTenant[t.tenantID], t)
	}
	delivered := 0
	for tenant, targets := range byTenant {
		if send.Err() != nil {
			// Not tried: the next run, here or on another node, takes them.
			if err := p.requeue(record, targets); err != nil {
				return delivered, err
			}
			continue
		}
		n, err := p.pushTenant(send, record, tenant, targets)
		delivered += n
		if err != nil {
			return delivered, err
		}
	}
	return delivered, nil
}

// pushTenant pushes one tenant's due channels, sending until send ends and
// recording with record, and returns how many pushes APNs accepted.
func (p *Pusher) pushTenant(send, record context.Context, tenant string, targets []pushTarget) (int, error) {
	s := p.Service
	pc, err := p.client(record, tenant)
	if err != nil {
		// No usable certificate: try again later rather than hammering.
		p.Log.Warn("pushes waiting: the tenant's push certificate is missing or invalid", "tenant", tenant, "channels", len(targets))
		return 0, p.hold(record, targets, s.clock().Add(pushHold))
	}
	targets, stranded := splitByTopic(targets, pc.topic)
	if len(stranded) > 0 {
		// Enrolled under a topic the certificate replaced: APNs would answer
		// DeviceTokenNotForTopic, and dropping the token for it would keep
		// the devices unreachable even once that topic's certificate comes
		// back. Held instead, for a day at a time: usually it never comes
		// back, and a shorter hold would have thousands of such channels
		// crowd the queue's head every few minutes.
		p.Log.Warn("pushes held: channels enrolled under another topic cannot be woken with the tenant's push certificate",
			"tenant", tenant, "topic", pc.topic, "channels", len(stranded), "held_for", strandedHold)
		if err := p.hold(record, stranded, s.clock().Add(strandedHold)); err != nil {
			return 0, err
		}
		if len(targets) == 0 {
			return 0, nil
		}
	}
	refusal, err := pushRefusal(record, s.st.Read().Settings(), tenant, pc.serial)
	if err != nil {
		return 0, err
	}
	if refusal != nil {
		// APNs refused this certificate less than a probe ago: sending
		// again cannot help, and an upload clears the refusal.
		if now, probe := s.clock(), refusal.At.Add(refusedCertificateProbe); now.Before(probe) {
			return 0, p.hold(record, targets, earliest(probe, now.Add(pushHold)))
		}
	}
	notes := make([]apns.Notification, len(targets))
	for i, t := range targets {
		notes[i] = apns.Notification{Token: t.token, PushMagic: t.magic}
	}
	delivered := 0
	var refused *apns.Result
	for i, r := range pc.client.Push(send, notes) {
		t := targets[i]
		if r.Outcome != apns.Delivered && r.Reason != apns.ReasonSkipped && r.Reason != apns.ReasonNotSent &&
			r.Reason != apns.ReasonSkippedAfterFailures {
			s.pushFailures.WithLabelValues(tenant, r.ReasonLabel()).Inc()
		}
		switch r.Outcome {
		case apns.Delivered:
			delivered++
			err = p.done(record, t, time.Time{}, 0, nil)
		case apns.Unregistered, apns.BadToken:
			// Dropped, and the next TokenUpdate brings a live one; unless
			// the device sent a token after APNs found this one dead.
			since := r.UnregisteredAt
			if since.IsZero() {
				since = s.clock()
			}
			err = p.done(record, t, s.clock().Add(retryDelay(t.attempts+1)), t.attempts+1, &store.DeadToken{Token: t.token, Since: since})
		case apns.Rejected:
			// Retrying the same request cannot help, but someone should
			// know: the device gets no push until its next command. The
			// attempt is counted: a due time cleared with none counted
			// means APNs took the push (judgeEarlier).
			p.Log.Warn("apns refused a push", "tenant", tenant, "status", r.Status, "reason", r.Reason, "apns_id", r.ID)
			err = p.done(record, t, time.Time{}, t.attempts+1, nil)
		case apns.Fatal:
			if r.CertificateRefused() && refused == nil {
				refused = &r
			}
			err = p.done(record, t, s.clock().Add(pushHold), t.attempts+1, nil)
		default: // Retry; one skipped because APNs kept failing waits its back-off as the failed ones do
			if r.Reason == apns.ReasonNotSent {
				err = p.requeue(record, []pushTarget{t})
			} else {
				err = p.done(record, t, s.clock().Add(retryDelay(t.attempts+1)), t.attempts+1, nil)
			}
		}
		if err != nil {
			return delivered, err
		}
	}
	switch {
	case refused != nil:
		news, err := s.recordPushRefusal(record, tenant, pc.serial, *refused)
		if err != nil {
			return delivered, err
		}
		if news { // once per refusal, not per device or probe
			attrs := []any{"tenant", tenant, "topic", pc.topic, "status", refused.Status, "reason", refused.Reason, "apns_id", refused.ID}
			if refused.Err != nil { // which TLS alert, for a refusal in the handshake
				attrs = append(attrs, "error", refused.Err.Error())
			}
			p.Log.Error("apns refuses the tenant's push certificate: no device is woken until a working one is uploaded", attrs...)
		}
	case delivered > 0 && refusal != nil:
		cleared, err := s.clearPushRefusal(record, tenant, pc.serial)
		if err != nil {
			return delivered, err
		}
		if cleared {
			p.Log.Info("apns accepts the tenant's push certificate again", "tenant", tenant, "topic", pc.topic,
				"refused_since", refusal.Since)
		}
	}
	return delivered, nil
}

// splitByTopic parts the targets a certificate for topic can push from the
// ones it cannot. A channel that never named its topic is pushed as before.
func splitByTopic(targets []pushTarget, topic string) (pushable, stranded []pushTarget) {
	for _, t := range targets {
		if t.topic != "" && t.topic != topic {
			stranded = append(stranded, t)
		} else {
			pushable = append(pushable, t)
		}
	}
	return pushable, stranded
}

// requeue makes targets that were not sent due again now, no attempt
// counted.
func (p *Pusher) requeue(ctx context.Context, targets []pushTarget) error {
	now := p.Service.clock()
	for _, t := range targets {
		if err := p.done(ctx, t, now, t.attempts, nil); err != nil {
			return err
		}
	}
	return nil
}

// hold makes the targets due again at next, unpushed.
func (p *Pusher) hold(ctx context.Context, targets []pushTarget, next time.Time) error {
	for _, t := range targets {
		if err := p.done(ctx, t, next, t.attempts+1, nil); err != nil {
			return err
		}
	}
	return nil
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (p *Pusher) done(ctx context.Context, t pushTarget, next time.Time, attempts int, dead *store.DeadToken) error {
	return p.Service.st.Tx(ctx, func(q store.Queries) error {
		if t.userChannel != "" {
			return q.AppleUserChannels().PushDone(ctx, t.tenantID, t.userChannel, t.claimed, next, attempts, dead)
		}
		return q.AppleChannels().PushDone(ctx, t.tenantID, t.deviceID, t.claimed, next, attempts, dead)
	})
}

// client returns the tenant's APNs client, rebuilt when the certificate changed.
func (p *Pusher) client(ctx context.Context, tenantID string) (*pushClient, error) {
	cert, err := p.Service.PushCertificate(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clients == nil {
		p.clients = map[string]*pushClient{}
		p.Service.addPusher(p)
	}
	if c, ok := p.clients[tenantID]; ok && c.serial == cert.Serial {
		c.lastUsed = p.Service.now()
		return c, nil
	}
	opts := append([]apns.Option{apns.WithLogger(p.Log), apns.WithClock(func() time.Time { return p.Service.now() })}, p.Options...)
	if p.Endpoint != "" {
		opts = append(opts, apns.WithEndpoint(p.Endpoint))
	}
	c, err := apns.NewClient(cert, opts...)
	if err != nil {
		return nil, err
	}
	if old, ok := p.clients[tenantID]; ok {
		old.client.Close()
	}
	pc := &pushClient{serial: cert.Serial, topic: cert.Topic, client: c, lastUsed: p.Service.now()}
	p.clients[tenantID] = pc
	return pc, nil
}

// dropIdleClients closes the clients unused for idleClientLife.
func (p *Pusher) dropIdleClients() {
	cutoff := p.Service.now().Add(-idleClientLife)
	var idle []*pushClient
	p.mu.Lock()
	for tenantID, c := range p.clients {
		if c.lastUsed.Before(cutoff) {
			idle = append(idle, c)
			delete(p.clients, tenantID)
		}
	}
	p.mu.Unlock()
	for _, c := range idle {
		c.client.Close()
	}
}

// dropClient closes and forgets the tenant's client, if it has one: its idle
// HTTP/2 connections to APNs close now, and the next push builds a new one.
func (p *Pusher) dropClient(tenantID string) {
	p.mu.Lock()
	c, ok := p.clients[tenantID]
	delete(p.clients, tenantID)
	p.mu.Unlock()
	if ok {
		c.client.Close()
	}
}

// addPusher makes dropPushClients reach p's clients.
func (s *Service) addPusher(p *Pusher) {
	s.pushersMu.Lock()
	defer s.pushersMu.Unlock()
	s.pushers = append(s.pushers, p)
}

// dropPushClients closes this node's APNs clients of the tenant, once its
// certificate changed or the tenant is gone. Another node's pusher drops its
// own client when it next pushes for the tenant with another certificate,
// and a deleted tenant's in its idle sweep (idleClientLife).
func (s *Service) dropPushClients(tenantID string) {
	s.pushersMu.Lock()
	pushers := slices.Clone(s.pushers)
	s.pushersMu.Unlock()
	for _, p := range pushers {
		p.dropClient(tenantID)
	}
}

// Run drains the queue every interval while this node holds the lease.
func (p *Pusher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.dropIdleClients()
		p.Service.AuditClosedMisuse(ctx) // every node: each counts its own refusals
		held, err := p.Service.st.Read().Leases().TryAcquire(ctx, "apns-pusher", p.Holder, time.Now(), 10*interval)
		if err != nil && ctx.Err() == nil {
			p.Log.Error("push queue lease", "error", err.Error())
		}
		if held {
			if _, err := p.RunOnce(ctx); err != nil && ctx.Err() == nil {
				p.Log.Error("push queue", "error", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
