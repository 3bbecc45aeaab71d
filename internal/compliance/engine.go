package compliance

import (
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
	// SummaryChanged, when set, runs in the transaction that changed a
	// device's overall state: the dynamic groups reading compliance follow
	// it at once.
	SummaryChanged func(ctx context.Context, q store.Queries, tenantID, deviceID string) error
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
//
// Every writer of standings (this, a tenant-wide pass, a ladder step, a
// ladder edit) locks the device row before it reads what it writes from,
// standings and policies: on PostgreSQL two writers would otherwise each
// write back what the other changed meanwhile.
func (e *Engine) EvaluateDevice(ctx context.Context, q store.Queries, d store.Device, current []store.InventoryValue) error {
	if d.Gone() || d.State != store.DeviceEnrolled {
		return nil
	}
	d, err := q.Devices().Lock(ctx, d.TenantID, d.ID) // the gate holds it already
	if err != nil || d.Gone() || d.State != store.DeviceEnrolled {
		return err
	}
	policies, blocked, err := e.tenantPolicies(ctx, q, d.TenantID)
	if err != nil {
		return err
	}
	return e.evaluate(ctx, q, d, current, policies, blocked, nil)
}

// nextStep is when ladder step number steps falls due; zero past the end.
func nextStep(l Ladder, since time.Time, steps int) time.Time {
	if steps >= len(l) {
		return time.Time{}
	}
	return since.Add(time.Duration(l[steps].AfterHours) * time.Hour)
}

// severity orders standings, worst last. Unknown ranks below in_grace, so
// an overall in_grace can hide an unknown standing (or a policy's failing
// rule an unknown one): conditional access reads the standings for those.
var severity = []string{store.ComplianceCompliant, store.ComplianceUnknown, InGrace, store.ComplianceNoncompliant}

// summarise writes the device's overall state from its standings under
// the policies that cover it (at least one: a ladder step's).
func (e *Engine) summarise(ctx context.Context, q store.Queries, d store.Device, states []string, now time.Time) error {
	if summary := summaryOf(states, true); summary != d.Compliance {
		return e.setSummary(ctx, q, d, summary, now)
	}
	return nil
}

// setSummary writes d's overall state and tells SummaryChanged.
func (e *Engine) setSummary(ctx context.Context, q store.Queries, d store.Device, summary string, at time.Time) error {
	if err := q.ManagedDevices().SetCompliance(ctx, d.TenantID, d.ID, summary, at); err != nil {
		return err
	}
	if e.SummaryChanged == nil {
		return nil
	}
	return e.SummaryChanged(ctx, q, d.TenantID, d.ID)
}

// summaryOf is the device's overall state: the worst of its standings.
// A device no policy covers meets every policy that covers it, so it is
// compliant while the tenant has a policy (enabled); with none it is
// unknown: conditional access then has nothing to check it against.
func summaryOf(states []string, tenantHasPolicies bool) string {
	if len(states) == 0 {
		if tenantHasPolicies {
			return store.ComplianceCompliant
		}
		return store.ComplianceUnknown
	}
	summary := store.ComplianceCompliant
	for _, s := range states {
		if slices.Index(severity, s) > slices.Index(severity, summary) {
			summary = s
		}
	}
	return summary
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

// factsFrom builds facts from non-personal values by catalogue key, the
// device's installed profiles, and (decrypted in memory) its app list
// unless hidden (deviceApps).
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
		var err error
		if f.Apps, f.AppsHidden, err = e.deviceApps(ctx, q, d, current); err != nil {
			return Facts{}, err
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
	// Locked before the standing is read again (see EvaluateDevice): a
	// report's evaluation and this step then run one after the other.
	d, err := q.Devices().Lock(ctx, due.TenantID, due.DeviceID)
	if err != nil {
		return err
	}
	p, err := q.Compliance().GetPolicy(ctx, due.TenantID, due.PolicyID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !p.Enabled) {
		// Deleted, or disabled before the pass that drops its standings
		// reached this device: its ladder does nothing more.
		return q.Compliance().DeleteStanding(ctx, due.TenantID, due.DeviceID, due.PolicyID)
	}
	if err != nil {
		return err
	}
	pol, err := fromStore(p)
	if err != nil {
		return err
	}
	// Re-read under the lock: another node may have run it.
	cur, err := e.standing(ctx, q, due)
	if err != nil || cur.NextStepAt.IsZero() || cur.NextStepAt.After(e.clock()) || cur.Steps >= len(pol.Ladder) {
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
		return e.actions.Automatic(ctx, q, d, kind, reason,
			actions.Rule{PolicyID: p.ID, PolicyName: p.Name, EditorID: p.Editor, FailingSince: s.Since}, ladderActor)
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
