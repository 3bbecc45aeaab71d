package mail

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"
)

// DefaultTimeout bounds one Send when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// defaultHeloName is what the client calls itself in EHLO when HeloName is
// empty. It deliberately reveals nothing about the Steward host.
const defaultHeloName = "localhost"

// Config describes how to reach the SMTP submission server.
//
// Transport security is not optional: either the connection starts in TLS
// (ImplicitTLS, "port 465 style") or the server must offer STARTTLS, which is
// then used before any credentials or mail data are sent.
type Config struct {
	Host     string
	Port     int
	Username string // empty disables AUTH
	Password string
	From     string // RFC 5322 address, e.g. "Steward <noreply@example.com>"
	HeloName string // EHLO name sent after TLS is up; defaults to "localhost"

	ImplicitTLS bool           // connect with TLS from the first byte instead of STARTTLS
	RootCAs     *x509.CertPool // nil means the system roots
	ServerName  string         // name checked against the certificate; defaults to Host
	Timeout     time.Duration  // budget for one Send; 0 means DefaultTimeout
}

// Validate reports every problem with cfg. Errors never include the
// password.
func (cfg Config) Validate() error {
	var problems []error
	if cfg.Host == "" {
		problems = append(problems, errors.New("host is required"))
	} else if hasSpaceOrControl(cfg.Host) {
		problems = append(problems, errors.New("host contains whitespace or control characters"))
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		problems = append(problems, fmt.Errorf("port %d is outside 1-65535", cfg.Port))
	}
	if _, err := parseAddress("from", cfg.From); err != nil {
		problems = append(problems, err)
	}
	if cfg.Password != "" && cfg.Username == "" {
		problems = append(problems, errors.New("password is set but username is empty"))
	}
	// AUTH PLAIN separates its fields with NUL, so NUL would corrupt the exchange.
	if strings.ContainsRune(cfg.Username, 0) || strings.ContainsRune(cfg.Password, 0) {
		problems = append(problems, errors.New("username or password contains a NUL byte"))
	}
	if hasSpaceOrControl(cfg.HeloName) {
		problems = append(problems, errors.New("helo name contains whitespace or control characters"))
	}
	if hasSpaceOrControl(cfg.ServerName) {
		problems = append(problems, errors.New("server name contains whitespace or control characters"))
	}
	if cfg.Timeout < 0 {
		problems = append(problems, errors.New("timeout must not be negative"))
	}
	if len(problems) > 0 {
		return fmt.Errorf("mail: invalid config: %w", errors.Join(problems...))
	}
	return nil
}

func (cfg Config) addr() string {
	return net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
}

func (cfg Config) timeout() time.Duration {
	if cfg.Timeout == 0 {
		return DefaultTimeout
	}
	return cfg.Timeout
}

func (cfg Config) heloName() string {
	if cfg.HeloName == "" {
		return defaultHeloName
	}
	return cfg.HeloName
}

func (cfg Config) tlsConfig() *tls.Config {
	serverName := cfg.ServerName
	if serverName == "" {
		serverName = cfg.Host
	}
	return &tls.Config{
		ServerName: serverName,
		RootCAs:    cfg.RootCAs,
		MinVersion: tls.VersionTLS12,
	}
}

// parseAddress accepts exactly one RFC 5322 address with an ASCII mailbox.
// Internationalised mailboxes would need SMTPUTF8, which is not supported.
func parseAddress(field, s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%s address contains CR or LF", field)
	}
	if s == "" {
		return nil, fmt.Errorf("%s address is empty", field)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%s address %q: %w", field, s, err)
	}
	if !isPrintableASCII(addr.Address) {
		return nil, fmt.Errorf("%s address %q: only ASCII mailboxes are supported", field, s)
	}
	return addr, nil
}

func hasSpaceOrControl(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return true
		}
	}
	return false
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}
