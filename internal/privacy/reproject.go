package privacy

import (
	"context"
	"maps"
	"slices"

	"github.com/steward-mdm/steward/internal/store"
)

// reprojectPage is how many devices a re-projection reads at a time.
const reprojectPage = 500

// reprojectClasses runs the gate's Changed hook for every device of classes,
// a page at a time, after a narrowing deleted or hid some of their values:
// what device management derived from them (projection, groups,
// compliance) follows at once, not at each device's next report, which a
// device that stopped reporting never sends.
func (s *Service) reprojectClasses(ctx context.Context, q store.Queries, tenantID string, settings Settings, classes []Ownership) error {
	if s.gate.Changed == nil {
		return nil
	}
	for _, o := range classes {
		page := store.DeviceQuery{Ownership: string(o), Limit: reprojectPage}
		for {
			res, err := q.ManagedDevices().Search(ctx, tenantID, page)
			if err != nil {
				return err
			}
			for _, d := range res.Devices {
				if err := s.reproject(ctx, q, settings, d); err != nil {
					return err
				}
			}
			if res.Next == (store.DeviceCursor{}) {
				break
			}
			page.After = res.Next
		}
	}
	return nil
}

// reprojectDevices runs the gate's Changed hook for the devices, by tenant,
// whose expired values a purge just removed.
func (s *Service) reprojectDevices(ctx context.Context, q store.Queries, byTenant map[string][]string) error {
	if s.gate.Changed == nil {
		return nil
	}
	for _, tenantID := range slices.Sorted(maps.Keys(byTenant)) {
		// Under the settings' shared lock, as the gate reads them: a
		// narrowing committed meanwhile cannot be overwritten with a
		// projection made under the policy before it.
		settings, err := loadSettingsShared(ctx, q, tenantID, s.clock())
		if err != nil {
			return err
		}
		ids := byTenant[tenantID]
		devices, err := q.Devices().GetMany(ctx, tenantID, ids)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if d, ok := devices[id]; ok {
				if err := s.reproject(ctx, q, settings, d); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// reproject runs the gate's Changed hook for d with its current values, as
// its policy now lets admins see them, and no changed field: no report
// brought them. A device that left is passed over, as the gate passes over
// what it reports.
func (s *Service) reproject(ctx context.Context, q store.Queries, settings Settings, d store.Device) error {
	if d.Gone() {
		return nil
	}
	policy, err := EffectivePolicy(ctx, q, settings, d)
	if err != nil {
		return err
	}
	current, err := q.Inventory().Current(ctx, d.TenantID, d.ID)
	if err != nil {
		return err
	}
	return s.gate.Changed(ctx, q, d, shownUnder(policy, d, current), nil)
}

// shownUnder returns current as policy lets admins see it: a value of a
// category it drops is left out, and one of a category it hides is marked
// hidden whatever flag it was stored with, so that nothing derived from it
// (the projection, group and compliance rules) shows what the policy no
// longer does. current is not modified.
func shownUnder(policy Policy, d store.Device, current []store.InventoryValue) []store.InventoryValue {
	o := Ownership(d.Ownership)
	out := make([]store.InventoryValue, 0, len(current))
	for _, v := range current {
		switch policy.Mode(o, Category(v.Category)) {
		case Drop:
			continue
		case Hide:
			v.Hidden = true
		}
		out = append(out, v)
	}
	return out
}

// appendClass appends o to classes unless it is there already.
func appendClass(classes []Ownership, o Ownership) []Ownership {
	if slices.Contains(classes, o) {
		return classes
	}
	return append(classes, o)
}
