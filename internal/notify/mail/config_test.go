package mail

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func validConfig() Config {
	return Config{Host: "smtp.example.com", Port: 587, Username: "u", Password: "s3cret-pw", From: "Steward <noreply@example.com>"}
}

func TestConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	cases := map[string]func(*Config){
		"missing host":         func(c *Config) { c.Host = "" },
		"host with newline":    func(c *Config) { c.Host = "smtp.example.com\r\n" },
		"port zero":            func(c *Config) { c.Port = 0 },
		"port too large":       func(c *Config) { c.Port = 70000 },
		"missing from":         func(c *Config) { c.From = "" },
		"invalid from":         func(c *Config) { c.From = "steward" },
		"from with CRLF":       func(c *Config) { c.From = "a@example.com\r\nBcc: b@example.com" },
		"password no username": func(c *Config) { c.Username = "" },
		"NUL in password":      func(c *Config) { c.Password = "s3cret-pw\x00x" },
		"helo with space":      func(c *Config) { c.HeloName = "my host" },
		"server name with LF":  func(c *Config) { c.ServerName = "a\nb" },
		"negative timeout":     func(c *Config) { c.Timeout = -1 },
	}
	for name, mutate := range cases {
		cfg := validConfig()
		mutate(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Errorf("%s: Validate accepted an invalid config", name)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%s: error leaks the password: %v", name, err)
		}
		if _, newErr := New(cfg); newErr == nil {
			t.Errorf("%s: New accepted an invalid config", name)
		}
	}
}

func TestIsPermanent(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"unrelated error", errors.New("boom"), false},
		{"invalid message", invalidMessage(errors.New("bad")), true},
		{"tls not offered", &Error{Kind: ErrTLSNotOffered}, true},
		{"connection", &Error{Kind: ErrConnection, Err: errors.New("reset")}, false},
		{"auth 535", &Error{Kind: ErrAuth, Code: 535}, true},
		{"auth 454", &Error{Kind: ErrAuth, Code: 454}, false},
		{"auth mechanism missing", &Error{Kind: ErrAuth}, true},
		{"rejected 552", &Error{Kind: ErrRejected, Code: 552}, true},
		{"rejected 421", &Error{Kind: ErrRejected, Code: 421}, false},
		{"wrapped", fmt.Errorf("notify: %w", &Error{Kind: ErrRecipientRefused, Code: 550}), true},
		{"bare smtp 554", &smtp.SMTPError{Code: 554}, true},
		{"bare smtp 450", &smtp.SMTPError{Code: 450}, false},
	}
	for _, tc := range cases {
		if got := IsPermanent(tc.err); got != tc.want {
			t.Errorf("%s: IsPermanent = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestWriteHeaderFoldsReversibly(t *testing.T) {
	value := strings.Repeat("word ", 40) + "end  with  double  spaces"
	var buf bytes.Buffer
	writeHeader(&buf, "X-Test", value)
	out := buf.String()
	if !strings.HasSuffix(out, "\r\n") {
		t.Fatalf("header not CRLF-terminated: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
	if len(lines) < 2 {
		t.Fatalf("long header was not folded: %q", out)
	}
	for _, line := range lines {
		if len(line) > foldAt {
			t.Errorf("line longer than %d: %q", foldAt, line)
		}
		if strings.TrimSpace(line) == "" {
			t.Errorf("whitespace-only line in %q", out)
		}
	}
	// Unfolding (RFC 5322 section 2.2.3) is removing the CRLFs.
	if got := strings.ReplaceAll(out, "\r\n", ""); got != "X-Test: "+value {
		t.Errorf("unfolded header = %q, want %q", got, "X-Test: "+value)
	}
}
