package mdm

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// A device's security and OS facts (FileVault, SIP, a passcode, the OS
// version) decide compliance, and its user can change them at any time:
// asked only at enrolment, they would have the hourly compliance pass
// judge enrolment-time answers for ever, and a retention on them would
// leave every device unknown. So the hourly job asks each enrolled Apple
// device again (SecurityInfo, and a DeviceInformation with the OS
// queries) once its last answers are a day old, or half their retention
// old when that is sooner, so that they never lapse between two answers.

const (
	// FactsRefreshInterval is how old a device's last security and OS
	// answers may grow before it is asked again.
	FactsRefreshInterval = 24 * time.Hour
	// FactsRefreshReason is the reason the refresh's commands carry.
	FactsRefreshReason = "periodic refresh of security and OS facts"
	// refreshChunk is how many due devices one count of open commands covers.
	refreshChunk = 200
	// osMarker is the field every answer to the OS queries stores.
	osMarker = "os.version"
	// osVersionQuery is the DeviceInformation query osMarker comes from.
	osVersionQuery = "OSVersion"
)

// securityMarkers are the fields a SecurityInfo answer stores (one kind of
// device reports some, another others), and osQueries the DeviceInformation
// queries of the OS category, both from the data catalogue.
var securityMarkers, osQueries = refreshCatalogue()

func refreshCatalogue() (markers, queries []string) {
	for _, f := range privacy.Catalogue {
		for _, src := range f.Sources {
			switch {
			case src.Protocol != "apple-mdm":
			case src.Payload == string(mdmproto.RequestSecurityInfo) && f.Category == privacy.SecurityState && !slices.Contains(markers, f.Key):
				markers = append(markers, f.Key)
			case src.Payload == string(mdmproto.RequestDeviceInformation) && f.Category == privacy.OS && !slices.Contains(queries, src.Key):
				queries = append(queries, src.Key)
			}
		}
	}
	slices.Sort(markers)
	slices.Sort(queries)
	return markers, queries
}

// RefreshSecurityFacts asks, in each tenant, up to perTenant enrolled Apple
// devices whose security or OS answers are due (refreshDue), most overdue
// first, for them again, and says how many devices it asked; their pushes
// go through the push queue. A device is passed over while such a question
// is open or was asked within the interval (so one whose answer stored
// nothing is not asked every hour), and while it has been silent for the
// whole interval with commands waiting: it is asked once it took them.
func (s *Service) RefreshSecurityFacts(ctx context.Context, perTenant int) (int, error) {
	tenants, err := privacy.TenantIDs(ctx, s.st.Read())
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range tenants {
		n, err := s.refreshTenant(ctx, t, perTenant)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Service) refreshTenant(ctx context.Context, tenantID string, limit int) (int, error) {
	now := s.clock()
	r := s.st.Read()
	settings, err := privacy.ViewSettings(ctx, r, tenantID)
	if err != nil {
		return 0, err
	}
	due, err := dueForRefresh(ctx, r, tenantID, settings.Policy, now)
	if err != nil {
		return 0, err
	}
	silentSince := now.Add(-FactsRefreshInterval)
	queued := 0
	for start := 0; start < len(due) && queued < limit; start += refreshChunk {
		chunk := due[start:min(start+refreshChunk, len(due))]
		ids := make([]string, len(chunk))
		for i, c := range chunk {
			ids[i] = c.d.ID
		}
		open, err := r.Commands().OpenCounts(ctx, tenantID, ids)
		if err != nil {
			return queued, err
		}
		for _, c := range chunk {
			if queued == limit {
				break
			}
			if open[c.d.ID] > 0 && c.d.LastSeenAt.Before(silentSince) {
				continue // it gets its question after those it has not taken yet
			}
			asked, err := s.refreshDevice(ctx, c.d, now.Add(-c.wait))
			if err != nil {
				return queued, err
			}
			if asked {
				queued++
			}
		}
	}
	return queued, nil
}

// dueDevice is a device whose answers are due, since at: wait after the
// answer (refreshDue). A device asked within wait is not asked again.
type dueDevice struct {
	d    store.Device
	at   time.Time
	wait time.Duration
}

// dueForRefresh lists the tenant's enrolled Apple devices whose security
// or OS answers are due, most overdue first; one never answered (or whose
// answer expired) first of all. A category the tenant's policy drops for a
// device's class is not waited for.
func dueForRefresh(ctx context.Context, r store.Queries, tenantID string, policy privacy.Policy, now time.Time) ([]dueDevice, error) {
	securityDue, err := answersDue(ctx, r, tenantID, securityMarkers)
	if err != nil {
		return nil, err
	}
	osDue, err := answersDue(ctx, r, tenantID, []string{osMarker})
	if err != nil {
		return nil, err
	}
	var due []dueDevice
	page := store.DeviceQuery{State: store.DeviceEnrolled, Limit: 1000}
	for {
		res, err := r.ManagedDevices().Search(ctx, tenantID, page)
		if err != nil {
			return nil, err
		}
		for _, d := range res.Devices {
			if d.Platform != "" && schemaOS(d.Platform) == "" {
				continue // not a device Apple's protocol manages
			}
			o := privacy.Ownership(d.Ownership)
			var first *dueDevice
			for _, c := range []struct {
				category privacy.Category
				due      map[string]dueDevice
			}{{privacy.SecurityState, securityDue}, {privacy.OS, osDue}} {
				if policy.Mode(o, c.category) == privacy.Drop {
					continue
				}
				answer, answered := c.due[d.ID]
				if !answered {
					answer = dueDevice{wait: FactsRefreshInterval}
				}
				if !answer.at.After(now) && (first == nil || answer.at.Before(first.at)) {
					first = &answer
				}
			}
			if first != nil {
				due = append(due, dueDevice{d, first.at, first.wait})
			}
		}
		if res.Next == (store.DeviceCursor{}) {
			break
		}
		page.After = res.Next
	}
	slices.SortStableFunc(due, func(a, b dueDevice) int { return a.at.Compare(b.at) })
	return due, nil
}

// answersDue maps each device of the tenant that reported one of fields to
// when the newest of them is due to be asked again (its device unset).
func answersDue(ctx context.Context, r store.Queries, tenantID string, fields []string) (map[string]dueDevice, error) {
	const page = 1000
	out := map[string]dueDevice{}
	for _, field := range fields {
		after := ""
		for {
			vs, err := r.Inventory().FieldValues(ctx, tenantID, field, after, page)
			if err != nil {
				return nil, err
			}
			for _, v := range vs {
				if at, wait := refreshDue(v); at.After(out[v.DeviceID].at) {
					out[v.DeviceID] = dueDevice{at: at, wait: wait}
				}
			}
			if len(vs) < page {
				break
			}
			after = vs[len(vs)-1].DeviceID
		}
	}
	return out, nil
}

// refreshDue is when the device that reported v is to be asked again: a
// day after, or half its retention after when that is sooner (wait).
func refreshDue(v store.InventoryValue) (at time.Time, wait time.Duration) {
	wait = FactsRefreshInterval
	if !v.ExpiresAt.IsZero() {
		wait = min(wait, v.ExpiresAt.Sub(v.CollectedAt)/2)
	}
	return v.CollectedAt.Add(wait), wait
}

// refreshDevice asks listed, a due device, for its security and OS facts
// through EnqueueInventoryIn (the collection policy its owner accepted and
// Apple's rules for its system decide what goes), unless it left Apple's
// protocol, or still has such a question open or was asked one since
// askedSince (askedForFacts). It says whether it asked; a device that
// cannot take the question now (a full queue) is passed over.
func (s *Service) refreshDevice(ctx context.Context, listed store.Device, askedSince time.Time) (bool, error) {
	r := s.st.Read()
	ch, err := r.AppleChannels().Get(ctx, listed.TenantID, listed.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ch.CheckedOut) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if asked, err := askedForFacts(ctx, r, listed, askedSince); err != nil || asked {
		return false, err
	}
	queued := false
	err = s.st.Tx(ctx, func(q store.Queries) error {
		// Locked as every enqueue and departure takes it: one that left
		// meanwhile is seen here, and one leaving later cancels this too.
		d, err := q.Devices().Lock(ctx, listed.TenantID, listed.ID)
		if err != nil || d.State != store.DeviceEnrolled {
			return err
		}
		settings, err := privacy.ViewSettings(ctx, q, d.TenantID)
		if err != nil {
			return err
		}
		policy, err := privacy.EffectivePolicy(ctx, q, settings, d)
		if err != nil {
			return err
		}
		reqs := refreshRequests(policy, privacy.Ownership(d.Ownership))
		if len(reqs) == 0 {
			return nil
		}
		if _, err := s.EnqueueInventoryIn(ctx, q, d, reqs, FactsRefreshReason, iam.SystemActor); err != nil {
			return err
		}
		queued = true
		return nil
	})
	if skip, ineligible := ineligibleFor(listed.ID, err); ineligible {
		s.log.Debug("mdm: a device's security and OS facts could not be asked for now", "tenant", listed.TenantID,
			"device", listed.ID, "reason", skip.Reason, "error", skip.Message)
		return false, nil
	}
	return queued && err == nil, err
}

// refreshRequests are the questions of a refresh that policy keeps the
// answers of on a device of class o.
func refreshRequests(policy privacy.Policy, o privacy.Ownership) []mdmproto.Request {
	var reqs []mdmproto.Request
	if !keepsNothingOf(mdmproto.SecurityInfo{}, policy, o) {
		reqs = append(reqs, mdmproto.SecurityInfo{})
	}
	allowed := DeviceInformationQueries(policy, o)
	queries := slices.DeleteFunc(slices.Clone(osQueries), func(q string) bool { return !slices.Contains(allowed, q) })
	if len(queries) > 0 {
		reqs = append(reqs, mdmproto.DeviceInformation{Queries: queries})
	}
	return reqs
}

// errAsked stops askedForFacts' walk at the first question found.
var errAsked = errors.New("asked")

// askedForFacts reports whether device d has a question for its security
// or OS facts open, or was asked one at or after since (by this refresh,
// an admin's sync or any other path).
func askedForFacts(ctx context.Context, q store.Queries, d store.Device, since time.Time) (bool, error) {
	err := eachCommand(ctx, q, d.TenantID, d.ID, func(c store.Command) error {
		if c.UserChannel == "" && asksForFacts(c) && (store.CommandOpen(c.State) || !c.CreatedAt.Before(since)) {
			return errAsked
		}
		return nil
	})
	if errors.Is(err, errAsked) {
		return true, nil
	}
	return false, err
}

func asksForFacts(c store.Command) bool {
	return c.RequestType == string(mdmproto.RequestSecurityInfo) ||
		(c.RequestType == string(mdmproto.RequestDeviceInformation) && slices.Contains(c.Queries, osVersionQuery))
}
