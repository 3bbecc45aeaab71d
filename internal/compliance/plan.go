package compliance

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// plan is what evaluating a device changes: worked out before anything is
// written, so a tenant-wide pass can tell from what it read at its start
// which devices need evaluating again under their lock.
type plan struct {
	put     []store.DeviceCompliance // standings that change
	events  []store.ComplianceEvent  // their state changes; ID and expiry set when written
	drop    []string                 // policies that no longer cover the device
	summary string                   // the new overall state; "" when unchanged
	at      time.Time
}

func (pl plan) empty() bool {
	return len(pl.put) == 0 && len(pl.events) == 0 && len(pl.drop) == 0 && pl.summary == ""
}

// evaluate evaluates d in q and writes what changed. current is its
// inventory when the caller has it; pre, when not nil, holds its facts and
// standings.
func (e *Engine) evaluate(ctx context.Context, q store.Queries, d store.Device, current []store.InventoryValue, policies []Policy, blocked []string, pre *preloaded) error {
	pl, err := e.planEvaluation(ctx, q, d, current, policies, blocked, pre)
	if err != nil || pl.empty() {
		return err
	}
	return e.apply(ctx, q, d, pl)
}

// planEvaluation evaluates d against policies, writing nothing.
func (e *Engine) planEvaluation(ctx context.Context, q store.Queries, d store.Device, current []store.InventoryValue, policies []Policy,
	blocked []string, pre *preloaded) (plan, error) {
	var groups []string
	var err error
	if pre != nil {
		groups = pre.groups[d.ID]
	} else if groups, err = deviceGroups(ctx, q, d, policies); err != nil {
		return plan{}, err
	}
	var applicable []Policy
	needApps, needProfiles := false, false
	for _, p := range policies {
		if p.applies(d, groups) {
			applicable = append(applicable, p)
			needApps = needApps || p.Rules.needsApps(blocked)
			needProfiles = needProfiles || len(p.Rules.RequiredProfiles) > 0
		}
	}
	var standings []store.DeviceCompliance
	if pre != nil {
		standings = pre.standings[d.ID]
	} else if standings, err = q.Compliance().Standings(ctx, d.TenantID, d.ID); err != nil {
		return plan{}, err
	}
	now := e.clock()
	if len(applicable) == 0 && len(standings) == 0 {
		pl := plan{at: now}
		if summary := summaryOf(nil, len(policies) > 0); summary != d.Compliance {
			pl.summary = summary
		}
		return pl, nil
	}
	var facts Facts
	if pre != nil {
		facts, err = e.factsFrom(ctx, q, d, factValues(pre.facts[d.ID]), current, false, needProfiles)
		if needApps && pre.apps != nil {
			facts.Apps, facts.AppsHidden = pre.apps.of(d)
		}
	} else {
		facts, err = e.facts(ctx, q, d, current, needApps, needProfiles)
	}
	if err != nil {
		return plan{}, err
	}
	pl := plan{at: now}
	byPolicy := map[string]store.DeviceCompliance{}
	for _, s := range standings {
		byPolicy[s.PolicyID] = s
	}
	var states []string
	for _, p := range applicable {
		next, changed, event, err := advance(d, p, byPolicy[p.ID], p.Rules.Evaluate(facts, now, blocked), now)
		if err != nil {
			return plan{}, err
		}
		if event {
			pl.events = append(pl.events, store.ComplianceEvent{TenantID: d.TenantID, DeviceID: d.ID, PolicyID: p.ID, State: next.State,
				Violations: next.Violations, At: now})
		}
		if changed {
			pl.put = append(pl.put, next)
		}
		states = append(states, next.State)
		delete(byPolicy, p.ID)
	}
	for _, gone := range byPolicy { // the policy no longer covers the device
		pl.drop = append(pl.drop, gone.PolicyID)
	}
	if summary := summaryOf(states, len(policies) > 0); summary != d.Compliance {
		pl.summary = summary
	}
	return pl, nil
}

// apply writes a plan for d.
func (e *Engine) apply(ctx context.Context, q store.Queries, d store.Device, pl plan) error {
	if len(pl.events) > 0 {
		keep, err := historyRetention(ctx, q, d.TenantID)
		if err != nil {
			return err
		}
		for _, ev := range pl.events {
			ev.ID, ev.ExpiresAt = store.NewID(), ev.At.Add(keep)
			if err := q.Compliance().AppendEvent(ctx, ev); err != nil {
				return err
			}
		}
	}
	for _, s := range pl.put {
		if err := q.Compliance().PutStanding(ctx, s); err != nil {
			return err
		}
	}
	for _, policyID := range pl.drop {
		if err := q.Compliance().DeleteStanding(ctx, d.TenantID, d.ID, policyID); err != nil {
			return err
		}
	}
	if pl.summary == "" {
		return nil
	}
	return e.setSummary(ctx, q, d, pl.summary, pl.at)
}

// advance moves the standing of (device, policy) to the outcome: changed
// when it must be stored, event when its state changed (history).
func advance(d store.Device, p Policy, prev store.DeviceCompliance, out Outcome, now time.Time) (next store.DeviceCompliance, changed, event bool, err error) {
	violations, err := json.Marshal(out.Violations)
	if err != nil {
		return next, false, false, err
	}
	next = store.DeviceCompliance{TenantID: d.TenantID, DeviceID: d.ID, PolicyID: p.ID, Violations: violations, EvaluatedAt: now,
		Since: prev.Since, Steps: prev.Steps, NextStepAt: prev.NextStepAt}
	failingBefore := prev.State == InGrace || prev.State == store.ComplianceNoncompliant
	switch out.Result {
	case Pass:
		next.State, next.Steps, next.NextStepAt = store.ComplianceCompliant, 0, time.Time{}
	case Unknown:
		next.State, next.Steps, next.NextStepAt = store.ComplianceUnknown, 0, time.Time{}
	default:
		if !failingBefore {
			next.Since, next.Steps = now, 0
		}
		next.State = InGrace
		if !now.Before(p.Ladder.marksAt(next.Since)) {
			next.State = store.ComplianceNoncompliant
		}
		next.NextStepAt = nextStep(p.Ladder, next.Since, next.Steps)
	}
	if next.State != prev.State {
		if out.Result != Fail {
			next.Since = now
		}
		return next, true, true, nil
	}
	if bytes.Equal(prev.Violations, next.Violations) && prev.Steps == next.Steps && prev.NextStepAt.Equal(next.NextStepAt) &&
		prev.Since.Equal(next.Since) {
		return prev, false, false, nil // nothing changed: EvaluatedAt is when the standing last changed
	}
	return next, true, false, nil
}
