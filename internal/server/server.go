package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/notify/mail"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
)

// App is an opened Steward: storage, keys and services, without listeners.
// The CLI's direct-database commands use it too.
type App struct {
	Config Config
	Store  store.Store
	Sealer secrets.Sealer
	Signer *audit.Signer
	IAM    *iam.Service
	// Privacy is the privacy core: gate, key vault, people and devices.
	Privacy *privacy.Service
	// MDM is the Apple MDM service.
	MDM *mdm.Service
	// Device management: fleet, remote actions, compliance.
	Devices    *device.Service
	Actions    *actions.Service
	Compliance *compliance.Engine
	Log        *slog.Logger
}

// Open opens the database, applies migrations when migrate is set (otherwise
// it refuses a database that is behind) and loads or creates the keys.
func Open(ctx context.Context, cfg Config, log *slog.Logger, migrate bool) (*App, error) {
	st, err := OpenStore(ctx, &cfg, log)
	if err != nil {
		return nil, fmt.Errorf("opening the database: %w", err)
	}
	app := &App{Config: cfg, Store: st, Log: log}
	if err := app.init(ctx, migrate); err != nil {
		st.Close()
		return nil, err
	}
	return app, nil
}

// OpenWith is Open over a store the caller opened (tests, tools); it
// migrates it and loads or creates the keys under cfg.Data.
func OpenWith(ctx context.Context, cfg Config, st store.Store, log *slog.Logger) (*App, error) {
	if cfg.MasterKeyFile == "" {
		cfg.MasterKeyFile = filepath.Join(cfg.Data, "master.key")
	}
	if err := cfg.ensureDataDir(); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	app := &App{Config: cfg, Store: st, Log: log}
	return app, app.init(ctx, true)
}

func (a *App) init(ctx context.Context, migrate bool) error {
	if migrate {
		n, err := a.Store.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("migrating the database: %w", err)
		}
		if n > 0 {
			a.Log.Info("database migrated", "engine", a.Store.Engine(), "applied", n)
		}
	} else if applied, latest, err := a.Store.MigrationStatus(ctx); err != nil {
		return err
	} else if applied != latest {
		return fmt.Errorf("the database is at schema version %d, this steward needs %d: run `steward migrate`", applied, latest)
	}
	key, err := secrets.LoadMasterKey(os.Getenv("STEWARD_MASTER_KEY"), a.Config.MasterKeyFile, true)
	if err != nil {
		return err
	}
	var previous [][]byte
	if a.Config.PreviousMasterKeyFile != "" {
		old, err := secrets.LoadMasterKey("", a.Config.PreviousMasterKeyFile, false)
		if err != nil {
			return fmt.Errorf("previous master key: %w", err)
		}
		previous = append(previous, old)
	}
	if a.Sealer, err = secrets.NewKeyring(key, previous...); err != nil {
		return err
	}
	if a.Signer, err = audit.LoadOrCreateSigner(ctx, a.Store, a.Sealer); err != nil {
		return fmt.Errorf("audit signing key: %w", err)
	}
	cfg := iam.DefaultConfig()
	cfg.RequireMFA = !a.Config.AllowMFAOptional
	a.IAM = iam.New(a.Store, a.Sealer, cfg, iam.WithLogger(a.Log))
	a.Privacy = privacy.NewService(a.Store, keys.New(a.Sealer), a.Signer, a.Log)
	if _, err := mail.New(a.mailConfig()); a.Config.SMTPHost != "" && err == nil {
		a.Privacy.EnableMail() // runJobs starts its outbox
	}
	public := strings.TrimRight(a.Config.PublicURL, "/")
	if public == "" {
		public = "https://" + a.Config.Listen
	}
	a.MDM = mdm.New(a.Store, a.Privacy, a.Sealer, mdm.Config{PublicURL: public}, a.Log)
	if a.Config.ProfileSignerCert != "" {
		signer, err := tls.LoadX509KeyPair(a.Config.ProfileSignerCert, a.Config.ProfileSignerKey)
		if err != nil {
			return fmt.Errorf("profile signer: %w", err)
		}
		if err := a.MDM.SignProfilesWith(signer, time.Now()); err != nil {
			return err
		}
	}
	a.IAM.OnTenantDeleted(a.MDM.ForgetTenant)
	a.IAM.OnTenantDeleted(func(_ context.Context, _ store.Queries, tenantID string) error {
		a.Privacy.Vault().Forget(tenantID)
		return nil
	})
	a.initManagement()
	return nil
}

// Handler is everything Steward serves over HTTPS: the API, and the
// device- and employee-facing MDM endpoints.
func (a *App) Handler(metrics http.Handler) (http.Handler, error) {
	proxies, _ := a.Config.Proxies()
	apiSrv := api.New(api.Options{Store: a.Store, IAM: a.IAM, Signer: a.Signer, Privacy: a.Privacy, MDM: a.MDM,
		Devices: a.Devices, Actions: a.Actions, Compliance: a.Compliance, Logger: a.Log,
		TrustedProxies: proxies, ClientCertHeader: a.Config.MDMClientCertHeader, Metrics: metrics, Ready: a.ready})
	devices, err := a.MDM.Handler(mdm.HTTPConfig{Topic: a.MDM.Topic, Log: a.Log, ClientCertHeader: a.Config.MDMClientCertHeader,
		Proxies: proxies, EnrolmentRateLimit: a.Config.EnrolmentRateLimit})
	if err != nil {
		return nil, err
	}
	return routeDevices(recoverDevicePanics(a.Log, devices), apiSrv.Handler()), nil
}

// Close releases the database.
func (a *App) Close() error { return a.Store.Close() }

// Serve runs the HTTPS API and the background jobs until ctx ends. Notices
// meant for the operator (certificate fingerprint, bootstrap code) go to out.
func (a *App) Serve(ctx context.Context, out io.Writer) error {
	cert, created, err := loadOrCreateCert(a.Config.TLSCert, a.Config.TLSKey, a.Config.Data, a.Config.Listen)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	if a.Config.TLSCert == "" {
		word := "Using"
		if created {
			word = "Generated"
		}
		fmt.Fprintf(out, "%s a self-signed TLS certificate; its fingerprint is\n  %s\n", word, Fingerprint(cert.Certificate[0]))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := api.RegisterMetrics(reg); err != nil {
		return err
	}
	reg.MustRegister(a.MDM.MetricsCollector())
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	handler, err := a.Handler(metrics)
	if err != nil {
		return err
	}

	tlsConfig := TLSConfig(cert)
	if a.Config.MDMClientCerts {
		tlsConfig.ClientAuth = tls.RequestClientCert // verified per request against the tenant's CA
	}
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return err
	}
	if a.Config.PublicURL == "" {
		a.MDM.SetPublicURL("https://" + ln.Addr().String())
	}
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // audit exports stream for a while
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// net/http's own messages (TLS handshake errors) name client
		// addresses, which the logs must not carry.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	errc := make(chan error, 3)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	fmt.Fprintf(out, "Steward is listening on https://%s (database: %s)\n", ln.Addr(), a.Store.Engine())

	var metricsSrv *http.Server
	if a.Config.MetricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics)
		metricsSrv = &http.Server{Addr: a.Config.MetricsListen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- metricsSrv.ListenAndServe() }()
	}
	var profileSrv *http.Server
	if a.Config.ProfileListen != "" {
		profileSrv = &http.Server{Addr: a.Config.ProfileListen, Handler: profileMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- profileSrv.ListenAndServe() }()
	}
	pin := ""
	if a.Config.TLSCert == "" {
		pin = " --fingerprint " + Fingerprint(cert.Certificate[0])
	}
	if err := a.announceBootstrap(ctx, out, ln.Addr().String(), pin); err != nil {
		return err
	}
	jobs, stopJobs := context.WithCancel(ctx)
	defer stopJobs()
	go a.runJobs(jobs)

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, s := range []*http.Server{metricsSrv, profileSrv} {
		if s != nil {
			_ = s.Shutdown(shutdown)
		}
	}
	return srv.Shutdown(shutdown)
}

func (a *App) ready(r *http.Request) error {
	if err := a.Store.Ping(r.Context()); err != nil {
		return errors.New("database unreachable")
	}
	applied, latest, err := a.Store.MigrationStatus(r.Context())
	if err != nil {
		return errors.New("database unreachable")
	}
	if applied != latest {
		return fmt.Errorf("database schema at %d, need %d", applied, latest)
	}
	return nil
}

// announceBootstrap prints a one-time code while nobody can sign in yet.
// There is never a default password.
func (a *App) announceBootstrap(ctx context.Context, out io.Writer, addr, pin string) error {
	need, err := a.IAM.NeedsBootstrap(ctx)
	if err != nil || !need {
		return err
	}
	code, err := a.IAM.IssueBootstrapCode(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nNo admin exists yet. Create the first owner within 24 hours with this one-time code:\n"+
		"  steward admin bootstrap --server https://%s%s --code %s\n"+
		"or POST it to https://%s/api/v1/bootstrap. Restarting prints a new code.\n\n", addr, pin, code.Code, addr)
	return nil
}

// Reconciled counts what ReconcileRestore applied again.
type Reconciled struct {
	TenantsDeleted, LinksRevoked, Erasures int
}

// ReconcileRestore applies again what the key vault, never in a backup,
// remembers and a restored backup undid: customer tenants deleted, then
// enrolment links revoked, then erasures and departures (each finished
// with a new deletion certificate). The restore command runs it, and so
// does every start, in case a restore was interrupted. One kind failing
// does not hold the others back: an erasure must not wait on a tenant.
func (a *App) ReconcileRestore(ctx context.Context) (Reconciled, error) {
	var r Reconciled
	var errs [3]error
	r.TenantsDeleted, errs[0] = a.IAM.ReconcileDeletedTenants(ctx)
	r.LinksRevoked, errs[1] = a.MDM.ReconcileRevokedLinks(ctx)
	r.Erasures, errs[2] = a.Privacy.ReconcileErasures(ctx)
	for i, what := range []string{"deleting again the tenants deleted", "revoking again the enrolment links revoked",
		"re-applying the erasures made"} {
		if errs[i] != nil {
			errs[i] = fmt.Errorf("%s after the backup: %w", what, errs[i])
		}
	}
	return r, errors.Join(errs[:]...)
}

// runJobs does the periodic work; leases keep it to one node at a time when
// several share a PostgreSQL database.
func (a *App) runJobs(ctx context.Context) {
	holder, _ := os.Hostname()
	holder = fmt.Sprintf("%s/%d/%d", holder, os.Getpid(), time.Now().UnixNano())
	cp := audit.NewCheckpointer(a.Store, a.Signer, holder, a.Config.CheckpointInterval, a.Log)
	go cp.Run(ctx)
	if a.Config.AuditRetention > 0 {
		ar := audit.NewArchiver(a.Store, a.Signer, holder, a.Config.AuditArchiveDir, a.Config.AuditRetention, a.Log)
		go ar.Run(ctx, time.Hour)
	}
	if r, err := a.ReconcileRestore(ctx); err != nil && ctx.Err() == nil {
		a.Log.Error("re-applying what a restored backup undid failed", "error", err.Error())
	} else if r != (Reconciled{}) {
		a.Log.Warn("re-applied decisions that a restored backup had undone",
			"tenants_deleted", r.TenantsDeleted, "links_revoked", r.LinksRevoked, "erasures", r.Erasures)
	}
	purger := &privacy.Purger{Service: a.Privacy, Batch: 2000, Pause: 5 * time.Millisecond, Log: a.Log}
	go purger.Run(ctx, a.Config.RetentionInterval)
	go a.runManagementJobs(ctx, holder)
	pusher := &mdm.Pusher{Service: a.MDM, Endpoint: a.Config.APNsEndpoint, Holder: holder, Log: a.Log}
	go pusher.Run(ctx, 2*time.Second)
	if a.Config.SMTPHost != "" {
		mailer, err := mail.New(a.mailConfig())
		if err != nil {
			a.Log.Error("e-mail disabled: the SMTP settings are invalid", "error", err.Error())
		} else {
			outbox := &privacy.Outbox{Service: a.Privacy, Mailer: mailer, Log: a.Log, Holder: holder}
			go outbox.Run(ctx, 30*time.Second)
		}
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for first := true; ; first = false {
		if n, err := a.IAM.PurgeSessions(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("purging ended sessions failed", "error", err.Error())
		} else if n > 0 {
			a.Log.Info("purged ended sessions", "count", n)
		}
		if n, err := a.MDM.PurgeExpiredChallenges(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("purging expired SCEP challenges failed", "error", err.Error())
		} else if n > 0 {
			a.Log.Info("purged expired SCEP challenges", "count", n)
		}
		// Also removes what a request racing a tenant's deletion wrote; at
		// start ReconcileRestore has just run it.
		if !first {
			if n, err := a.IAM.ReconcileDeletedTenants(ctx); err != nil && ctx.Err() == nil {
				a.Log.Warn("sweeping deleted tenants failed", "error", err.Error())
			} else if n > 0 {
				a.Log.Warn("deleted again tenants that a restored backup had brought back", "count", n)
			}
		}
		if n, err := a.MDM.PurgeEndedRevocations(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("purging the tombstones of expired revoked links failed", "error", err.Error())
		} else if n > 0 {
			a.Log.Info("purged the tombstones of expired revoked links", "count", n)
		}
		if n, err := a.MDM.PurgeStaleCertBindings(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("purging unused device certificate bindings failed", "error", err.Error())
		} else if n > 0 {
			a.Log.Info("purged unused device certificate bindings", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// OpenStore opens the configured database without migrating or loading keys.
func OpenStore(ctx context.Context, cfg *Config, log *slog.Logger) (store.Store, error) {
	if err := cfg.ensureDataDir(); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return sqlstore.Open(ctx, cfg.DB, sqlstore.WithLogger(log))
}

func (a *App) mailConfig() mail.Config {
	return mail.Config{Host: a.Config.SMTPHost, Port: a.Config.SMTPPort, Username: a.Config.SMTPUsername,
		Password: os.Getenv("STEWARD_SMTP_PASSWORD"), From: a.Config.SMTPFrom, ImplicitTLS: a.Config.SMTPImplicitTLS,
		Timeout: 30 * time.Second}
}

// routeDevices sends the device- and employee-facing paths (enrolment, SCEP,
// MDM check-in and commands) to the MDM handler and the rest to the API.
func routeDevices(devices, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/enrol/") || strings.HasPrefix(p, "/scep/") || strings.HasPrefix(p, "/mdm/") ||
			p == "/.well-known/com.apple.remotemanagement" {
			// The pages set their own framing, caching and content policies.
			api.TransportHeaders(w.Header(), r)
			devices.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}
