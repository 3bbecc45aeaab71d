package actions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// ruleOrigin is what an approval keeps of the rule that asked for its
// action: the compliance policy whose ladder asked, the start of the
// failing run that led there, and why a lock waits (the bulk limit). A
// decision checks the policy still stands (ladderRequestLapsed).
type ruleOrigin struct {
	PolicyID     string    `json:"policy_id,omitempty"`
	PolicyName   string    `json:"policy_name,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	WaitsBecause string    `json:"waits_because,omitempty"`
}

// Rule is the rule that asks for an automatic action: the compliance
// policy whose ladder asks, its last editor (who may not approve what it
// asks), and when the device's current failing run began. An approval
// keeps it, and is refused once that run is over (ladderRequestLapsed).
type Rule struct {
	PolicyID, PolicyName, EditorID string
	FailingSince                   time.Time
}

// automaticWindow is the span over which the locks rules send on their
// own count against the tenant's bulk_approval_threshold.
const automaticWindow = 24 * time.Hour

// automaticLockAudit marks a lock a rule sent without a second admin (a
// rule may still refuse it, as any lock: pin_required): these entries are
// what automaticLocksSent counts.
const automaticLockAudit = "device.action.lock.automatic"

// Automatic carries out an action a rule decided (a compliance ladder step)
// inside q, for one device; one call per transaction, as the bulk count
// reads audit entries, written at commit. Destructive actions are parked for an admin's
// approval like any request: no rule retires or wipes a device on its own.
// Nor does a rule lock more devices on its own than a bulk request could:
// once the tenant's rules sent bulk_approval_threshold locks in 24 hours,
// the next ones wait for a second admin, whatever policy asks. Counted per
// tenant, not per policy, so that a fleet split over many policies counts
// as one.
func (s *Service) Automatic(ctx context.Context, q store.Queries, d store.Device, k Kind, reason string, rule Rule, actor iam.Actor) error {
	settings, err := device.LoadSettings(ctx, q, d.TenantID)
	if err != nil {
		return err
	}
	origin, requesterID := ruleOrigin{PolicyID: rule.PolicyID, PolicyName: rule.PolicyName, FailingSince: rule.FailingSince}, rule.EditorID
	now := s.clock()
	batch := Batch{ID: store.NewID(), Action: k}
	a := []store.DeviceAction{{ID: store.NewID(), TenantID: d.TenantID, BatchID: batch.ID, DeviceID: d.ID, Action: string(k),
		Reason: reason, RequestedBy: actor.Ref(), CreatedAt: now, UpdatedAt: now}}
	in := Request{Action: k, Reason: reason, DeviceIDs: []string{d.ID}}
	park := func() error {
		// As for an admin's request: no second admin is asked to approve
		// what the device's rules refuse; it is refused at once.
		refused, err := s.refusals(ctx, q, d.TenantID, k, in.Options, []string{d.ID})
		if err != nil {
			return err
		}
		if e := refused[d.ID]; e != nil {
			a[0].State, a[0].Error, a[0].RefusalCode = store.ActionRefused, e.Message, refusalCode(e)
			return q.Actions().Create(ctx, a)
		}
		if requesterID != "" {
			a[0].RequestedBy = requesterID // the approval must come from someone else
		}
		return s.park(ctx, q, d.TenantID, &batch, a, in, reason, a[0].RequestedBy, settings, actor, origin)
	}
	if kinds[k].twoPerson {
		return park()
	}
	if k == Lock {
		// A Mac at its firmware lock already would never fetch another
		// lock, and its PIN would not be the one the Mac asks for; two
		// policies' ladders, or one's and an admin's, would otherwise lock
		// it again once unlocked, a Mac with another PIN.
		lock, why, err := lockStanding(ctx, q, d)
		if err != nil {
			return err
		}
		if why != "" {
			return lockSkipped(ctx, q, d, lock, reason, actor, why)
		}
		if d.Platform == "macos" && !privacy.Ownership(d.Ownership).PersonallyOwned() {
			// No admin to choose the Find My PIN a Mac may need: Steward
			// draws one and keeps it for whoever unlocks the Mac
			// (RevealPIN). Not on an employee's own Mac, which they could
			// not unlock: there the lock is refused if the Mac needs a PIN.
			if in.Options.PIN, err = newPIN(); err != nil {
				return err
			}
		}
		sent, err := s.automaticLocksSent(ctx, q, d.TenantID, settings.BulkApprovalThreshold)
		if err != nil {
			return err
		}
		if sent >= settings.BulkApprovalThreshold {
			origin.WaitsBecause = fmt.Sprintf("rules locked %d devices without a second admin in the last 24 hours, "+
				"the tenant's bulk_approval_threshold", sent)
			return park()
		}
		e := actor.Entry(d.TenantID, automaticLockAudit, "device", d.ID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"batch": batch.ID, "policy": origin.PolicyID, "locks_in_24_hours": sent + 1,
			"bulk_approval_threshold": settings.BulkApprovalThreshold}
		if err := audit.Append(ctx, q, e); err != nil {
			return err
		}
	}
	return s.execute(ctx, q, d.TenantID, a, k, in.Options, false, actor)
}

// automaticLocksSent counts, up to limit, the locks rules sent on their
// own in the tenant within automaticWindow, from the audit log (kept at
// least a day). Not locked against a concurrent step on another node: at
// worst each node running one at that moment sends one more.
func (s *Service) automaticLocksSent(ctx context.Context, q store.Queries, tenantID string, limit int) (int, error) {
	since := s.clock().Add(-automaticWindow)
	// Times only grow along a tenant's chain: the window starts after this.
	before, err := q.Audit().LastSeqBefore(ctx, tenantID, since)
	if err != nil {
		return 0, err
	}
	sent, err := q.Audit().List(ctx, tenantID, store.AuditFilter{Action: automaticLockAudit, Since: since, AfterSeq: before, Limit: limit})
	return len(sent), err
}

// ladderRequestLapsed says why the action a policy's ladder asked for, now
// approved, must not be carried out: the device no longer fails that
// policy in the run that asked (it passed, even if it fails again since,
// when its ladder starts over), the policy no longer covers it, or, for a
// lock, another lock stands for it already. "" when it still stands. acts
// are the approval's actions; one refused already was found lapsed by an
// earlier decision, and the request stays refused.
func ladderRequestLapsed(ctx context.Context, q store.Queries, tenantID string, p approvalPayload, acts []store.DeviceAction) (string, error) {
	if p.PolicyID == "" {
		return "", nil
	}
	for _, w := range acts { // one: a ladder asks for one device at a time
		if w.State == store.ActionRefused {
			return w.Error, nil
		}
		// Locked, as compliance's writers lock it before they change its
		// standings: none changes between this check and the action.
		d, err := q.Devices().Lock(ctx, tenantID, w.DeviceID)
		if errors.Is(err, store.ErrNotFound) {
			continue // refused as gone when carried out
		}
		if err != nil {
			return "", err
		}
		standings, err := q.Compliance().Standings(ctx, tenantID, d.ID)
		if err != nil {
			return "", err
		}
		var cur *store.DeviceCompliance
		for i := range standings {
			if standings[i].PolicyID == p.PolicyID {
				cur = &standings[i]
			}
		}
		notDone := fmt.Sprintf("the %s compliance policy %q asked for is not carried out", p.Action, p.PolicyName)
		switch {
		case cur == nil:
			return notDone + ": the policy no longer covers the device (it was deleted, or its scope changed)", nil
		case cur.State == store.ComplianceCompliant || cur.State == store.ComplianceUnknown:
			return fmt.Sprintf("%s: the device no longer fails the policy (it is %s now)", notDone, cur.State), nil
		case !cur.Since.Equal(p.FailingSince):
			return fmt.Sprintf("%s: the device met the policy after the request; it fails it again since %s, and the "+
				"policy's ladder started over", notDone, cur.Since.UTC().Format(time.RFC3339)), nil
		}
		if p.Action != Lock {
			continue
		}
		if _, why, err := lockStanding(ctx, q, d); err != nil || why != "" {
			return notDone + ": " + why, err
		}
	}
	return "", nil
}

// refuseLapsed marks waiting refused, why being their error: a ladder's
// request that no longer stands.
func (s *Service) refuseLapsed(ctx context.Context, q store.Queries, waiting []store.DeviceAction, why string, at time.Time) error {
	for _, w := range waiting {
		// No code of its own: the refusal codes are a published enum.
		w.State, w.Error, w.RefusalCode, w.UpdatedAt = store.ActionRefused, why, mdm.SkipRefused, at
		if err := q.Actions().Update(ctx, w); err != nil {
			return err
		}
	}
	return nil
}

// lockStanding returns the lock that stands for a new one of d, and why;
// why is "" when none does.
func lockStanding(ctx context.Context, q store.Queries, d store.Device) (store.DeviceAction, string, error) {
	lock, _, held, err := heldAtLock(ctx, q, d)
	if err != nil {
		return store.DeviceAction{}, "", err
	}
	if held {
		return lock, "the Mac is at its firmware lock already, waiting for its Find My PIN", nil
	}
	last, err := q.Actions().LastQueued(ctx, d.TenantID, d.ID, string(Lock))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.DeviceAction{}, "", err
	}
	if err == nil && last.State == store.ActionQueued {
		return last, "a lock of the device is queued already", nil
	}
	return store.DeviceAction{}, "", nil
}

// lockSkipped records that a rule's lock of d was not sent, and why: the
// ladder's step still counts as done, and the audit log says what stood
// for it (lock, the action already there).
func lockSkipped(ctx context.Context, q store.Queries, d store.Device, lock store.DeviceAction, reason string, actor iam.Actor, why string) error {
	e := actor.Entry(d.TenantID, "device.action.lock.skipped", "device", d.ID, audit.OutcomeSuccess)
	e.Reason = reason
	e.Details = map[string]any{"why": why, "lock_action_id": lock.ID}
	return audit.Append(ctx, q, e)
}
