// Package iam holds the admin identity services: accounts, logins with MFA,
// sessions, API tokens, roles and assignments, and the one authorisation
// decision every route goes through. The primitives it builds on
// (argon2id, TOTP, bearer secrets, throttling) live in its subpackages.
//
// Every state change runs in one store.Tx together with its audit entry.
package iam

import (
	"context"
	"log/slog"
	"time"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam/password"
	"github.com/steward-mdm/steward/internal/iam/throttle"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// Config holds the identity settings an operator may change.
type Config struct {
	// RequireMFA makes a second factor mandatory for every interactive login
	// (console and CLI) install-wide. Tenants can require it regardless.
	RequireMFA bool
	// Session lifetimes: idle expiry moves with use; absolute never does.
	BrowserIdle, BrowserAbsolute time.Duration
	CLIIdle, CLIAbsolute         time.Duration
	// InviteTTL bounds how long a one-time setup code for a new admin works.
	InviteTTL time.Duration
	// MaxTokenTTL caps API token lifetimes; tokens always expire.
	MaxTokenTTL time.Duration
	// Issuer is the name authenticator apps show next to the account.
	Issuer string
}

// DefaultConfig is what a fresh install runs with.
func DefaultConfig() Config {
	return Config{
		RequireMFA:      true,
		BrowserIdle:     30 * time.Minute,
		BrowserAbsolute: 12 * time.Hour,
		CLIIdle:         2 * time.Hour,
		CLIAbsolute:     24 * time.Hour,
		InviteTTL:       72 * time.Hour,
		MaxTokenTTL:     366 * 24 * time.Hour,
		Issuer:          "Steward",
	}
}

// Service implements the identity use cases.
type Service struct {
	st     store.Store
	sealer secrets.Sealer
	cfg    Config
	policy password.Policy
	login  throttle.LoginPolicy
	log    *slog.Logger
	now    func() time.Time
	// tenantDeleted runs inside tenant deletion; see OnTenantDeleted.
	tenantDeleted []func(ctx context.Context, q store.Queries, tenantID string) error
}

// Option changes a Service at construction.
type Option func(*Service)

// WithClock replaces time.Now, for tests of expiry and back-off.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLogger sets the logger; it only ever receives IDs, never names or
// emails.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithLoginPolicy replaces the back-off and lockout schedule.
func WithLoginPolicy(p throttle.LoginPolicy) Option { return func(s *Service) { s.login = p } }

// New builds the service. sealer protects TOTP secrets at rest.
func New(st store.Store, sealer secrets.Sealer, cfg Config, opts ...Option) *Service {
	if st == nil || sealer == nil {
		panic("iam.New: store and sealer are required")
	}
	s := &Service{
		st:     st,
		sealer: sealer,
		cfg:    cfg,
		policy: password.Policy{MinLength: 12, HistoryDepth: 5},
		login:  throttle.DefaultLoginPolicy(),
		log:    slog.Default(),
		now:    time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Config returns the settings in force.
func (s *Service) Config() Config { return s.cfg }

// Actor is who makes a request and from where, as the audit log records it.
type Actor struct {
	Type      store.ActorType
	ID        string
	SourceIP  string
	RequestID string
	UserAgent string
}

// SystemActor is Steward itself (bootstrap, background jobs).
var SystemActor = Actor{Type: store.ActorSystem, ID: "steward"}

// Ref names the actor as records that outlive its session keep it
// ("admin:<id>", "device:<id>", …).
func (a Actor) Ref() string { return string(a.Type) + ":" + a.ID }

// Entry builds an audit record for an action this actor took.
func (a Actor) Entry(tenantID, action, targetType, targetID, outcome string) audit.Record {
	return audit.Record{
		TenantID:   tenantID,
		ActorType:  a.Type,
		ActorID:    a.ID,
		Action:     action,
		TargetType: targetType,
		TargetID:   targetID,
		Outcome:    outcome,
		SourceIP:   a.SourceIP,
		RequestID:  a.RequestID,
	}
}

const (
	outcomeSuccess = "success"
	outcomeFailure = "failure"
	outcomeDenied  = "denied"
)

// appendAudit writes records inside the caller's transaction.
func appendAudit(ctx context.Context, q store.Queries, recs ...audit.Record) error {
	return audit.Append(ctx, q, recs...)
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }
