package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func resolve(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	cfg := &Config{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cfg, cfg.Resolve(fs, func(k string) string { return env[k] })
}

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "steward.toml")
	_ = os.WriteFile(file, []byte("listen = \"127.0.0.1:9000\"\ndata = \"/from/file\"\nlog_level = \"warn\"\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1/32\"]\ncheckpoint_interval = \"30m\"\n"), 0o600)

	cfg, err := resolve(t, []string{"--config", file, "--listen", "127.0.0.1:9100"}, map[string]string{"STEWARD_DATA": "/from/env"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9100" {
		t.Errorf("flag lost to a lower source: %s", cfg.Listen)
	}
	if cfg.Data != "/from/env" {
		t.Errorf("environment lost to the file: %s", cfg.Data)
	}
	if cfg.LogLevel != "warn" || len(cfg.TrustedProxies) != 2 || cfg.CheckpointInterval != 30*time.Minute {
		t.Errorf("file values not applied: %+v", cfg)
	}
	if cfg.DB != "/from/env/steward.db" || cfg.MasterKeyFile != "/from/env/master.key" {
		t.Errorf("data-derived defaults: %s %s", cfg.DB, cfg.MasterKeyFile)
	}

	cfg, err = resolve(t, nil, nil)
	if err != nil || cfg.Data != "./steward-data" || cfg.Listen != "127.0.0.1:8443" || cfg.IsPostgres() {
		t.Errorf("defaults: %+v %v", cfg, err)
	}
	cfg, err = resolve(t, []string{"--public-url", "https://mdm.example.org:8443/"}, nil)
	if err != nil || cfg.PublicURL != "https://mdm.example.org:8443" {
		t.Errorf("public URL %q (%v), want the origin without its slash", cfg.PublicURL, err)
	}
	cfg, err = resolve(t, nil, map[string]string{"STEWARD_DB": "postgres://u@h/db"})
	if err != nil || !cfg.IsPostgres() {
		t.Errorf("postgres DSN not recognised: %v", err)
	}
}

func TestConfigRejectsMistakes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "steward.toml")
	_ = os.WriteFile(file, []byte("lissen = \"typo\"\n"), 0o600)
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"unknown file key": {[]string{"--config", file}, nil},
		"cert without key": {[]string{"--tls-cert", "c.pem"}, nil},
		"signer, no key":   {[]string{"--profile-signer-cert", "c.pem"}, nil},
		"bad proxy":        {nil, map[string]string{"STEWARD_TRUSTED_PROXIES": "not-a-cidr"}},
		"header, no proxy": {[]string{"--mdm-client-cert-header", "X-Client-Cert"}, nil},
		"bad duration":     {nil, map[string]string{"STEWARD_AUDIT_RETENTION": "soon"}},
		"short retention":  {[]string{"--audit-retention", "1h"}, nil},
		"public profiles":  {[]string{"--profile-listen", "0.0.0.0:6060"}, nil},
		"profiles by name": {[]string{"--profile-listen", "localhost:6060"}, nil},
		"plain-http URL":   {[]string{"--public-url", "http://mdm.example.org"}, nil},
		"URL with a path":  {[]string{"--public-url", "https://example.org/mdm"}, nil},
		"URL without host": {nil, map[string]string{"STEWARD_PUBLIC_URL": "mdm.example.org"}},
	} {
		if _, err := resolve(t, c.args, c.env); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestProfileListener(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060"} {
		if _, err := resolve(t, []string{"--profile-listen", addr}, nil); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
	srv := httptest.NewServer(profileMux())
	defer srv.Close()
	for path, want := range map[string]int{"/debug/pprof/": 200, "/debug/pprof/goroutine?debug=1": 200, "/metrics": 404} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
		}
	}
}
