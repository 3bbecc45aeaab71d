package mail

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const (
	testUser     = "steward"
	testPassword = "correct horse battery staple"
)

// received is one message as the test SMTP server saw it.
type received struct {
	from  string
	to    []string
	data  []byte
	tls   bool
	authd string
}

// backend is a real go-smtp backend that records everything it is given.
type backend struct {
	mu       sync.Mutex
	messages []received
	mailFrom int // MAIL commands seen, delivered or not
	authTry  int // AUTH attempts seen

	// rcptReply, when set, may refuse a recipient with an SMTP error.
	rcptReply func(to string) error
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{b: b, conn: c}, nil
}

func (b *backend) snapshot() (msgs []received, mailFrom, authTry int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.messages...), b.mailFrom, b.authTry
}

type session struct {
	b    *backend
	conn *smtp.Conn
	user string
	cur  received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		s.b.mu.Lock()
		s.b.authTry++
		s.b.mu.Unlock()
		if username != testUser || password != testPassword {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.b.mu.Lock()
	s.b.mailFrom++
	s.b.mu.Unlock()
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = received{from: from, tls: isTLS, authd: s.user}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.b.rcptReply != nil {
		if err := s.b.rcptReply(to); err != nil {
			return err
		}
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = data
	s.b.mu.Lock()
	s.b.messages = append(s.b.messages, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

// serverOptions choose how the test server secures connections.
type serverOptions struct {
	startTLS    bool // advertise STARTTLS
	implicitTLS bool // TLS from the first byte
}

// startServer runs a go-smtp server on loopback and returns a Config that
// trusts its freshly generated self-signed certificate.
func startServer(t *testing.T, be *backend, opts serverOptions) Config {
	t.Helper()
	cert, pool := selfSignedCert(t)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if opts.startTLS {
		srv.TLSConfig = tlsConfig
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.implicitTLS {
		l = tls.NewListener(l, tlsConfig)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		l.Close() // in case Serve had not registered l yet
		if err := <-done; err != nil {
			t.Errorf("test server: %v", err)
		}
	})
	return Config{
		Host:        "127.0.0.1",
		Port:        l.Addr().(*net.TCPAddr).Port,
		Username:    testUser,
		Password:    testPassword,
		From:        "Steward Datenschutz <noreply@example.com>",
		HeloName:    "steward.test",
		ImplicitTLS: opts.implicitTLS,
		RootCAs:     pool,
		ServerName:  "localhost",
	}
}

func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// idleListener accepts nothing by itself. It lets tests prove that Send did
// not connect: connections queue in FIFO order, so if a probe we dial
// afterwards is the first one accepted, nobody connected before it.
type idleListener struct {
	l    net.Listener
	port int
}

func newIdleListener(t *testing.T) *idleListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &idleListener{l: l, port: l.Addr().(*net.TCPAddr).Port}
}

func (il *idleListener) assertNoConnection(t *testing.T) {
	t.Helper()
	probe, err := net.Dial("tcp", il.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	first, err := il.l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if first.RemoteAddr().String() != probe.LocalAddr().String() {
		t.Fatalf("mailer connected to the server (first connection from %s, probe is %s)",
			first.RemoteAddr(), probe.LocalAddr())
	}
}
