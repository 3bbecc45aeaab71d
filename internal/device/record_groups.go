package device

import (
	"context"
	"errors"
	"slices"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/rules"
	"github.com/steward-mdm/steward/internal/store"
)

// A report moves its device between dynamic groups (deviceChanged), but
// some attributes come from the device record and change without one: a
// device falls silent (last_seen), the ladder or the hourly pass marks it
// (compliance), it leaves (state). RefreshRecordGroups catches those every
// hour, and ComplianceChanged catches compliance at once.

// recordAttributes are the rule attributes that change without a report.
var recordAttributes = []string{"last_seen", "enrolled", "state", "compliance"}

// deviceRecordAttributes are the attributes FillFacts takes from the device
// record; every other but apps comes from the projection.
var deviceRecordAttributes = []string{"platform", "ownership", "state", "compliance", "last_seen", "enrolled"}

func readsRecord(r *rules.Rule) bool {
	return slices.ContainsFunc(r.Attributes(), func(a string) bool { return slices.Contains(recordAttributes, a) })
}

func readsCompliance(r *rules.Rule) bool { return slices.Contains(r.Attributes(), "compliance") }

// readsProjection reports whether r reads an inventory fact of the projection.
func readsProjection(r *rules.Rule) bool {
	return slices.ContainsFunc(r.Attributes(), func(a string) bool { return a != "apps" && !slices.Contains(deviceRecordAttributes, a) })
}

// regroupsPerTx is how many devices one transaction of RefreshRecordGroups moves.
const regroupsPerTx = 100

// RefreshRecordGroups re-evaluates, in every tenant, the dynamic groups
// whose rule reads last_seen, enrolled, state or compliance, and moves up
// to perTenant devices of each (the rest at the next run); it returns how
// many moved. The tenant is read outside any transaction; each device
// found to move is then decided again under its lock on what it holds
// there (regroup), so a report stored meanwhile is not undone.
func (s *Service) RefreshRecordGroups(ctx context.Context, perTenant int) (int, error) {
	tenants, err := privacy.TenantIDs(ctx, s.st.Read())
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, t := range tenants {
		ids, err := s.recordGroupMovers(ctx, t)
		if err != nil {
			return moved, err
		}
		n, err := s.regroupDevices(ctx, t, ids[:min(len(ids), perTenant)], readsRecord)
		moved += n
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// recordGroupMovers lists, by ID, the tenant's devices whose membership
// of a dynamic group reading the device record no longer matches its rule.
func (s *Service) recordGroupMovers(ctx context.Context, tenantID string) ([]string, error) {
	r := s.st.Read()
	groups, err := r.Groups().Dynamic(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	type ruled struct {
		rule    *rules.Rule
		members map[string]bool
	}
	var selected []ruled
	needFacts, needApps := false, false
	for _, g := range groups {
		rule, err := s.cachedRule(g)
		if err != nil || !readsRecord(rule) {
			continue // a rule that no longer compiles is reported where reports meet it
		}
		ids, err := r.Groups().AllMembers(ctx, tenantID, g.ID)
		if err != nil {
			return nil, err
		}
		members := make(map[string]bool, len(ids))
		for _, id := range ids {
			members[id] = true
		}
		selected = append(selected, ruled{rule, members})
		needFacts = needFacts || readsProjection(rule)
		needApps = needApps || ReadsApps(rule)
	}
	if len(selected) == 0 {
		return nil, nil
	}
	factsByID := map[string][]byte{}
	if needFacts {
		projections, err := r.ManagedDevices().Projections(ctx, tenantID, "")
		if err != nil {
			return nil, err
		}
		for _, p := range projections {
			factsByID[p.DeviceID] = p.Facts
		}
	}
	var apps map[string][]string
	if needApps {
		if apps, err = s.priv.AllAppIdentifiers(ctx, r, tenantID); err != nil {
			return nil, err
		}
	}
	f := Schema.NewFacts()
	defer f.Reset()
	now := s.clock()
	var movers []string
	page := store.DeviceQuery{Limit: 1000}
	for {
		res, err := r.ManagedDevices().Search(ctx, tenantID, page)
		if err != nil {
			return nil, err
		}
		for _, d := range res.Devices {
			ids, known := apps[d.ID]
			if err := FillFacts(f, d, factsByID[d.ID], ids, known); err != nil {
				return nil, err
			}
			if slices.ContainsFunc(selected, func(g ruled) bool { return g.members[d.ID] != (!d.Gone() && g.rule.Eval(f, now).Matches()) }) {
				movers = append(movers, d.ID)
			}
		}
		if res.Next == (store.DeviceCursor{}) {
			return movers, nil
		}
		page.After = res.Next
	}
}

// regroupDevices re-evaluates, for each of the tenant's devices ids (in
// ID order, the order every pass locks them in), the dynamic groups whose
// rule only accepts, a batch of devices per transaction, and returns how
// many moved; their profiles and the policies aimed at their groups follow.
func (s *Service) regroupDevices(ctx context.Context, tenantID string, ids []string, only func(*rules.Rule) bool) (int, error) {
	total := 0
	for start := 0; start < len(ids); start += regroupsPerTx {
		var moved []string
		err := s.st.Tx(ctx, func(q store.Queries) error {
			moved = moved[:0]
			for _, id := range ids[start:min(start+regroupsPerTx, len(ids))] {
				d, err := q.Devices().Lock(ctx, tenantID, id)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if m, err := s.regroup(ctx, q, d, only, nil, nil); err != nil {
					return err
				} else if m {
					moved = append(moved, id)
				}
			}
			if len(moved) == 0 {
				return nil
			}
			return s.reconcileDevices(ctx, q, tenantID, moved)
		})
		if err != nil {
			return total, err
		}
		total += len(moved)
	}
	return total, nil
}

// regroupingCompliance marks a context inside ComplianceChanged.
type regroupingCompliance struct{}

// ComplianceChanged is for the compliance engine to call in the
// transaction that changed a device's compliance summary: the dynamic
// groups whose rule reads compliance take the device in or let it go at
// once, and profiles and the policies aimed at those groups follow. A
// summary that this in turn changes (a policy aimed at such a group) is
// left to the hourly RefreshRecordGroups, so the two cannot chase each
// other.
func (s *Service) ComplianceChanged(ctx context.Context, q store.Queries, tenantID, deviceID string) error {
	if ctx.Value(regroupingCompliance{}) != nil {
		return nil
	}
	ctx = context.WithValue(ctx, regroupingCompliance{}, true)
	d, err := q.Devices().Get(ctx, tenantID, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	moved, err := s.regroup(ctx, q, d, readsCompliance, nil, nil)
	if err != nil || !moved {
		return err
	}
	return s.reconcileDevices(ctx, q, tenantID, []string{d.ID})
}
