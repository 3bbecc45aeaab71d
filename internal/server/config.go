// Package server assembles Steward: configuration, storage, keys, TLS, the
// API and the background jobs, and runs them until told to stop.
package server

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// Config is everything `steward serve` can be told. Each field is a flag;
// every flag can also come from the environment (STEWARD_ + upper-case name
// with - as _) or from the TOML file named by --config (keys as the flag
// names with - as _). Flags win over the environment, which wins over the
// file.
type Config struct {
	ConfigFile         string
	Data               string
	Listen             string
	DB                 string
	TLSCert            string
	TLSKey             string
	ProfileSignerCert  string
	ProfileSignerKey   string
	MetricsListen      string
	ProfileListen      string
	MasterKeyFile      string
	LogLevel           string
	TrustedProxies     []string
	AuditRetention     time.Duration
	AuditArchiveDir    string
	CheckpointInterval time.Duration
	AllowMFAOptional   bool
	// PreviousMasterKeyFile lets nodes read values sealed under the key a
	// rotation replaces, until `steward keys rotate-master` has re-wrapped them.
	PreviousMasterKeyFile string
	RetentionInterval     time.Duration
	SMTPHost              string
	SMTPPort              int
	SMTPUsername          string
	SMTPFrom              string
	SMTPImplicitTLS       bool
	PublicURL             string
	APNsEndpoint          string
	MDMClientCerts        bool
	MDMClientCertHeader   string
	EnrolmentRateLimit    float64
}

// BindFlags declares the serve flags on fs.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.ConfigFile, "config", "", "optional TOML configuration file")
	fs.StringVar(&c.Data, "data", "./steward-data", "directory for the SQLite database, keys, TLS certificate and audit archives")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8443", "HTTPS address to listen on")
	fs.StringVar(&c.DB, "db", "", "database: a postgres:// DSN selects PostgreSQL; empty means SQLite at DATA/steward.db")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate chain; empty means a self-signed certificate in DATA/tls")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&c.ProfileSignerCert, "profile-signer-cert", "", "PEM certificate chain, from a CA devices trust, that signs the enrolment profiles employees download so they show as verified (the TLS certificate's will do); empty: each tenant's own CA, shown as not verified")
	fs.StringVar(&c.ProfileSignerKey, "profile-signer-key", "", "PEM private key for --profile-signer-cert")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "", "optional separate plain-HTTP address for /metrics (keep it private); otherwise /metrics needs the system.metrics permission")
	fs.StringVar(&c.ProfileListen, "profile-listen", "", "optional loopback address (127.0.0.1:PORT) serving Go's /debug/pprof profiles, for performance work; off when empty")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", "", "file holding the base64 key that seals secrets at rest (default DATA/master.key; STEWARD_MASTER_KEY may hold the key itself)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringSliceVar(&c.TrustedProxies, "trusted-proxies", nil, "CIDRs of reverse proxies whose X-Forwarded-For is trusted")
	fs.DurationVar(&c.AuditRetention, "audit-retention", 365*24*time.Hour, "how long audit entries stay in the database before they are archived (0 keeps them forever)")
	fs.StringVar(&c.AuditArchiveDir, "audit-archive-dir", "", "where archived audit entries are written (default DATA/audit-archive)")
	fs.DurationVar(&c.CheckpointInterval, "checkpoint-interval", time.Hour, "how often each tenant's audit chain gets a signed checkpoint")
	fs.BoolVar(&c.AllowMFAOptional, "allow-mfa-optional", false, "let admins sign in without a second factor unless their tenant requires one (not recommended)")
	fs.StringVar(&c.PreviousMasterKeyFile, "previous-master-key-file", "", "during a master-key rotation: the key being replaced (see 'steward keys rotate-master')")
	fs.DurationVar(&c.RetentionInterval, "retention-interval", 10*time.Minute, "how often expired personal data is purged")
	fs.StringVar(&c.SMTPHost, "smtp-host", "", "mail server for notifications to employees (STARTTLS required); empty disables e-mail")
	fs.IntVar(&c.SMTPPort, "smtp-port", 587, "mail server port")
	fs.StringVar(&c.SMTPUsername, "smtp-username", "", "mail server user; the password comes from STEWARD_SMTP_PASSWORD only")
	fs.StringVar(&c.SMTPFrom, "smtp-from", "", "sender address of notifications")
	fs.BoolVar(&c.SMTPImplicitTLS, "smtp-implicit-tls", false, "connect with TLS from the start (port 465) instead of STARTTLS")
	fs.StringVar(&c.PublicURL, "public-url", "", "how devices and employees reach this server, e.g. https://mdm.example.org (default https://LISTEN)")
	fs.BoolVar(&c.MDMClientCerts, "mdm-client-certificates", false, "ask TLS clients for a certificate, so devices can be identified by mutual TLS (browsers may then offer certificates too)")
	fs.StringVar(&c.MDMClientCertHeader, "mdm-client-cert-header", "", "header in which a trusted proxy (--trusted-proxies) passes the device's TLS client certificate; off when empty")
	// An office behind one address enrolling hundreds of people an hour
	// (four or five requests each) stays far below the default, while no
	// one client makes Steward look up forged codes or parse sign-ins
	// without end.
	fs.Float64Var(&c.EnrolmentRateLimit, "enrolment-rate-limit", 5, "requests a second each client address may make to the enrolment pages, after a burst of 100 (0: no limit; load tests from one address)")
	fs.StringVar(&c.APNsEndpoint, "apns-endpoint", "https://api.push.apple.com", "APNs provider endpoint; Apple issues MDM push certificates for production only, so only tests change it")
}

// envName maps a flag to its environment variable.
func envName(flag string) string {
	return "STEWARD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Resolve fills unset flags from the environment and then the file, and
// derives the defaults that depend on the data directory.
func (c *Config) Resolve(fs *pflag.FlagSet, getenv func(string) string) error {
	if !fs.Changed("config") {
		if v := getenv(envName("config")); v != "" {
			c.ConfigFile = v
		}
	}
	file := map[string]any{}
	if c.ConfigFile != "" {
		if _, err := toml.DecodeFile(c.ConfigFile, &file); err != nil {
			return fmt.Errorf("config file %s: %w", c.ConfigFile, err)
		}
	}
	var unknown []string
	for key := range file {
		if fs.Lookup(strings.ReplaceAll(key, "_", "-")) == nil {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config file %s: unknown keys %s", c.ConfigFile, strings.Join(unknown, ", "))
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "config" {
			return
		}
		if v, ok := lookupEnv(getenv, envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", envName(f.Name), e)
			}
			return
		}
		if v, ok := file[strings.ReplaceAll(f.Name, "-", "_")]; ok {
			if e := fs.Set(f.Name, fileValue(v)); e != nil {
				err = fmt.Errorf("config file key %s: %w", f.Name, e)
			}
		}
	})
	if err != nil {
		return err
	}
	return c.finish()
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func fileValue(v any) string {
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, p := range list {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

func (c *Config) finish() error {
	if c.Data == "" {
		return fmt.Errorf("--data must not be empty")
	}
	if c.DB == "" {
		c.DB = filepath.Join(c.Data, "steward.db")
	}
	if c.MasterKeyFile == "" {
		c.MasterKeyFile = filepath.Join(c.Data, "master.key")
	}
	if c.AuditArchiveDir == "" {
		c.AuditArchiveDir = filepath.Join(c.Data, "audit-archive")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if (c.ProfileSignerCert == "") != (c.ProfileSignerKey == "") {
		return fmt.Errorf("--profile-signer-cert and --profile-signer-key go together")
	}
	proxies, err := c.Proxies()
	if err != nil {
		return err
	}
	if c.MDMClientCertHeader != "" && len(proxies) == 0 {
		return fmt.Errorf("--mdm-client-cert-header needs --trusted-proxies: only a trusted proxy's header is believed")
	}
	if c.PublicURL, err = publicOrigin(c.PublicURL); err != nil {
		return fmt.Errorf("--public-url: %w", err)
	}
	if err := loopbackOnly(c.ProfileListen); err != nil {
		return fmt.Errorf("--profile-listen: %w", err)
	}
	if c.CheckpointInterval < time.Minute {
		return fmt.Errorf("--checkpoint-interval must be at least 1m")
	}
	if c.AuditRetention != 0 && c.AuditRetention < 24*time.Hour {
		return fmt.Errorf("--audit-retention must be 0 (forever) or at least 24h")
	}
	return nil
}

// publicOrigin checks the URL devices and employees are given ("" for the
// default): devices refuse a plain-http ServerURL, and the device and
// employee routes sit at the root, so a path would send them elsewhere.
// It returns the origin without a trailing slash.
func publicOrigin(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q must be an https origin with no path, such as https://mdm.example.org", raw)
	}
	return "https://" + u.Host, nil
}

// loopbackOnly accepts an empty address or one on a loopback IP: profiles
// show the server's goroutines and memory, and the listener has no
// authentication, so it must not be reachable from another machine.
func loopbackOnly(addr string) error {
	if addr == "" {
		return nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("%q is not a loopback IP and port (such as 127.0.0.1:6060)", addr)
	}
	return nil
}

// Proxies parses TrustedProxies.
func (c *Config) Proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR prefix", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// IsPostgres reports whether the DSN selects PostgreSQL.
func (c *Config) IsPostgres() bool {
	return strings.HasPrefix(c.DB, "postgres://") || strings.HasPrefix(c.DB, "postgresql://")
}

// ensureDataDir creates the data directory, private to the service user.
func (c *Config) ensureDataDir() error {
	return os.MkdirAll(c.Data, 0o700)
}
