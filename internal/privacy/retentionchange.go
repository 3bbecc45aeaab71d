package privacy

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// RetentionChangeResult says whether a retention change applied or awaits
// a second admin's approval.
type RetentionChangeResult struct {
	Applied  bool
	Approval *store.Approval
	// Settings are the tenant's after the change, or as they were while it
	// awaits approval.
	Settings Settings
}

// retentionRequest is the payload of an ApprovalKindRetention approval.
type retentionRequest struct {
	RetentionDays map[Category]int `json:"retention_days"`
}

// SetRetention changes retention per category. A change that only
// shortens applies at once, to the values already stored too, which
// expire sooner. One that lengthens any period keeps data longer than the
// notice said, a widening like collecting more: the whole change waits for
// a second admin (DecidePolicyChange). Once applied, a longer period holds
// only for values collected from then on (a stored value never outlives
// the period it was collected under) and, on personally owned devices,
// only once their owner accepted the notice it published (EffectiveTerms).
func (s *Service) SetRetention(ctx context.Context, tenantID string, days map[Category]int, reason, requesterID string, actor iam.Actor) (RetentionChangeResult, error) {
	reason, err := ValidateReason(reason)
	if err != nil {
		return RetentionChangeResult{}, err
	}
	if len(days) == 0 {
		return RetentionChangeResult{}, apperr.Invalid("give at least one category")
	}
	for c, d := range days {
		if _, ok := CategoryByName(c); !ok {
			return RetentionChangeResult{}, apperr.Invalid("unknown category %q", c)
		}
		if d < minRetentionDays || d > maxRetentionDays {
			return RetentionChangeResult{}, apperr.Invalid("retention for %s must be %d to %d days", c, minRetentionDays, maxRetentionDays)
		}
		if c == Location && d > maxLocationDays {
			return RetentionChangeResult{}, apperr.Invalid("a device's location is kept at most %d days", maxLocationDays)
		}
	}
	var res RetentionChangeResult
	err = s.st.Tx(ctx, func(q store.Queries) error {
		settings, version, err := LoadSettings(ctx, q, tenantID)
		if err != nil {
			return err
		}
		if len(lengthened(settings, days)) == 0 {
			after, err := s.applyRetention(ctx, q, tenantID, settings, version, days, reason, actor)
			res = RetentionChangeResult{Applied: true, Settings: after}
			return err
		}
		payload, err := json.Marshal(retentionRequest{RetentionDays: days})
		if err != nil {
			return err
		}
		now := s.clock()
		a := store.Approval{ID: store.NewID(), TenantID: tenantID, Kind: ApprovalKindRetention, Payload: payload, Reason: reason,
			RequestedBy: requesterID, State: "pending", CreatedAt: now, ExpiresAt: now.Add(approvalTTL)}
		if err := q.Approvals().Create(ctx, a); err != nil {
			return err
		}
		res = RetentionChangeResult{Approval: &a, Settings: settings}
		e := actor.Entry(tenantID, "privacy.retention.request", "approval", a.ID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"retention_days": days}
		return audit.Append(ctx, q, e)
	})
	return res, err
}

// applyRetention stores days as the tenant's retention, cuts stored values
// to any shorter period, and publishes a new notice version to every
// personally owned class that collects a category whose period grew: its
// summary now says that category is kept longer.
func (s *Service) applyRetention(ctx context.Context, q store.Queries, tenantID string, settings Settings, version int64, days map[Category]int, reason string, actor iam.Actor) (Settings, error) {
	longer := lengthened(settings, days)
	settings.pinNoticeRetention(days)
	settings.RetentionDays = maps.Clone(settings.RetentionDays)
	if settings.RetentionDays == nil {
		settings.RetentionDays = map[Category]int{}
	}
	for c, d := range days {
		settings.RetentionDays[c] = d
	}
	// Saving first takes the settings row's lock, which waits for
	// ingestion that read the old periods; only then are stored values
	// cut to the new ones.
	if err := SaveSettings(ctx, q, tenantID, settings, version, s.clock()); err != nil {
		return settings, conflictRetry(err)
	}
	for c, d := range days {
		if err := q.Inventory().ShortenRetention(ctx, tenantID, string(c), time.Duration(d)*day); err != nil {
			return settings, err
		}
	}
	var noticed []Ownership
	for _, o := range Ownerships {
		if o.PersonallyOwned() && slices.ContainsFunc(longer, func(c Category) bool { return settings.Policy.Mode(o, c) != Drop }) {
			noticed = append(noticed, o)
		}
	}
	e := actor.Entry(tenantID, "privacy.retention.set", "tenant", tenantID, audit.OutcomeSuccess)
	e.Reason = reason
	e.Details = map[string]any{"retention_days": days, "lengthened": longer, "notice_published": noticed}
	if err := audit.Append(ctx, q, e); err != nil {
		return settings, err
	}
	if err := s.publishChanged(ctx, q, tenantID, noticed, keepsLonger, actor); err != nil {
		return settings, err
	}
	if len(noticed) > 0 {
		// Publishing saved the settings again, with the new versions.
		var err error
		if settings, _, err = LoadSettings(ctx, q, tenantID); err != nil {
			return settings, err
		}
	}
	return settings, nil
}

// lengthened lists, in catalogue order, the categories whose period days
// makes longer than settings keep them; a category kept while the device
// is managed cannot be kept longer.
func lengthened(settings Settings, days map[Category]int) []Category {
	var out []Category
	for _, c := range Categories {
		d, ok := days[c.Category]
		if current := settings.Retention(c.Category); ok && current > 0 && time.Duration(d)*day > current {
			out = append(out, c.Category)
		}
	}
	return out
}

// retentionDays is every category's retention in settings, in days (0:
// while the device is managed).
func retentionDays(settings Settings) map[Category]int {
	out := make(map[Category]int, len(Categories))
	for _, c := range Categories {
		out[c.Category] = int(settings.Retention(c.Category) / day)
	}
	return out
}

// pinNoticeRetention fixes the periods every kept notice version stands
// for, before the tenant's change to days applies. A version kept without
// them takes the shorter of the defaults and the current periods (what its
// summary said last), and a period days shortens is shortened for every
// version, as it is for every stored value. Otherwise a shortening left a
// version at its longer publish-time period, and a later lengthening gave
// its devices that period though their owners had been shown the shorter.
func (s *Settings) pinNoticeRetention(days map[Category]int) {
	current := retentionDays(*s)
	s.rewriteNoticeTerms(func(_ Ownership, t NoticeTerms) NoticeTerms {
		kept := t.retention()
		rd := make(map[Category]int, len(Categories))
		for _, c := range Categories {
			d := kept[c.Category]
			if t.RetentionDays == nil {
				d = shorterRetention(d, time.Duration(current[c.Category])*day)
			}
			if n, ok := days[c.Category]; ok {
				d = shorterRetention(d, time.Duration(n)*day)
			}
			rd[c.Category] = int(d / day)
		}
		t.RetentionDays = rd
		return t
	})
}
