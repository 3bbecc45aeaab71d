package mdm

import (
	"context"
	"crypto/x509"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/iam/throttle"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// Config is the MDM service's configuration.
type Config struct {
	// PublicURL is how devices and employees reach this server, e.g.
	// https://mdm.example.org (no trailing slash).
	PublicURL string
	// MaxQueued bounds each device's open commands.
	MaxQueued int
}

// Service is the Apple MDM service.
type Service struct {
	st     store.Store
	priv   *privacy.Service
	sealer secrets.Sealer
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	cas    sync.Map // tenant ID -> *tenantTrust
	casMu  sync.Mutex
	hooks  Hooks

	signer *profileSigner // SignProfilesWith; nil: each tenant's CA signs

	pushersMu sync.Mutex
	pushers   []*Pusher // whose APNs clients dropPushClients closes

	pushFailures *prometheus.CounterVec // by tenant and reason; see MetricsCollector
	// deviceRequests: by tenant, endpoint and outcome (newDeviceRequests).
	deviceRequests *prometheus.CounterVec
	// downloads bounds each enrolment's profile downloads on this node:
	// each stores a challenge for an hour and costs a signature, and a
	// person needs a few at most.
	downloads *throttle.Limiter

	misuse misuseAudits // which refusals of a certificate naming another device are audited
	// unopened: since when commands' payloads have failed to open here.
	unopened unopenedSince
}

// Hooks let device management follow the protocol, and tell it what only
// device management knows, without the protocol knowing about it. Each
// runs inside the transaction of the message that caused it; an error
// fails that message (the device retries).
type Hooks struct {
	// Enrolled: the device finished enrolling with e (first TokenUpdate).
	Enrolled func(ctx context.Context, q store.Queries, d store.Device, e store.Enrolment) error
	// CommandFinished: the device answered cmd with Acknowledged or Error
	// (cmd.State says which).
	CommandFinished func(ctx context.Context, q store.Queries, cmd store.Command) error
	// ProfileCertificates: the certificates carried by the configuration
	// profiles Steward has installed, or is installing, on d; see
	// organisationCertificates. Unset, a personally owned device keeps
	// only the certificates the tenant's CA issued. An error fails the
	// result it was asked for.
	ProfileCertificates func(ctx context.Context, q store.Queries, d store.Device) ([]*x509.Certificate, error)
	// PlatformLearned: d, enrolled with its platform unknown, named itself
	// in a DeviceInformation answer; d.Platform is now set.
	PlatformLearned func(ctx context.Context, q store.Queries, d store.Device) error
	// StoppedTellingToLeave: leaving device d's identity is no longer
	// renewed, since Steward stopped telling it to remove its management
	// profile (none left to send) or it stayed silent too long while told.
	// Unset, a leaving device is renewed as long as it is leaving.
	StoppedTellingToLeave func(ctx context.Context, q store.Queries, d store.Device) (bool, error)
}

// SetHooks installs hooks, before serving starts.
func (s *Service) SetHooks(h Hooks) { s.hooks = h }

// New wires the service.
func New(st store.Store, priv *privacy.Service, sealer secrets.Sealer, cfg Config, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = 100
	}
	s := &Service{st: st, priv: priv, sealer: sealer, cfg: cfg, log: log, now: time.Now, pushFailures: newPushFailures(),
		deviceRequests: newDeviceRequests(), downloads: throttle.NewLimiter(float64(profileDownloadsPerHour)/3600, profileDownloadsPerHour, 100_000)}
	priv.OnDeviceLeft(s.DeviceLeft)
	priv.OnDeviceErased(s.forgetAccounts)
	priv.OnDeviceErased(s.forgetErrorText)
	priv.OnSubjectErased(s.forgetPerson)
	priv.OnAccountReplaced(s.forgetReplacedAccount)
	priv.OnDeviceExport(s.exportDevice)
	priv.OnExportAudit(othersAccountsLeftOut)
	priv.OnSubjectExport(s.exportSubject)
	priv.OnFullWipeTakenBack(s.takeBackFullWipe)
	priv.OnPolicyChanged(s.queueErrorTextPass)
	priv.OnMintKey(EnrolmentLinkKind, s.mintEnrolmentLink)
	return s
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// PublicURL is how devices and employees reach this server.
func (s *Service) PublicURL() string { return s.cfg.PublicURL }

// SetPublicURL sets the address enrolment links and profiles name, before
// serving starts (the listener's address when none was configured).
func (s *Service) SetPublicURL(u string) { s.cfg.PublicURL = u }

// profileDownloadsPerHour is how many enrolment profiles one enrolment may
// download per hour, on one node, at most: at a steady rate, and all at
// once after an hour without.
const profileDownloadsPerHour = 10
