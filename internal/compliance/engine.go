package compliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// Standing states beyond store's compliant / noncompliant / unknown.
const (
	// InGrace: failing, but the ladder has not marked it noncompliant yet.
	InGrace = "in_grace"
)

// historyRetention is how long the tenant keeps compliance history.
func historyRetention(ctx context.Context, q store.Queries, tenantID string) (time.Duration, error) {
	s, err := device.LoadSettings(ctx, q, tenantID)
	return time.Duration(s.ComplianceHistoryDays) * 24 * time.Hour, err
}

// Engine evaluates devices and runs ladders.
type Engine struct {
	st        store.Store
	priv      *privacy.Service
	actions   *actions.Service
	sealer    secrets.Sealer
	mailer    privacy.Mailer // nil: no SMTP, so no scheduled reports
	publicURL func() string
	// mayReadReports re-checks a schedule's recipients at send time.
	mayReadReports func(ctx context.Context, tenantID, adminID string) (bool, error)
	log            *slog.Logger
	now            func() time.Time
}

// NewEngine wires the engine.
func NewEngine(st store.Store, priv *privacy.Service, act *actions.Service, sealer secrets.Sealer, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.Default()
	}
	return &Engine{st: st, priv: priv, actions: act, sealer: sealer, log: log, now: time.Now}
}

// SetClock replaces the clock (tests).
func (e *Engine) SetClock(now func() time.Time) { e.now = now }

func (e *Engine) clock() time.Time { return e.now().UTC().Truncate(time.Microsecond) }

// tenantPolicies loads the tenant's enabled policies, parsed, and the
// blocklisted catalogue apps.
func (e *Engine) tenantPolicies(ctx context.Context, q store.Queries, tenantID string) ([]Policy, []string, error) {
	var out []Policy
	page := store.Page{Limit: 1000}
	for {
		ps, err := q.Compliance().ListPolicies(ctx, tenantID, page)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range ps {
			if !p.Enabled {
				continue
			}
			pol, err := fromStore(p)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, pol)
		}
		if len(ps) < page.Limit {
			break
		}
		page.After = ps[len(ps)-1].ID
	}
	if len(out) == 0 {
		return nil, nil, nil
	}
	var blocked []string
	apps, err := q.Apps().List(ctx, tenantID, store.Page{Limit: 1000})
	if err != nil {
		return nil, nil, err
	}
	for _, a := range apps {
		if a.Kind == store.AppBlocked {
			blocked = append(blocked, a.Identifier)
		}
	}
	return out, blocked, nil
}

func fromStore(p store.CompliancePolicy) (Policy, error) {
	rules, err := ParseRules(p.Rules)
	if err != nil {
		return Policy{}, fmt.Errorf("compliance: stored policy %s: %w", p.ID, err)
	}
	ladder, err := ParseLadder(p.Ladder)
	if err != nil {
		return Policy{}, fmt.Errorf("compliance: stored policy %s: %w", p.ID, err)
	}
	return Policy{ID: p.ID, Name: p.Name, Platform: p.Platform, Ownership: p.Ownership, GroupID: p.GroupID, Rules: rules, Ladder: ladder,
		Enabled: p.Enabled, Editor: p.UpdatedBy}, nil
}

// applies reports whether the policy covers the device; groups are the
// device's group IDs.
func (p Policy) applies(d store.Device, groups []string) bool {
	return (p.Platform == "" || p.Platform == d.Platform) && (p.Ownership == "" || p.Ownership == d.Ownership) &&
		(p.GroupID == "" || slices.Contains(groups, p.GroupID))
}

// deviceGroups returns the device's groups when some policy targets a group.
func deviceGroups(ctx context.Context, q store.Queries, d store.Device, policies []Policy) ([]string, error) {
	if !slices.ContainsFunc(policies, func(p Policy) bool { return p.GroupID != "" }) {
		return nil, nil
	}
	return q.Groups().GroupsOf(ctx, d.TenantID, d.ID)
}

// EvaluateDevice evaluates one device against every applicable policy in
// q and records the standings, history and summary. current is the
// device's inventory when the caller has it (nil: read it).
func (e *Engine) EvaluateDevice(ctx context.Context, q store.Queries, d store.Device, current []store.InventoryValue) error {
	if d.Gone() || d.State != store.DeviceEnrolled {
		return nil
	}
	policies, blocked, err := e.tenantPolicies(ctx, q, d.TenantID)
	if err != nil {
		return err
	}
	return e.evaluate(ctx, q, d, current, policies, blocked, nil)
}

// preloaded is what a tenant-wide evaluation reads once for all devices
// instead of once per device.
type preloaded struct {
	facts     map[string][]byte // device ID -> projection facts JSON
	standings map[string][]store.DeviceCompliance
	apps      map[string][]string // device ID -> bundle IDs; nil when no policy reads apps
	groups    map[string][]string // device ID -> the targeted groups it is in
}

func (e *Engine) preload(ctx context.Context, q store.Queries, tenantID string, policies []Policy, blocked []string) (*preloaded, error) {
	projections, err := q.ManagedDevices().Projections(ctx, tenantID, store.DeviceEnrolled)
	if err != nil {
		return nil, err
	}
	pre := &preloaded{facts: make(map[string][]byte, len(projections)), standings: map[string][]store.DeviceCompliance{}}
	for _, p := range projections {
		pre.facts[p.DeviceID] = p.Facts
	}
	ps, err := q.Compliance().ListPolicies(ctx, tenantID, store.Page{Limit: 1000})
	if err != nil {
		return nil, err
	}
	for _, p := range ps { // disabled ones too: their standings are cleared
		standings, err := q.Compliance().ForPolicy(ctx, tenantID, p.ID)
		if err != nil {
			return nil, err
		}
		for _, st := range standings {
			pre.standings[st.DeviceID] = append(pre.standings[st.DeviceID], st)
		}
	}
	pre.groups = map[string][]string{}
	for _, p := range policies {
		if p.GroupID == "" {
			continue
		}
		members, err := q.Groups().AllMembers(ctx, tenantID, p.GroupID)
		if err != nil {
			return nil, err
		}
		for _, id := range members {
			pre.groups[id] = append(pre.groups[id], p.GroupID)
		}
	}
	if slices.ContainsFunc(policies, func(p Policy) bool { return p.Rules.needsApps(blocked) }) {
		if pre.apps, err = e.priv.AllAppIdentifiers(ctx, q, tenantID); err != nil {
			return nil, err
		}
	}
	return pre, nil
}

// evaluate evaluates d in q. current is its inventory when the caller has
// it; pre, when not nil, holds its facts and standings.
func (e *Engine) evaluate(ctx context.Context, q store.Queries, d store.Device, current []store.InventoryValue, policies []Policy, blocked []string, pre *preloaded) error {
	var groups []string
	var err error
	if pre != nil {
		groups = pre.groups[d.ID]
	} else if groups, err = deviceGroups(ctx, q, d, policies); err != nil {
		return err
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
		return err
	}
	if len(applicable) == 0 && len(standings) == 0 {
		return nil
	}
	var facts Facts
	if pre != nil {
		facts, err = e.factsFrom(ctx, q, d, factValues(pre.facts[d.ID]), current, false, needProfiles)
		if ids, known := pre.apps[d.ID]; needApps && known {
			facts.Apps = make(map[string]bool, len(ids))
			for _, id := range ids {
				facts.Apps[id] = true
			}
		}
	} else {
		facts, err = e.facts(ctx, q, d, current, needApps, needProfiles)
	}
	if err != nil {
		return err
	}
	now := e.clock()
	byPolicy := map[string]store.DeviceCompliance{}
	for _, s := range standings {
		byPolicy[s.PolicyID] = s
	}
	var states []string
	for _, p := range applicable {
		st, err := e.record(ctx, q, d, p, byPolicy[p.ID], p.Rules.Evaluate(facts, now, blocked), now)
		if err != nil {
			return err
		}
		states = append(states, st)
		delete(byPolicy, p.ID)
	}
	for _, gone := range byPolicy { // the policy no longer covers the device
		if err := q.Compliance().DeleteStanding(ctx, d.TenantID, d.ID, gone.PolicyID); err != nil {
			return err
		}
	}
	return e.summarise(ctx, q, d, states, now)
}

// record moves the standing of (device, policy) to the outcome.
func (e *Engine) record(ctx context.Context, q store.Queries, d store.Device, p Policy, prev store.DeviceCompliance, out Outcome, now time.Time) (string, error) {
	violations, err := json.Marshal(out.Violations)
	if err != nil {
		return "", err
	}
	next := store.DeviceCompliance{TenantID: d.TenantID, DeviceID: d.ID, PolicyID: p.ID, Violations: violations, EvaluatedAt: now,
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
		keep, err := historyRetention(ctx, q, d.TenantID)
		if err != nil {
			return "", err
		}
		if err := q.Compliance().AppendEvent(ctx, store.ComplianceEvent{ID: store.NewID(), TenantID: d.TenantID, DeviceID: d.ID,
			PolicyID: p.ID, State: next.State, Violations: violations, At: now, ExpiresAt: now.Add(keep)}); err != nil {
			return "", err
		}
	} else if bytes.Equal(prev.Violations, next.Violations) && prev.Steps == next.Steps && prev.NextStepAt.Equal(next.NextStepAt) &&
		prev.Since.Equal(next.Since) {
		return next.State, nil // nothing changed: EvaluatedAt is when the standing last changed
	}
	return next.State, q.Compliance().PutStanding(ctx, next)
}

// nextStep is when ladder step number steps falls due; zero past the end.
func nextStep(l Ladder, since time.Time, steps int) time.Time {
	if steps >= len(l) {
		return time.Time{}
	}
	return since.Add(time.Duration(l[steps].AfterHours) * time.Hour)
}

// severity orders standings, worst last.
var severity = []string{store.ComplianceCompliant, store.ComplianceUnknown, InGrace, store.ComplianceNoncompliant}

// summarise writes the device's overall state: its worst standing; a
// device no policy covers is compliant by default only when some policy
// exists; otherwise unknown.
func (e *Engine) summarise(ctx context.Context, q store.Queries, d store.Device, states []string, now time.Time) error {
	summary := store.ComplianceUnknown
	if len(states) > 0 {
		summary = store.ComplianceCompliant
		for _, s := range states {
			if slices.Index(severity, s) > slices.Index(severity, summary) {
				summary = s
			}
		}
	}
	if summary == d.Compliance {
		return nil
	}
	return q.ManagedDevices().SetCompliance(ctx, d.TenantID, d.ID, summary, now)
}

// facts gathers what the rules read about d from its inventory.
func (e *Engine) facts(ctx context.Context, q store.Queries, d store.Device, current []store.InventoryValue, needApps, needProfiles bool) (Facts, error) {
	var err error
	if current == nil {
		if current, err = q.Inventory().Current(ctx, d.TenantID, d.ID); err != nil {
			return Facts{}, err
		}
	}
	// The values the projection holds: in clear and not hidden. A value the
	// collection policy hides serves no admin-visible outcome either, so a
	// tenant hiding security state makes those rules unknown.
	values := map[string]json.RawMessage{}
	for _, v := range current {
		if v.Ciphertext == nil && !v.Hidden && len(v.Value) > 0 {
			values[v.Field] = v.Value
		}
	}
	return e.factsFrom(ctx, q, d, values, current, needApps, needProfiles)
}

// factValues decodes a projection's facts.
func factValues(raw []byte) map[string]json.RawMessage {
	values := map[string]json.RawMessage{}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &values)
	}
	return values
}

// factsFrom builds facts from non-personal values by catalogue key, the
// device's installed profiles, and (decrypted in memory) its app list.
func (e *Engine) factsFrom(ctx context.Context, q store.Queries, d store.Device, values map[string]json.RawMessage, current []store.InventoryValue, needApps, needProfiles bool) (Facts, error) {
	f := Facts{Platform: d.Platform, Ownership: d.Ownership, LastSeen: d.LastSeenAt, Profiles: map[string]bool{}, ProfilesNotApplicable: map[string]bool{}}
	if raw, ok := values["os.version"]; ok {
		_ = json.Unmarshal(raw, &f.OSVersion)
	}
	f.PasscodePresent = boolFact(values["security.passcode_present"])
	f.PasscodeCompliant = boolFact(values["security.passcode_compliant"])
	f.Encrypted = boolFact(values["security.encrypted"])
	f.Compromised = boolFact(values["security.compromised"])
	if needProfiles {
		profiles, err := q.DeviceProfiles().ForDevice(ctx, d.TenantID, d.ID)
		if err != nil {
			return Facts{}, err
		}
		for _, p := range profiles {
			switch p.Status {
			case store.ProfileInstalled:
				f.Profiles[p.ProfileID] = true
			case store.ProfileNotApplicable, store.ProfileNotApplicableRemovalPending, store.ProfileNotApplicableRemovalFailed:
				// An earlier version still on the device does not make
				// up for the current one it cannot take.
				f.ProfilesNotApplicable[p.ProfileID] = true
			}
		}
	}
	if needApps {
		ids, known, err := e.priv.AppIdentifiers(ctx, q, d.TenantID, d.ID, current)
		if err != nil {
			return Facts{}, err
		}
		if known {
			f.Apps = make(map[string]bool, len(ids))
			for _, id := range ids {
				f.Apps[id] = true
			}
		}
	}
	return f, nil
}

func boolFact(raw []byte) *bool {
	var b bool
	if len(raw) == 0 || json.Unmarshal(raw, &b) != nil {
		return nil
	}
	return &b
}

// ladderActor is who carries out automatic ladder steps in the audit log.
var ladderActor = iam.Actor{Type: store.ActorSystem, ID: "compliance"}

// RunDueSteps carries out up to limit ladder steps that fell due, each in
// its own transaction, and returns how many ran.
func (e *Engine) RunDueSteps(ctx context.Context, limit int) (int, error) {
	due, err := e.st.Read().Compliance().DueSteps(ctx, e.clock(), limit)
	if err != nil {
		return 0, err
	}
	ran := 0
	for _, s := range due {
		err := e.st.Tx(ctx, func(q store.Queries) error { return e.runStep(ctx, q, s) })
		if err != nil {
			e.log.Warn("a compliance step failed", "tenant", s.TenantID, "device", s.DeviceID, "policy", s.PolicyID, "error", err.Error())
			continue
		}
		ran++
	}
	return ran, nil
}

func (e *Engine) runStep(ctx context.Context, q store.Queries, due store.DeviceCompliance) error {
	p, err := q.Compliance().GetPolicy(ctx, due.TenantID, due.PolicyID)
	if errors.Is(err, store.ErrNotFound) {
		return q.Compliance().DeleteStanding(ctx, due.TenantID, due.DeviceID, due.PolicyID)
	}
	if err != nil {
		return err
	}
	pol, err := fromStore(p)
	if err != nil {
		return err
	}
	// Re-read under the transaction: another node may have run it.
	cur, err := e.standing(ctx, q, due)
	if err != nil || cur.NextStepAt.IsZero() || cur.NextStepAt.After(e.clock()) || cur.Steps >= len(pol.Ladder) {
		return err
	}
	d, err := q.Devices().Get(ctx, due.TenantID, due.DeviceID)
	if err != nil {
		return err
	}
	if d.State != store.DeviceEnrolled {
		// Leaving (its employee's withdrawal decided its end) or gone: no
		// step may act on it, and its ladder stops rather than fall due
		// again every run ahead of the devices behind it.
		cur.NextStepAt = time.Time{}
		return q.Compliance().PutStanding(ctx, cur)
	}
	now := e.clock()
	step := pol.Ladder[cur.Steps]
	if err := e.carryOut(ctx, q, d, pol, cur, step); err != nil {
		return err
	}
	cur.Steps++
	cur.NextStepAt = nextStep(pol.Ladder, cur.Since, cur.Steps)
	if step.Action == StepMarkNoncompliant {
		cur.State = store.ComplianceNoncompliant
	}
	keep, err := historyRetention(ctx, q, d.TenantID)
	if err != nil {
		return err
	}
	if err := q.Compliance().AppendEvent(ctx, store.ComplianceEvent{ID: store.NewID(), TenantID: d.TenantID, DeviceID: d.ID,
		PolicyID: pol.ID, State: cur.State, Violations: cur.Violations, Action: step.Action, At: now, ExpiresAt: now.Add(keep)}); err != nil {
		return err
	}
	if err := q.Compliance().PutStanding(ctx, cur); err != nil {
		return err
	}
	all, err := q.Compliance().Standings(ctx, d.TenantID, d.ID)
	if err != nil {
		return err
	}
	states := make([]string, len(all))
	for i, s := range all {
		states[i] = s.State
	}
	return e.summarise(ctx, q, d, states, now)
}

func (e *Engine) standing(ctx context.Context, q store.Queries, due store.DeviceCompliance) (store.DeviceCompliance, error) {
	all, err := q.Compliance().Standings(ctx, due.TenantID, due.DeviceID)
	if err != nil {
		return store.DeviceCompliance{}, err
	}
	for _, s := range all {
		if s.PolicyID == due.PolicyID {
			return s, nil
		}
	}
	return store.DeviceCompliance{}, nil
}

// carryOut performs one ladder step on d.
func (e *Engine) carryOut(ctx context.Context, q store.Queries, d store.Device, p Policy, s store.DeviceCompliance, step Step) error {
	reason := fmt.Sprintf("compliance policy %q: %s", p.Name, summary(s.Violations))
	switch step.Action {
	case StepNotify:
		if d.SubjectID == "" {
			return nil // nobody to tell (shared device)
		}
		var vs []Violation
		_ = json.Unmarshal(s.Violations, &vs)
		var b strings.Builder
		b.WriteString("Your device does not meet your organisation's security requirements yet. To fix it:\n\n")
		for _, v := range vs {
			if !v.Unknown {
				b.WriteString("- " + v.Reason + "\n")
			}
		}
		b.WriteString("\nUntil it is fixed, the device may lose access to work data.\n")
		return e.priv.QueueNotification(ctx, q, d.TenantID, d.SubjectID, "compliance", "Action needed on your device", b.String())
	case StepMarkNoncompliant:
		return nil // the state change is the step
	case StepLock, StepRetire:
		kind := actions.Lock
		if step.Action == StepRetire {
			kind = actions.Retire
		}
		// The policy's last editor is the requester: they may not approve
		// the retire their own ladder asked for.
		return e.actions.Automatic(ctx, q, d, kind, reason, p.Editor, ladderActor)
	}
	return fmt.Errorf("compliance: unknown ladder step %q", step.Action)
}

// summary lists the failed rules of a violations document, briefly.
func summary(raw []byte) string {
	var vs []Violation
	if json.Unmarshal(raw, &vs) != nil {
		return "rules failed"
	}
	var rules []string
	for _, v := range vs {
		if !v.Unknown && !v.Warning && !slices.Contains(rules, v.Rule) {
			rules = append(rules, v.Rule)
		}
	}
	return strings.Join(rules, ", ") + " failed"
}
