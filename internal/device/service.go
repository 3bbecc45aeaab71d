package device

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// Service manages the fleet: projections, groups and profiles.
type Service struct {
	st     store.Store
	priv   *privacy.Service
	mdm    *mdm.Service
	sealer secrets.Sealer
	log    *slog.Logger
	now    func() time.Time
	rules  sync.Map // group ID -> compiledRule
	// MembershipChanged, when set, runs in the transaction that moved
	// devices between groups (compliance policies can target groups).
	MembershipChanged func(ctx context.Context, q store.Queries, tenantID string, deviceIDs []string) error
}

// New wires the service.
func New(st store.Store, priv *privacy.Service, m *mdm.Service, sealer secrets.Sealer, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{st: st, priv: priv, mdm: m, sealer: sealer, log: log, now: time.Now}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// InventoryChanged is the gate's Changed hook: it rebuilds the device's
// projection, moves it between dynamic groups, and deploys or removes the
// profiles that follow. changed names the fields this report stored; it is
// empty when a policy narrowing or a retention purge rebuilds what the
// device's remaining values allow. It returns the refreshed device.
func (s *Service) InventoryChanged(ctx context.Context, q store.Queries, d store.Device, current []store.InventoryValue, changed []string) (store.Device, error) {
	p, err := Project(d, current)
	if err != nil {
		return d, err
	}
	if err := q.ManagedDevices().SetProjection(ctx, p); err != nil {
		return d, err
	}
	d.OSVersion, d.Model = p.OSVersion, p.Model
	moved, err := s.deviceChanged(ctx, q, d, p.Facts, current)
	if err != nil {
		return d, err
	}
	// Reports that move no group and bring no deciding fact read nothing
	// more: changed is what the gate just stored.
	decides := supervisionDecides(current, changed)
	if !moved && !decides {
		return d, nil
	}
	// The caller evaluates compliance next.
	return d, s.reconcileProfiles(ctx, q, d.TenantID, []string{d.ID}, reconcilePass{redecide: decides})
}

// supervisionDecides reports whether this report brought the device's
// supervision, known now: every profile that waits for it, including a new
// version held back while an earlier one stays on the device, is decided
// by a reconciliation, and so is every profile found not applicable when
// the device's supervision was another (a device enrolled again through
// Automated Device Enrollment). Only a stored change counts, so reports that merely
// confirm it cost no reconciliation.
func supervisionDecides(current []store.InventoryValue, changed []string) bool {
	return slices.Contains(changed, supervisedField) && mdm.SupervisionIn(current) != mdm.SupervisionUnknown
}

// Enrolled is the mdm Enrolled hook: the device joins its enrolment's
// group, the dynamic groups it matches, and gets their profiles.
func (s *Service) Enrolled(ctx context.Context, q store.Queries, d store.Device, e store.Enrolment) error {
	if e.GroupID != "" {
		g, err := q.Groups().Get(ctx, d.TenantID, e.GroupID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.log.Warn("an enrolment names a group that no longer exists", "enrolment", e.ID, "group", e.GroupID)
		case err != nil:
			return err
		case g.Kind == store.GroupStatic:
			if _, err := q.Groups().AddMembers(ctx, d.TenantID, g.ID, []string{d.ID}, s.clock()); err != nil {
				return err
			}
		}
	}
	current, err := q.Inventory().Current(ctx, d.TenantID, d.ID)
	if err != nil {
		return err
	}
	p, err := Project(d, current)
	if err != nil {
		return err
	}
	if _, err := s.deviceChanged(ctx, q, d, p.Facts, current); err != nil {
		return err
	}
	return s.reconcileProfiles(ctx, q, d.TenantID, []string{d.ID}, reconcilePass{}) // the caller evaluates compliance next
}

// ValidateEnrolmentGroup checks an enrolment may name groupID: a static
// group of the tenant (dynamic groups choose their members themselves).
func ValidateEnrolmentGroup(ctx context.Context, q store.Queries, tenantID, groupID string) error {
	if groupID == "" {
		return nil
	}
	g, err := q.Groups().Get(ctx, tenantID, groupID)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound("group")
	}
	if err != nil {
		return err
	}
	if g.Kind != store.GroupStatic {
		return apperr.Invalid("an enrolment can only place devices in a static group")
	}
	return nil
}
