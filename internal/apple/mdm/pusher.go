package mdm

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/store"
)

// Pusher drains the push queue: devices with work waiting get an APNs push
// so that they check in. The queue is in the database (channels' due
// times), so a crash loses no push and any node can carry on; a lease keeps
// it to one node at a time.
type Pusher struct {
	Service *Service
	// Endpoint overrides the APNs endpoint (tests, the sandbox).
	Endpoint string
	// Options are passed to every APNs client (root CAs in tests).
	Options []apns.Option
	Holder  string
	Log     *slog.Logger

	mu      sync.Mutex
	clients map[string]*pushClient // by tenant
}

type pushClient struct {
	serial string
	client *apns.Client
}

// retryDelay grows with the attempts, up to an hour.
func retryDelay(attempts int) time.Duration {
	return min(time.Duration(1<<min(attempts, 12))*time.Second, time.Hour)
}

// RunOnce pushes every device that is due and returns how many pushes APNs
// accepted.
func (p *Pusher) RunOnce(ctx context.Context) (int, error) {
	s := p.Service
	if p.Log == nil {
		p.Log = s.log
	}
	due, err := s.st.Read().AppleChannels().DuePushes(ctx, s.clock(), 1000)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	byTenant := map[string][]store.AppleChannel{}
	for _, ch := range due {
		byTenant[ch.TenantID] = append(byTenant[ch.TenantID], ch)
	}
	delivered := 0
	for tenant, chans := range byTenant {
		client, err := p.client(ctx, tenant)
		if err != nil {
			// No usable certificate: try again later rather than hammering.
			for _, ch := range chans {
				if err := p.done(ctx, ch, s.clock().Add(15*time.Minute), ch.PushAttempts+1, nil); err != nil {
					return delivered, err
				}
			}
			p.Log.Warn("pushes waiting: the tenant's push certificate is missing or invalid", "tenant", tenant, "devices", len(chans))
			continue
		}
		notes := make([]apns.Notification, len(chans))
		for i, ch := range chans {
			notes[i] = apns.Notification{Token: ch.PushToken, PushMagic: ch.PushMagic}
		}
		for i, r := range client.Push(ctx, notes) {
			ch := chans[i]
			switch r.Outcome {
			case apns.Delivered:
				delivered++
				err = p.done(ctx, ch, time.Time{}, 0, nil)
			case apns.Unregistered, apns.BadToken:
				err = p.done(ctx, ch, time.Time{}, 0, ch.PushToken) // the next TokenUpdate brings a new one
			case apns.Rejected:
				err = p.done(ctx, ch, time.Time{}, 0, nil)
			case apns.Fatal:
				err = p.done(ctx, ch, s.clock().Add(15*time.Minute), ch.PushAttempts+1, nil)
			default: // Retry
				err = p.done(ctx, ch, s.clock().Add(retryDelay(ch.PushAttempts+1)), ch.PushAttempts+1, nil)
			}
			if err != nil {
				return delivered, err
			}
		}
	}
	return delivered, nil
}

func (p *Pusher) done(ctx context.Context, ch store.AppleChannel, next time.Time, attempts int, deadToken []byte) error {
	return p.Service.st.Tx(ctx, func(q store.Queries) error {
		return q.AppleChannels().PushDone(ctx, ch.TenantID, ch.DeviceID, next, attempts, deadToken)
	})
}

// client returns the tenant's APNs client, rebuilt when the certificate changed.
func (p *Pusher) client(ctx context.Context, tenantID string) (*apns.Client, error) {
	cert, err := p.Service.PushCertificate(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clients == nil {
		p.clients = map[string]*pushClient{}
	}
	if c, ok := p.clients[tenantID]; ok && c.serial == cert.Serial {
		return c.client, nil
	}
	opts := append([]apns.Option{apns.WithLogger(p.Log)}, p.Options...)
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
	p.clients[tenantID] = &pushClient{serial: cert.Serial, client: c}
	return c, nil
}

// Run drains the queue every interval while this node holds the lease.
func (p *Pusher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
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
