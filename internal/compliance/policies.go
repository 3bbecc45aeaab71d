package compliance

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// PolicyInput creates or replaces a policy.
type PolicyInput struct {
	Name      string `json:"name"`
	Platform  string `json:"platform,omitempty"`  // ios, ipados, macos; empty for all (not with min_os_version)
	Ownership string `json:"ownership,omitempty"` // empty for all classes
	// GroupID limits the policy to a group's members; empty for all.
	GroupID string `json:"group_id,omitempty"`
	Rules   Rules  `json:"rules"`
	// Ladder defaults to DefaultLadder when absent.
	Ladder  *Ladder `json:"ladder,omitempty"`
	Enabled *bool   `json:"enabled,omitempty"`
}

var platforms = []string{"", "ios", "ipados", "macos"}

// maxPolicies bounds the policies each inventory report is evaluated against.
const maxPolicies = 100

func (in PolicyInput) toStore(tenantID string) (store.CompliancePolicy, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return store.CompliancePolicy{}, apperr.Invalid("a policy needs a name of 1 to 100 characters")
	}
	if !slices.Contains(platforms, in.Platform) {
		return store.CompliancePolicy{}, apperr.Invalid("platform must be ios, ipados, macos or empty (all)")
	}
	if in.Ownership != "" && !privacy.Ownership(in.Ownership).Valid() {
		return store.CompliancePolicy{}, apperr.Invalid("ownership must be corporate, personal, user_enrolled, shared or empty (all)")
	}
	if err := in.Rules.Validate(); err != nil {
		return store.CompliancePolicy{}, err
	}
	// A policy stored before this was refused keeps loading and compares
	// every device's version with its one number, as it always did;
	// saving it again needs a platform.
	if in.Rules.MinOSVersion != "" && in.Platform == "" {
		return store.CompliancePolicy{}, apperr.Invalid("min_os_version needs the policy's platform (ios, ipados or macos): " +
			"macOS numbers its versions apart from iOS and iPadOS, so one minimum cannot fit every platform; make a policy per platform")
	}
	ladder := DefaultLadder()
	if in.Ladder != nil {
		ladder = *in.Ladder
	}
	if err := ladder.Validate(); err != nil {
		return store.CompliancePolicy{}, err
	}
	rules, err := json.Marshal(in.Rules)
	if err != nil {
		return store.CompliancePolicy{}, err
	}
	lad, err := json.Marshal(ladder)
	if err != nil {
		return store.CompliancePolicy{}, err
	}
	enabled := in.Enabled == nil || *in.Enabled
	return store.CompliancePolicy{TenantID: tenantID, Name: name, Platform: in.Platform, Ownership: in.Ownership, GroupID: in.GroupID,
		Rules: rules, Ladder: lad, Enabled: enabled}, nil
}

// CreatePolicy stores a policy and evaluates the tenant's devices with it.
// editorID is the admin behind the request: the retires the policy's
// ladder asks for are theirs, so they cannot approve them.
func (e *Engine) CreatePolicy(ctx context.Context, tenantID string, in PolicyInput, editorID string, actor iam.Actor) (store.CompliancePolicy, error) {
	p, err := in.toStore(tenantID)
	if err != nil {
		return p, err
	}
	now := e.clock()
	p.ID, p.CreatedBy, p.UpdatedBy, p.CreatedAt, p.UpdatedAt = store.NewID(), string(actor.Type)+":"+actor.ID, editorID, now, now
	err = e.st.Tx(ctx, func(q store.Queries) error {
		if err := requireProfiles(ctx, q, tenantID, in.Rules.RequiredProfiles); err != nil {
			return err
		}
		if err := requireGroup(ctx, q, tenantID, in.GroupID); err != nil {
			return err
		}
		// Every inventory report evaluates the tenant's policies: bounded.
		if ps, err := q.Compliance().ListPolicies(ctx, tenantID, store.Page{Limit: maxPolicies}); err != nil {
			return err
		} else if len(ps) >= maxPolicies {
			return apperr.Conflict("a tenant has at most %d compliance policies", maxPolicies)
		}
		if err := q.Compliance().CreatePolicy(ctx, p); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("a policy named %q exists already", p.Name)
			}
			return err
		}
		return audit.Append(ctx, q, actor.Entry(tenantID, "compliance.policy.create", "policy", p.ID, audit.OutcomeSuccess))
	})
	if err != nil {
		return p, err
	}
	_, err = e.EvaluateTenant(ctx, tenantID, nil)
	return p, err
}

// UpdatePolicy replaces a policy and re-evaluates the tenant; editorID
// becomes the policy's last editor (see CreatePolicy).
func (e *Engine) UpdatePolicy(ctx context.Context, tenantID, policyID string, in PolicyInput, editorID string, actor iam.Actor) (store.CompliancePolicy, error) {
	next, err := in.toStore(tenantID)
	if err != nil {
		return next, err
	}
	err = e.st.Tx(ctx, func(q store.Queries) error {
		p, err := q.Compliance().GetPolicy(ctx, tenantID, policyID)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.NotFound("policy")
		}
		if err != nil {
			return err
		}
		if err := requireProfiles(ctx, q, tenantID, in.Rules.RequiredProfiles); err != nil {
			return err
		}
		if err := requireGroup(ctx, q, tenantID, in.GroupID); err != nil {
			return err
		}
		next.ID, next.CreatedBy, next.CreatedAt, next.UpdatedAt, next.UpdatedBy = p.ID, p.CreatedBy, p.CreatedAt, e.clock(), editorID
		if err := q.Compliance().UpdatePolicy(ctx, next); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("a policy named %q exists already", next.Name)
			}
			return err
		}
		// Steps taken count positions on the old ladder: re-counted on the new.
		oldLadder, err := ParseLadder(p.Ladder)
		if err != nil {
			return err
		}
		newLadder, err := ParseLadder(next.Ladder)
		if err != nil {
			return err
		}
		if err := carryLadderProgress(ctx, q, tenantID, p.ID, oldLadder, newLadder); err != nil {
			return err
		}
		return audit.Append(ctx, q, actor.Entry(tenantID, "compliance.policy.update", "policy", p.ID, audit.OutcomeSuccess))
	})
	if err != nil {
		return next, err
	}
	_, err = e.EvaluateTenant(ctx, tenantID, nil)
	return next, err
}

// DeletePolicy removes a policy; devices it covered are re-summarised.
func (e *Engine) DeletePolicy(ctx context.Context, tenantID, policyID string, actor iam.Actor) error {
	err := e.st.Tx(ctx, func(q store.Queries) error {
		if _, err := q.Compliance().GetPolicy(ctx, tenantID, policyID); errors.Is(err, store.ErrNotFound) {
			return apperr.NotFound("policy")
		} else if err != nil {
			return err
		}
		if err := q.Compliance().DeletePolicy(ctx, tenantID, policyID); err != nil {
			return err
		}
		return audit.Append(ctx, q, actor.Entry(tenantID, "compliance.policy.delete", "policy", policyID, audit.OutcomeSuccess))
	})
	if err != nil {
		return err
	}
	_, err = e.EvaluateTenant(ctx, tenantID, nil)
	return err
}

// requireGroup checks a policy's target group is the tenant's.
func requireGroup(ctx context.Context, q store.Queries, tenantID, groupID string) error {
	if groupID == "" {
		return nil
	}
	if _, err := q.Groups().Get(ctx, tenantID, groupID); errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound("group")
	} else if err != nil {
		return err
	}
	return nil
}

// requireProfiles checks a policy requires only profiles that exist: a
// missing one would make every device fail, and the ladder act on all.
func requireProfiles(ctx context.Context, q store.Queries, tenantID string, ids []string) error {
	for _, id := range ids {
		if _, err := q.Profiles().Get(ctx, tenantID, id); errors.Is(err, store.ErrNotFound) {
			return apperr.Invalid("required profile %s does not exist", id)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// LadderPermissions lists what an admin must hold to give a policy this
// ladder: its steps act on devices as the admin could.
func LadderPermissions(l *Ladder) []string {
	if l == nil {
		l = &Ladder{}
		*l = DefaultLadder()
	}
	var out []string
	for _, s := range *l {
		switch s.Action {
		case StepLock:
			out = append(out, "device.lock")
		case StepRetire:
			out = append(out, "device.wipe")
		}
	}
	return out
}

// EvaluationResult counts a tenant-wide evaluation.
type EvaluationResult struct {
	Devices int           `json:"devices"`
	Took    time.Duration `json:"-"`
}

// evaluateBatch is how many devices share one transaction.
const evaluateBatch = 500

// EvaluateTenant evaluates every enrolled device of the tenant, in
// batches, calling progress after each.
func (e *Engine) EvaluateTenant(ctx context.Context, tenantID string, progress func(done int)) (EvaluationResult, error) {
	start := time.Now()
	var res EvaluationResult
	cursor := store.DeviceCursor{}
	// Facts and standings are read once, in the first page's transaction,
	// to pick the devices each page evaluates (evaluatePage).
	var pre *preloaded
	for {
		var next store.DeviceCursor
		var done int // set, not added, inside: Tx may run fn again
		err := e.st.Tx(ctx, func(q store.Queries) error {
			if pre == nil {
				policies, blocked, err := e.tenantPolicies(ctx, q, tenantID)
				if err != nil {
					return err
				}
				if pre, err = e.preload(ctx, q, tenantID, policies, blocked); err != nil {
					return err
				}
			}
			page, err := q.ManagedDevices().Search(ctx, tenantID, store.DeviceQuery{State: store.DeviceEnrolled, After: cursor, Limit: evaluateBatch})
			if err != nil {
				return err
			}
			if err := e.evaluatePage(ctx, q, tenantID, page.Devices, pre); err != nil {
				return err
			}
			done, next = len(page.Devices), page.Next
			return nil
		})
		if err != nil {
			return res, err
		}
		res.Devices += done
		if progress != nil {
			progress(res.Devices)
		}
		if next == (store.DeviceCursor{}) {
			break
		}
		cursor = next
	}
	res.Took = time.Since(start)
	return res, nil
}

// EvaluateDevices evaluates some devices of a tenant inside q (after they
// moved between groups).
func (e *Engine) EvaluateDevices(ctx context.Context, q store.Queries, tenantID string, deviceIDs []string) error {
	policies, blocked, err := e.tenantPolicies(ctx, q, tenantID)
	if err != nil || !slices.ContainsFunc(policies, func(p Policy) bool { return p.GroupID != "" }) {
		return err // no policy looks at groups: nothing moved
	}
	for _, id := range slices.Sorted(slices.Values(deviceIDs)) { // locked in ID order, as a pass locks them
		d, err := q.Devices().Lock(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if d.State == store.DeviceEnrolled {
			if err := e.evaluate(ctx, q, d, nil, policies, blocked, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// EvaluateAll evaluates every tenant (the periodic pass that catches
// time-based rules such as "checked in within N days").
func (e *Engine) EvaluateAll(ctx context.Context) error {
	tenants, err := privacy.TenantIDs(ctx, e.st.Read())
	if err != nil {
		return err
	}
	for _, t := range tenants {
		if _, err := e.EvaluateTenant(ctx, t, nil); err != nil {
			return err
		}
	}
	return nil
}
