package actions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// A device told to leave (its consent withdrawn, TellToLeave) may answer
// the removal of its management profile with an error, or never answer it
// until Steward abandons it (mdm's maxUnanswered). Nothing else would ever
// tell it again, so the hourly management job does (RetellLeaving): each
// attempt is a retire action of the withdrawal's batch, sent again after a
// delay that grows with the attempts, up to maxLeaveAttempts. After the
// last, the device stays leaving with its retire failed and the reason on
// it; an admin deletes or deprovisions it. Steward stops the same way, with
// attempts left, when the device can never be told: its identity expired.
// A device silent too long (leaveSilence) keeps its removal queued, but its
// identity is no longer renewed, so that its channel lapses with its
// certificate unless it comes back first.

// leaveRetryDelays is how long after its n-th failed removal (n from 1) a
// leaving device is sent the removal again. Steward stops after the last
// delay's attempt.
var leaveRetryDelays = []time.Duration{time.Hour, 24 * time.Hour, 72 * time.Hour}

// maxLeaveAttempts bounds the removals sent to one leaving device.
var maxLeaveAttempts = len(leaveRetryDelays) + 1

// leaveSilence is how long a leaving device may stay silent (since its
// last removal was queued or it was last seen, whichever is later) before
// Steward stops renewing its identity. Its removal stays queued: a phone
// left in a drawer may come back while its certificate is still valid, and
// must still be told. Only its channel is left to lapse with its
// certificate, so that a device that never comes back is not kept managed
// for good; the expiry then ends the leave (leaveEnded). Thirty days
// outlast holidays and dead batteries, and are the renewal window.
const leaveSilence = 30 * 24 * time.Hour

// leavingActor is who sends a leaving device its removal again.
var leavingActor = iam.Actor{Type: store.ActorSystem, ID: "leaving-devices"}

// RetellLeaving sends the removal of its management profile again to each
// leaving device whose last removal failed and whose back-off is over, in
// every tenant, and says how many it told. One device that cannot be told
// does not hold up the others.
func (s *Service) RetellLeaving(ctx context.Context) (int, error) {
	tenants, err := privacy.TenantIDs(ctx, s.st.Read())
	if err != nil {
		return 0, err
	}
	now := s.clock()
	told, failed := 0, 0
	for _, t := range tenants {
		query := store.DeviceQuery{State: store.DeviceLeaving, Limit: 500}
		for {
			page, err := s.st.Read().ManagedDevices().Search(ctx, t, query)
			if err != nil {
				return told, err
			}
			for _, d := range page.Devices {
				ok, err := s.retellOne(ctx, d, now)
				if ctx.Err() != nil {
					return told, ctx.Err()
				}
				if err != nil {
					failed++
					s.log.Warn("sending a leaving device its removal again failed", "tenant", d.TenantID, "device", d.ID, "error", err.Error())
				} else if ok {
					told++
				}
			}
			if page.Next.ID == "" {
				break
			}
			query.After = page.Next
		}
	}
	if failed > 0 {
		return told, fmt.Errorf("actions: %d leaving devices could not be sent their removal again", failed)
	}
	return told, nil
}

// retellOne sends leaving device d its removal again if it is due, under
// the device's lock: it may have answered or left meanwhile.
func (s *Service) retellOne(ctx context.Context, d store.Device, now time.Time) (bool, error) {
	told := false
	err := s.st.Tx(ctx, func(q store.Queries) error {
		cur, err := q.Devices().Lock(ctx, d.TenantID, d.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && cur.State != store.DeviceLeaving) {
			return nil
		}
		if err != nil {
			return err
		}
		last, attempts, err := lastRemoval(ctx, q, cur)
		if err != nil || last.ID == "" || last.Final || (last.State == store.ActionFailed && attempts >= maxLeaveAttempts) {
			return err
		}
		if last.State != store.ActionQueued && last.State != store.ActionFailed {
			return nil
		}
		why, err := leaveEnded(ctx, q, cur, now)
		if err != nil || why != "" {
			if err == nil {
				err = s.stopTellingToLeave(ctx, q, cur, last, why)
			}
			return err
		}
		if last.State != store.ActionFailed {
			return nil // queued, and waiting for the device
		}
		if now.Before(last.UpdatedAt.Add(leaveRetryDelays[attempts-1])) {
			return nil
		}
		cmd, err := s.mdm.RetellLeavingIn(ctx, q, cur, last.Reason, leavingActor)
		if errors.Is(err, mdm.ErrNoChannel) {
			return nil // nothing can reach it any more
		}
		if err != nil {
			return err
		}
		told = true
		return q.Actions().Create(ctx, []store.DeviceAction{{ID: store.NewID(), TenantID: cur.TenantID, BatchID: last.BatchID,
			DeviceID: cur.ID, Action: string(Retire), Reason: last.Reason, RequestedBy: last.RequestedBy, State: store.ActionQueued,
			CommandID: cmd.ID, CreatedAt: now, UpdatedAt: now}})
	})
	return told, err
}

// leaveEnded says why telling leaving device d to leave is over although
// attempts are left; "" when it is not. It is over when the device's
// identity certificate expired: it can no longer authenticate, so it can
// never be told. Silence alone does not end it (see leaveSilence).
func leaveEnded(ctx context.Context, q store.Queries, d store.Device, now time.Time) (string, error) {
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !ch.CertNotAfter.IsZero() && !now.Before(ch.CertNotAfter) {
		return fmt.Sprintf("its identity certificate expired on %s, so it can no longer be told", ch.CertNotAfter.UTC().Format(time.DateOnly)), nil
	}
	return "", nil
}

// silentTooLong says whether leaving device d stayed silent for
// leaveSilence since its newest removal last was queued or since it was
// last seen, whichever is later.
func silentTooLong(d store.Device, last store.DeviceAction, now time.Time) bool {
	since := last.CreatedAt
	if d.LastSeenAt.After(since) {
		since = d.LastSeenAt
	}
	return now.Sub(since) >= leaveSilence
}

// stopTellingToLeave gives up on leaving device d before its last attempt,
// for the reason why, as after the last: its removal last, if still
// queued, is cancelled, and last fails saying that Steward stopped, which
// is audited (device.leave.gave_up), and its identity renewal, if one is
// open, is cancelled. Final keeps it so.
func (s *Service) stopTellingToLeave(ctx context.Context, q store.Queries, d store.Device, last store.DeviceAction, why string) error {
	last.Final, last.UpdatedAt = true, s.clock()
	if err := q.Actions().Update(ctx, last); err != nil {
		return err
	}
	if last.State == store.ActionQueued {
		// Its hook fails last, through leavingRemovalFailed.
		if err := s.mdm.StopTellingToLeaveIn(ctx, q, d, last.CommandID, why); err != nil {
			return err
		}
		settled, err := q.Actions().Get(ctx, d.TenantID, last.ID)
		if err != nil || settled.State != store.ActionQueued {
			return err
		}
	}
	// Failed already (waiting to be sent again), or its command was not
	// open although the action waited on it.
	var err error
	last.State = store.ActionFailed
	if last.Error, err = s.leavingRemovalFailed(ctx, q, last, "Steward stopped telling the device to leave: "+why); err != nil {
		return err
	}
	return q.Actions().Update(ctx, last)
}

// lastRemoval returns leaving device d's newest removal (a retire that
// queued its RemoveProfile: the withdrawal's, or a later attempt in its
// batch) and how many attempts that batch holds; none when it has none.
// Retires that queued nothing (a request refused or never approved) are no
// removal. Read directly: however many other actions the device has, none
// hides it.
func lastRemoval(ctx context.Context, q store.Queries, d store.Device) (store.DeviceAction, int, error) {
	last, err := q.Actions().LastQueued(ctx, d.TenantID, d.ID, string(Retire))
	if errors.Is(err, store.ErrNotFound) {
		return store.DeviceAction{}, 0, nil
	}
	if err != nil {
		return store.DeviceAction{}, 0, err
	}
	batch, err := q.Actions().Batch(ctx, d.TenantID, last.BatchID, store.Page{Limit: maxLeaveAttempts + 1})
	return last, len(batch), err
}

// StoppedTellingToLeave reports whether leaving device d's identity is
// no longer renewed, so that its channel lapses with its certificate:
// Steward stopped telling it to leave (its last removal failed and no
// attempt is left, or it gave up early, device.leave.gave_up), or the
// device stayed silent for leaveSilence. Silence is read from the times
// alone: a device that checks in again is no longer silent, takes its
// removal, and is renewed again. A device that is not silent and has a
// removal queued, or one still to be sent again, reports false, as does
// one with no removal on record.
func (s *Service) StoppedTellingToLeave(ctx context.Context, q store.Queries, d store.Device) (bool, error) {
	if d.State != store.DeviceLeaving {
		return false, nil
	}
	last, attempts, err := lastRemoval(ctx, q, d)
	if err != nil || last.ID == "" {
		return false, err
	}
	if last.State == store.ActionFailed && (attempts >= maxLeaveAttempts || last.Final) {
		return true, nil
	}
	return silentTooLong(d, last, s.clock()), nil
}

// leavingRemovalFailed describes, for the admin, the failed retire a of a
// leaving device (its device's error, or why its command was cancelled, in
// summary): when it is sent again or, after the last attempt, that Steward
// stopped and what is left to do, which is also audited, and its open
// identity renewal is cancelled. Any other failed action keeps summary.
func (s *Service) leavingRemovalFailed(ctx context.Context, q store.Queries, a store.DeviceAction, summary string) (string, error) {
	d, err := q.Devices().Get(ctx, a.TenantID, a.DeviceID)
	if err != nil || d.State != store.DeviceLeaving {
		return summary, err
	}
	last, attempts, err := lastRemoval(ctx, q, d)
	if err != nil || last.ID != a.ID {
		return summary, err // not its removal
	}
	if attempts < maxLeaveAttempts && !a.Final {
		return fmt.Sprintf("%s (removal %d of %d; sent again in about %s)", summary, attempts, maxLeaveAttempts,
			leaveRetryDelays[attempts-1]), nil
	}
	why := fmt.Sprintf("%s (removal %d of %d: Steward stopped; the device may still hold the management profile; delete or deprovision it)",
		summary, attempts, maxLeaveAttempts)
	// Nothing is sent to the device any more: a renewal it would still
	// fetch is refused at SCEP, and its payload holds a SCEP challenge and,
	// for User Enrollment, the employee's Managed Apple ID. Cancelled here,
	// since RenewIdentities may never look at the channel again.
	if err := s.mdm.StopRenewingLeavingIn(ctx, q, d); err != nil {
		return summary, err
	}
	e := leavingActor.Entry(a.TenantID, "device.leave.gave_up", "device", a.DeviceID, audit.OutcomeFailure)
	e.Reason = why
	e.Details = map[string]any{"batch": a.BatchID, "attempts": attempts}
	return why, audit.Append(ctx, q, e)
}
