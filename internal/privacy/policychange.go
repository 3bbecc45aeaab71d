package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// Privacy changes waiting for a second admin's approval.
const (
	// ApprovalKindPolicy is a collection-policy widening.
	ApprovalKindPolicy = "privacy.policy"
	// ApprovalKindRetention is a retention change that lengthens a period.
	ApprovalKindRetention = "privacy.retention"
)

// IsPrivacyApproval reports whether an approval of kind is a privacy
// change, decided with DecidePolicyChange.
func IsPrivacyApproval(kind string) bool {
	return kind == ApprovalKindPolicy || kind == ApprovalKindRetention
}

// PolicyChangeInput asks to change the collection policy.
type PolicyChangeInput struct {
	Changes []Change `json:"changes"`
	Reason  string   `json:"reason"`
}

// PolicyChangeResult says whether the change applied or awaits approval.
type PolicyChangeResult struct {
	Applied  bool            `json:"applied"`
	Approval *store.Approval `json:"-"`
	Policy   Policy          `json:"policy"`
	// Purged counts stored values deleted because their category is no
	// longer collected.
	Purged int `json:"purged"`
	// RetentionDays is every category's retention after an approved
	// retention change; empty for a policy change.
	RetentionDays map[Category]int `json:"retention_days,omitempty"`
}

// RequestPolicyChange applies a change that only narrows collection at once
// (deleting values no longer allowed) and turns one that widens it into an
// approval request for a second admin.
func (s *Service) RequestPolicyChange(ctx context.Context, tenantID string, in PolicyChangeInput, requesterID string, actor iam.Actor) (PolicyChangeResult, error) {
	reason, err := ValidateReason(in.Reason)
	if err != nil {
		return PolicyChangeResult{}, err
	}
	if len(in.Changes) == 0 || len(in.Changes) > 100 {
		return PolicyChangeResult{}, apperr.Invalid("give between 1 and 100 changes")
	}
	var res PolicyChangeResult
	err = s.st.Tx(ctx, func(q store.Queries) error {
		settings, version, err := LoadSettings(ctx, q, tenantID)
		if err != nil {
			return err
		}
		next, widens, err := settings.Policy.Apply(in.Changes)
		if err != nil {
			return apperr.Invalid("%v", err)
		}
		if !widens {
			res, err = s.applyPolicy(ctx, q, tenantID, settings, version, next, nil, reason, actor)
			return err
		}
		payload, err := json.Marshal(in.Changes)
		if err != nil {
			return err
		}
		now := s.clock()
		a := store.Approval{ID: store.NewID(), TenantID: tenantID, Kind: ApprovalKindPolicy, Payload: payload, Reason: reason,
			RequestedBy: requesterID, State: "pending", CreatedAt: now, ExpiresAt: now.Add(approvalTTL)}
		if err := q.Approvals().Create(ctx, a); err != nil {
			return err
		}
		res = PolicyChangeResult{Approval: &a, Policy: settings.Policy}
		e := actor.Entry(tenantID, "privacy.policy.request", "approval", a.ID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"changes": in.Changes}
		return audit.Append(ctx, q, e)
	})
	return res, err
}

// applyPolicy stores next, deletes values of categories no longer collected
// and masks those no longer shown, rebuilds what device management derived
// from them, and for a widening publishes a new notice version to every
// affected class.
func (s *Service) applyPolicy(ctx context.Context, q store.Queries, tenantID string, settings Settings, version int64, next Policy, widened []Ownership, reason string, actor iam.Actor) (PolicyChangeResult, error) {
	res := PolicyChangeResult{Applied: true, Policy: next}
	narrowed := next.Narrowed(settings.Policy)
	hidden := next.NewlyHidden(settings.Policy)
	old := settings.Policy
	settings.bindNoticePolicies(next)
	// Saving first takes the settings row's lock, which waits for in-flight
	// ingestion that read the old policy; only then are its values deleted.
	settings.Policy = next
	if err := SaveSettings(ctx, q, tenantID, settings, version, s.clock()); err != nil {
		return res, conflictRetry(err)
	}
	for _, h := range s.policy {
		if err := h(ctx, q, tenantID, old, next); err != nil {
			return res, err
		}
	}
	var reproject []Ownership
	for _, n := range narrowed {
		k, err := q.Inventory().DeleteCategory(ctx, tenantID, string(n.Ownership), string(n.Category))
		if err != nil {
			return res, err
		}
		res.Purged += k
		if n.Category == DeviceIdentity {
			// The blind indexes would still find the devices by the serial
			// numbers and UDIDs just deleted.
			if _, err := q.Devices().ClearIdentifierIndexes(ctx, tenantID, string(n.Ownership)); err != nil {
				return res, err
			}
		}
		reproject = appendClass(reproject, n.Ownership)
	}
	for _, h := range hidden {
		// Stored hidden, the values stay masked for every reader, and for
		// the Changed hook of reports that do not bring them again.
		if _, err := q.Inventory().HideCategory(ctx, tenantID, string(h.Ownership), string(h.Category)); err != nil {
			return res, err
		}
		reproject = appendClass(reproject, h.Ownership)
	}
	if err := s.reprojectClasses(ctx, q, tenantID, settings, reproject); err != nil {
		return res, err
	}
	e := actor.Entry(tenantID, "privacy.policy.change", "tenant", tenantID, audit.OutcomeSuccess)
	e.Reason = reason
	e.Details = map[string]any{"purged": res.Purged, "widened": widened}
	if err := audit.Append(ctx, q, e); err != nil {
		return res, err
	}
	return res, s.publishChanged(ctx, q, tenantID, widened, collectsMore, actor)
}

// publishChanged publishes to each of classes a new notice version saying
// what changed, and asks its employees to consent again.
func (s *Service) publishChanged(ctx context.Context, q store.Queries, tenantID string, classes []Ownership, what string, actor iam.Actor) error {
	for _, o := range classes {
		trs, err := s.changedNotice(ctx, q, tenantID, o, what)
		if err != nil {
			return err
		}
		if _, err := s.publishTx(ctx, q, tenantID, o, trs, actor, "privacy.notice.publish"); err != nil {
			return err
		}
	}
	return nil
}

// What a notice published after a widening says changed.
const (
	collectsMore = "Your organisation now collects more about this kind of device."
	keepsLonger  = "Your organisation now keeps some of what it collects about this kind of device for longer."
)

// changedNotice is the next notice after a widening, which the caller has
// saved: the current texts with what changed and the new summary
// appended, or a generated English notice when the class has none yet.
func (s *Service) changedNotice(ctx context.Context, q store.Queries, tenantID string, o Ownership, whatChanged string) ([]Translation, error) {
	settings, _, err := LoadSettings(ctx, q, tenantID)
	if err != nil {
		return nil, err
	}
	all, err := q.Notices().List(ctx, tenantID, string(o))
	if err != nil {
		return nil, err
	}
	summary := PlainSummary(settings, o)
	var out []Translation
	for _, n := range all {
		if n.Version == settings.NoticeVersions[o] {
			out = append(out, Translation{Language: n.Language, Title: n.Title,
				Body: n.Body + "\n\n## What changed\n\n" + whatChanged + " In full:\n\n" + summary})
		}
	}
	if len(out) == 0 {
		out = []Translation{{Language: "en", Title: "What your organisation can see on your device", Body: summary}}
	}
	return out, nil
}

// DecideInput approves or rejects a pending change.
type DecideInput struct {
	Approve bool   `json:"approve"`
	Comment string `json:"comment"`
}

// DecidePolicyChange lets a second admin approve or reject a widening of
// the collection policy or a longer retention. The requester cannot decide
// their own request; an expired request cannot be approved.
func (s *Service) DecidePolicyChange(ctx context.Context, tenantID, approvalID string, in DecideInput, deciderID string, actor iam.Actor) (PolicyChangeResult, error) {
	var res PolicyChangeResult
	var refusal error
	err := s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Approvals().Get(ctx, tenantID, approvalID)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.NotFound("approval")
		}
		if err != nil {
			return err
		}
		now := s.clock()
		deny := func(e error, why string) error {
			refusal = e
			r := actor.Entry(tenantID, "privacy.policy.decide", "approval", a.ID, audit.OutcomeDenied)
			r.Reason = why
			return audit.Append(ctx, q, r)
		}
		if !IsPrivacyApproval(a.Kind) {
			return apperr.NotFound("approval")
		}
		if why, refusal := CheckDecider(a, deciderID, now); refusal != nil {
			return deny(refusal, why)
		}
		state, err := Decide(ctx, q, a, in.Approve, deciderID, now)
		if err != nil {
			return err
		}
		e := actor.Entry(tenantID, "privacy.policy.decide", "approval", a.ID, audit.OutcomeSuccess)
		e.Reason = strings.TrimSpace(in.Comment)
		e.Details = map[string]any{"decision": state, "kind": a.Kind}
		if err := audit.Append(ctx, q, e); err != nil {
			return err
		}
		settings, version, err := LoadSettings(ctx, q, tenantID)
		if err != nil {
			return err
		}
		if !in.Approve {
			res = PolicyChangeResult{Policy: settings.Policy}
			return nil
		}
		if a.Kind == ApprovalKindRetention {
			var req retentionRequest
			if err := json.Unmarshal(a.Payload, &req); err != nil {
				return fmt.Errorf("privacy: approval %s holds an unreadable retention change: %w", a.ID, err)
			}
			after, err := s.applyRetention(ctx, q, tenantID, settings, version, req.RetentionDays, a.Reason, actor)
			res = PolicyChangeResult{Applied: true, Policy: after.Policy, RetentionDays: retentionDays(after)}
			return err
		}
		var changes []Change
		if err := json.Unmarshal(a.Payload, &changes); err != nil {
			return fmt.Errorf("privacy: approval %s holds an unreadable change: %w", a.ID, err)
		}
		next, _, err := settings.Policy.Apply(changes)
		if err != nil {
			return apperr.Conflict("the change no longer applies: %v", err)
		}
		var widened []Ownership
		for _, c := range changes {
			if _, w, _ := settings.Policy.Apply([]Change{c}); w && !slices.Contains(widened, c.Ownership) {
				widened = append(widened, c.Ownership)
			}
		}
		res, err = s.applyPolicy(ctx, q, tenantID, settings, version, next, widened, a.Reason, actor)
		return err
	})
	if err == nil && refusal != nil {
		return res, refusal
	}
	return res, err
}

// CheckDecider applies the two-person rule to a decision on a: it must be
// pending, unexpired, and decided by someone other than the requester. It
// returns a short reason for the audit log and the refusal for the
// caller, or a nil refusal.
func CheckDecider(a store.Approval, deciderID string, now time.Time) (why string, refusal error) {
	switch {
	case a.State != "pending":
		return "already decided", apperr.Conflict("this request was already %s", a.State)
	case a.RequestedBy == deciderID:
		return "requester cannot decide", apperr.Forbidden("a second admin must decide: you made this request")
	case !now.Before(a.ExpiresAt):
		return "expired", apperr.Conflict("this request expired on %s", a.ExpiresAt.Format(time.RFC3339))
	}
	return "", nil
}

// Decide records a checked decision on a (see CheckDecider) and returns
// the approval's new state; a decision taken meanwhile by someone else is
// a conflict.
func Decide(ctx context.Context, q store.Queries, a store.Approval, approve bool, deciderID string, now time.Time) (string, error) {
	state := "rejected"
	if approve {
		state = "approved"
	}
	if err := q.Approvals().Decide(ctx, a.TenantID, a.ID, state, deciderID, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return "", apperr.Conflict("this request was decided meanwhile")
		}
		return "", err
	}
	return state, nil
}
