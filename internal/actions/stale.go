package actions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// staleActor is who flags and retires stale devices in the audit log.
var staleActor = iam.Actor{Type: store.ActorSystem, ID: "stale-devices"}

// StaleResult counts one sweep.
type StaleResult struct {
	Flagged int `json:"flagged"`
	Retired int `json:"retired"`
	// Held counts Macs waiting at a lock with a kept PIN, not retired;
	// once a tenant's retire bound is reached, the rest of its flagged
	// devices, held ones among them, are looked at in the next sweep.
	Held int `json:"held"`
	// OptionsForgotten counts the approvals whose options went, and
	// ApprovalsLapsed those whose waiting actions expired (SettleApprovals).
	OptionsForgotten int `json:"approval_options_forgotten"`
	ApprovalsLapsed  int `json:"approvals_lapsed"`
}

// SweepStale flags enrolled devices that stopped checking in, per each
// tenant's settings, and retires those flagged longer than the tenant
// allows: their personal data is erased now, as the tenant's retention
// promise requires, and Steward forgets them. Nothing is queued for them:
// their channel closes, so a device that returns is refused and keeps its
// management profile until its user removes it.
//
// A Mac silent since a lock whose Find My PIN Steward keeps is flagged but
// not retired: it cannot check in until someone enters that PIN at it, so
// its silence says nothing of whether it is gone, and once unlocked it
// would come back unmanaged.
//
// Leaving devices (consent withdrawn) are neither flagged nor retired:
// their personal data went when they were told to leave, and retiring one
// would close the channel its removal still waits on (RetellLeaving sends
// a failed one again). One that never returns stays leaving until an admin
// deletes or deprovisions it.
//
// Approvals no one can act on any more are stale too: the sweep expires
// a lapsed one's waiting actions and drops the options it still holds
// (SettleApprovals), since nothing may read them again. Neither half's
// failure holds up the other.
func (s *Service) SweepStale(ctx context.Context) (StaleResult, error) {
	var res StaleResult
	settled, settling := s.SettleApprovals(ctx)
	if settling != nil {
		settling = fmt.Errorf("settling lapsed approvals: %w", settling)
	}
	res.OptionsForgotten, res.ApprovalsLapsed = settled.OptionsForgotten, settled.Lapsed
	res, err := s.sweepStaleDevices(ctx, res)
	return res, errors.Join(settling, err)
}

func (s *Service) sweepStaleDevices(ctx context.Context, res StaleResult) (StaleResult, error) {
	tenants, err := privacy.TenantIDs(ctx, s.st.Read())
	if err != nil {
		return res, err
	}
	now := s.clock()
	for _, t := range tenants {
		settings, err := device.LoadSettings(ctx, s.st.Read(), t)
		if err != nil {
			return res, err
		}
		cutoff := now.Add(-time.Duration(settings.StaleAfterDays) * 24 * time.Hour)
		var flaggedBefore time.Time // zero: flagged devices are never retired
		if settings.RetireStaleAfterDays > 0 {
			flaggedBefore = now.Add(-time.Duration(settings.RetireStaleAfterDays) * 24 * time.Hour)
		}
		retired := 0
		// A cursor, so devices left as they are (held, or past the bound)
		// cannot fill every page and hide the rest.
		var after store.StaleCursor
		for {
			stale, err := s.st.Read().ManagedDevices().Stale(ctx, t, cutoff, flaggedBefore, after, 500)
			if err != nil {
				return res, err
			}
			for _, d := range stale {
				if !d.StaleSince.IsZero() && retired >= maxRetiredPerSweep {
					continue // bounded: a mistaken setting cannot empty a fleet in one pass
				}
				done, err := s.sweepOne(ctx, d, settings, cutoff, now)
				if err != nil {
					return res, err
				}
				switch done {
				case "flagged":
					res.Flagged++
				case "retired":
					res.Retired++
					retired++
				case "held":
					res.Held++
				}
			}
			if len(stale) < 500 {
				break
			}
			last := stale[len(stale)-1]
			after = store.StaleCursor{LastSeenAt: last.LastSeenAt, ID: last.ID}
		}
	}
	return res, nil
}

// maxRetiredPerSweep bounds how many devices one hourly sweep retires per
// tenant.
const maxRetiredPerSweep = 100

// sweepOne flags or retires one stale device and says which it did. The
// device is re-read under its lock: it may have checked in meanwhile.
func (s *Service) sweepOne(ctx context.Context, d store.Device, settings device.Settings, cutoff, now time.Time) (string, error) {
	if d.StaleSince.IsZero() {
		done := ""
		err := s.st.Tx(ctx, func(q store.Queries) error {
			cur, still, err := stillAsListed(ctx, q, d, cutoff)
			if err != nil || !still {
				return err
			}
			if err := q.ManagedDevices().SetStaleSince(ctx, d.TenantID, d.ID, now); err != nil {
				return err
			}
			done = "flagged"
			e := staleActor.Entry(d.TenantID, "device.stale.flag", "device", d.ID, audit.OutcomeSuccess)
			e.Details = map[string]any{"last_seen_at": cur.LastSeenAt, "stale_after_days": settings.StaleAfterDays}
			return audit.Append(ctx, q, e)
		})
		return done, err
	}
	if settings.RetireStaleAfterDays == 0 || now.Sub(d.StaleSince) < time.Duration(settings.RetireStaleAfterDays)*24*time.Hour {
		return "", nil
	}
	reason := fmt.Sprintf("no check-in for %d days, stale for %d days (tenant setting)", int(now.Sub(d.LastSeenAt).Hours()/24), settings.RetireStaleAfterDays)
	done := ""
	err := s.st.Tx(ctx, func(q store.Queries) error {
		cur, still, err := stillAsListed(ctx, q, d, cutoff)
		if err != nil || !still {
			return err
		}
		lock, at, held, err := heldAtLock(ctx, q, cur)
		if err != nil {
			return err
		}
		if held {
			done = "held"
			return auditHeldOnce(ctx, q, cur, lock, at)
		}
		done = "retired"
		// A device that left management is refused at check-in, so no
		// command could reach it: retiring it is Steward forgetting it.
		a := store.DeviceAction{ID: store.NewID(), TenantID: d.TenantID, BatchID: store.NewID(), DeviceID: d.ID, Action: string(Retire),
			Reason: reason, RequestedBy: "system:stale-devices", State: store.ActionDone, CreatedAt: now, UpdatedAt: now}
		if err := q.Actions().Create(ctx, []store.DeviceAction{a}); err != nil {
			return err
		}
		_, err = s.priv.LeaveIn(ctx, q, d.TenantID, d.ID, store.DeviceRetired, reason, staleActor)
		return err
	})
	return done, err
}

// stillAsListed re-reads listed device d under its lock and reports
// whether it is as the sweep's list showed it: enrolled, silent since before
// cutoff, and flagged or not. It may have checked in, left, or been flagged
// by another node meanwhile.
func stillAsListed(ctx context.Context, q store.Queries, d store.Device, cutoff time.Time) (store.Device, bool, error) {
	cur, err := q.Devices().Lock(ctx, d.TenantID, d.ID)
	if err != nil {
		return cur, false, err
	}
	return cur, cur.State == store.DeviceEnrolled && cur.LastSeenAt.Before(cutoff) && cur.StaleSince.IsZero() == d.StaleSince.IsZero(), nil
}

// auditHeldOnce records, once per lock (taken at at), that the sweep
// holds d back from retirement: it keeps its data until an admin deletes
// it.
func auditHeldOnce(ctx context.Context, q store.Queries, d store.Device, lock store.DeviceAction, at time.Time) error {
	const action = "device.stale.retire_held"
	before, err := q.Audit().List(ctx, d.TenantID, store.AuditFilter{Action: action, TargetType: "device", TargetID: d.ID,
		Since: at, Limit: 1})
	if err != nil || len(before) > 0 {
		return err
	}
	e := staleActor.Entry(d.TenantID, action, "device", d.ID, audit.OutcomeSuccess)
	e.Reason = "a Mac silent since it took a lock whose Find My PIN Steward keeps: it cannot check in until " +
		"the PIN is entered; it keeps its data until an admin deletes it, which keeps its PIN past its record"
	e.Details = map[string]any{"last_seen_at": d.LastSeenAt, "lock_action_id": lock.ID}
	return audit.Append(ctx, q, e)
}

// heldAtLock reports whether d is a Mac that has not checked in since it
// took lock, its newest lock whose PIN Steward keeps: acknowledged, or
// fetched and its answer lost on the way, since a Mac locks as it answers
// (ActionStore.LastPINTaken). It waits at its firmware lock for that PIN.
func heldAtLock(ctx context.Context, q store.Queries, d store.Device) (lock store.DeviceAction, at time.Time, held bool, err error) {
	if d.Platform != "macos" {
		return lock, at, false, nil
	}
	lock, at, err = q.Actions().LastPINTaken(ctx, d.TenantID, d.ID, string(Lock))
	if errors.Is(err, store.ErrNotFound) {
		return lock, at, false, nil
	}
	if err != nil {
		return lock, at, false, err
	}
	// Taking it was the Mac's last exchange; its last-seen time may have
	// been written up to a minute before.
	return lock, at, !d.LastSeenAt.After(at.Add(time.Minute)), nil
}
