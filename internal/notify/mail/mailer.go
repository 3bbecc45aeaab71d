// Package mail sends Steward notifications (consent requests, policy changes,
// breach notices) through an SMTP submission server.
//
// TLS is mandatory: the mailer either connects with implicit TLS or requires
// STARTTLS, and refuses to authenticate or transmit mail over a clear-text
// connection. Messages are validated and rendered before any connection is
// opened, so a malformed message never reaches the network.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// errNoSTARTTLS is the text go-smtp uses when the EHLO reply lacks
// STARTTLS; it has no exported sentinel. The no-STARTTLS test pins it.
const errNoSTARTTLS = "smtp: server doesn't support STARTTLS"

// Mailer sends messages with one fresh connection per Send. It is safe for
// concurrent use.
type Mailer struct {
	cfg  Config
	from *mail.Address
}

// New checks cfg and returns a Mailer. It does not connect.
func New(cfg Config) (*Mailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	from, err := parseAddress("from", cfg.From)
	if err != nil { // unreachable after Validate; kept so a nil from is impossible
		return nil, fmt.Errorf("mail: invalid config: %w", err)
	}
	return &Mailer{cfg: cfg, from: from}, nil
}

// Send validates msg, then delivers it over TLS. It stops when ctx is done or
// the configured Timeout elapses. Every error is an *Error; use errors.Is
// with the Err* kinds and IsPermanent to decide on retries. Delivery is
// all-or-nothing: if any recipient is refused, no message is sent.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	env, err := compose(m.from, msg, time.Now())
	if err != nil {
		return err
	}
	if err := context.Cause(ctx); err != nil {
		return &Error{Kind: ErrConnection, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.timeout())
	defer cancel()

	c, err := m.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := m.authenticate(ctx, c); err != nil {
		return err
	}
	return deliver(ctx, c, env)
}

// connect dials, secures the session with TLS and greets the server. The
// returned client's connection is closed as soon as ctx is done, which
// unblocks any pending read or write.
func (m *Mailer) connect(ctx context.Context) (*smtp.Client, error) {
	dialer := &net.Dialer{}
	var conn net.Conn
	var err error
	if m.cfg.ImplicitTLS {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: m.cfg.tlsConfig()}).DialContext(ctx, "tcp", m.cfg.addr())
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", m.cfg.addr())
	}
	if err != nil {
		return nil, classify(ctx, ErrConnection, "", err)
	}
	// The greeting and STARTTLS happen before go-smtp's command timeouts
	// apply: a server that accepts and then stays silent must not hang us.
	if err := conn.SetDeadline(time.Now().Add(m.cfg.timeout())); err != nil {
		conn.Close()
		return nil, classify(ctx, ErrConnection, "", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	closeOnError := func(err *Error) (*smtp.Client, error) {
		stop()
		conn.Close()
		return nil, err
	}

	var c *smtp.Client
	if m.cfg.ImplicitTLS {
		c = smtp.NewClient(conn)
	} else {
		// The clear-text EHLO uses go-smtp's default name "localhost",
		// which reveals nothing; HeloName is sent only once encrypted.
		c, err = smtp.NewClientStartTLS(conn, m.cfg.tlsConfig())
		if err != nil {
			if context.Cause(ctx) == nil && err.Error() == errNoSTARTTLS {
				return closeOnError(&Error{Kind: ErrTLSNotOffered})
			}
			return closeOnError(classify(ctx, ErrRejected, "", err))
		}
	}
	timeout := m.cfg.timeout()
	c.CommandTimeout, c.SubmissionTimeout = timeout, timeout
	// For STARTTLS this EHLO is the first encrypted write, so a failed
	// handshake (e.g. untrusted certificate) surfaces here.
	if err := c.Hello(m.cfg.heloName()); err != nil {
		return closeOnError(classify(ctx, ErrRejected, "", err))
	}
	if _, ok := c.TLSConnectionState(); !ok {
		return closeOnError(&Error{Kind: ErrTLSNotOffered, Err: errors.New("connection is not encrypted")})
	}
	// From here go-smtp's per-command timeouts bound every exchange.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return closeOnError(classify(ctx, ErrConnection, "", err))
	}
	return c, nil
}

// authenticate runs AUTH PLAIN when credentials are configured. connect has
// already guaranteed TLS, so the password is never sent in clear text.
func (m *Mailer) authenticate(ctx context.Context, c *smtp.Client) error {
	if m.cfg.Username == "" {
		return nil
	}
	if !c.SupportsAuth(sasl.Plain) {
		return &Error{Kind: ErrAuth, Err: errors.New("server does not offer AUTH PLAIN")}
	}
	if err := c.Auth(sasl.NewPlainClient("", m.cfg.Username, m.cfg.Password)); err != nil {
		return classify(ctx, ErrAuth, "", err)
	}
	return nil
}

func deliver(ctx context.Context, c *smtp.Client, env *envelope) error {
	if err := c.Mail(env.from, nil); err != nil {
		return classify(ctx, ErrRejected, "", fmt.Errorf("sender refused: %w", err))
	}
	for _, to := range env.to {
		if err := c.Rcpt(to, nil); err != nil {
			return classify(ctx, ErrRecipientRefused, to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return classify(ctx, ErrRejected, "", err)
	}
	if _, err := w.Write(env.data); err != nil {
		return classify(ctx, ErrRejected, "", err)
	}
	if err := w.Close(); err != nil {
		return classify(ctx, ErrRejected, "", err)
	}
	// The message is accepted once DATA succeeds; a failed QUIT changes
	// nothing for the caller.
	_ = c.Quit()
	return nil
}
