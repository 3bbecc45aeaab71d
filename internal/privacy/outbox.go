package privacy

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/notify/mail"
	"github.com/steward-mdm/steward/internal/store"
)

// Mailer sends one message (internal/notify/mail in production).
type Mailer interface {
	Send(ctx context.Context, msg mail.Message) error
}

// Outbox delivers queued notifications to employees by e-mail. A
// notification is marked sent only after the SMTP server accepted it;
// temporary failures are retried with back-off, permanent ones stop.
type Outbox struct {
	Service *Service
	Mailer  Mailer
	Log     *slog.Logger
	// MaxAttempts before a notification is marked failed.
	MaxAttempts int
	// Holder names this node for the outbox lease: one node sends at a
	// time, so nodes sharing a database never send a message twice.
	// Empty: no lease (a single process, tests).
	Holder string
	// LeaseTTL is how long the lease lasts from each renewal; Run sets it
	// to four intervals when zero.
	LeaseTTL time.Duration
}

// outboxLease is the lease Holder sends under.
const outboxLease = "mail-outbox"

// Deliver sends what is due and returns how many were sent. With a Holder
// it renews the lease before each message and stops once another node has
// it: a batch of slow sends could otherwise outlast the lease, and the
// next holder would read the same rows as due and send them again (for an
// enrolment link, a second mail whose new key voids the first).
func (o *Outbox) Deliver(ctx context.Context) (int, error) {
	s := o.Service
	due, err := s.st.Read().Notifications().Due(ctx, s.clock(), 100)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, n := range due {
		if o.Holder != "" {
			held, err := s.st.Read().Leases().TryAcquire(ctx, outboxLease, o.Holder, time.Now(), o.leaseTTL())
			if err != nil || !held {
				return sent, err
			}
		}
		err := o.sendOne(ctx, n)
		if err == nil {
			n.State, n.SentAt, n.LastError = "sent", s.clock(), ""
			sent++
		} else {
			n.Attempts++
			n.LastError = errorSummary(err)
			maxAttempts := o.MaxAttempts
			if maxAttempts <= 0 {
				maxAttempts = 8
			}
			if mail.IsPermanent(err) || errors.Is(err, errNoAddress) || errors.Is(err, ErrLinkClosed) || n.Attempts >= maxAttempts {
				n.State = "failed"
			} else {
				n.NextAttemptAt = s.clock().Add(time.Duration(1<<min(n.Attempts, 10)) * time.Minute)
			}
		}
		if err := s.st.Tx(ctx, func(q store.Queries) error { return q.Notifications().Update(ctx, n) }); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

var errNoAddress = errors.New("the person has no readable e-mail address (erased)")

func (o *Outbox) sendOne(ctx context.Context, n store.Notification) error {
	q := o.Service.st.Read()
	sub, err := q.Subjects().Get(ctx, n.TenantID, n.SubjectID)
	if err != nil {
		return err
	}
	p, err := o.Service.OpenProfile(ctx, q, sub)
	if err != nil {
		return errNoAddress
	}
	body := n.Body
	if mint := o.Service.minters[n.Kind]; mint != nil {
		// Minted now, so the key exists only in this mail; a failed send
		// leaves an unknown key that simply expires (or, for a link, one
		// the next attempt's replaces).
		var key string
		err := o.Service.st.Tx(ctx, func(q store.Queries) error {
			var err error
			key, err = mint(ctx, q, n)
			return err
		})
		if err != nil {
			return err
		}
		body = strings.Replace(body, KeyPlaceholder, key, 1)
	}
	return o.Mailer.Send(ctx, mail.Message{To: []string{p.Email}, Subject: n.Title, Text: body})
}

// errorSummary keeps a failure's reason without any address in it.
func errorSummary(err error) string {
	switch {
	case errors.Is(err, errNoAddress):
		return errNoAddress.Error()
	case errors.Is(err, ErrLinkClosed):
		return ErrLinkClosed.Error()
	case mail.IsPermanent(err):
		return "the mail server refused the message permanently"
	}
	return "temporary delivery failure; will retry"
}

func (o *Outbox) leaseTTL() time.Duration {
	if o.LeaseTTL > 0 {
		return o.LeaseTTL
	}
	return 2 * time.Minute
}

// Run delivers every interval until ctx ends, while it holds the lease.
func (o *Outbox) Run(ctx context.Context, interval time.Duration) {
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 4 * interval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		held, err := o.Service.st.Read().Leases().TryAcquire(ctx, outboxLease, o.Holder, time.Now(), o.leaseTTL())
		if err != nil && ctx.Err() == nil {
			o.Log.Error("mail outbox lease", "err", err)
		}
		if held {
			if n, err := o.Deliver(ctx); err != nil && ctx.Err() == nil {
				o.Log.Error("mail outbox", "err", err)
			} else if n > 0 {
				o.Log.Info("mail outbox", "sent", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
