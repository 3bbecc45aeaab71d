package compliance

import (
	"context"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// App rules are judged only on app lists an admin without a reveal may
// see: a device's standings are shown to every admin who reads it, so an
// outcome judged on a hidden list (a forbidden app found) would tell them
// what the mask keeps back. Hidden is what the list was stored under (its
// own policy when collected: a widening waits for a personal device's
// owner) or what the tenant's policy says now (a narrowing applies at
// once), as the software report decides.

// appsShownNow reports whether the tenant's privacy policy shows admins
// the app lists of d's ownership class.
func appsShownNow(settings privacy.Settings, d store.Device) bool {
	return settings.Policy.Mode(privacy.Ownership(d.Ownership), privacy.InstalledApps) == privacy.Show
}

// deviceApps returns d's installed bundle IDs for its app rules; hidden
// when its list is kept from admins. current is its inventory when the
// caller has it.
func (e *Engine) deviceApps(ctx context.Context, q store.Queries, d store.Device, current []store.InventoryValue) (apps map[string]bool, hidden bool, err error) {
	settings, err := privacy.ViewSettings(ctx, q, d.TenantID)
	if err != nil {
		return nil, false, err
	}
	if !appsShownNow(settings, d) {
		return nil, true, nil
	}
	if current == nil {
		if current, err = q.Inventory().CurrentOf(ctx, d.TenantID, d.ID, []string{"apps.installed"}); err != nil {
			return nil, false, err
		}
	}
	for _, v := range current {
		if v.Field == "apps.installed" && v.Hidden {
			return nil, true, nil
		}
	}
	ids, known, err := e.priv.AppIdentifiers(ctx, q, d.TenantID, d.ID, current)
	if err != nil || !known {
		return nil, false, err
	}
	return appSet(ids), false, nil
}

// preloadedApps is deviceApps for every device of a tenant, read once.
type preloadedApps struct {
	settings     privacy.Settings
	shown        map[string][]string // device ID -> bundle IDs of lists stored shown
	storedHidden map[string]bool
}

func (e *Engine) preloadApps(ctx context.Context, q store.Queries, tenantID string) (*preloadedApps, error) {
	settings, err := privacy.ViewSettings(ctx, q, tenantID)
	if err != nil {
		return nil, err
	}
	shown, storedHidden, err := e.priv.ShownAppIdentifiers(ctx, q, tenantID)
	if err != nil {
		return nil, err
	}
	return &preloadedApps{settings: settings, shown: shown, storedHidden: storedHidden}, nil
}

// of is deviceApps for d from what was preloaded.
func (pa *preloadedApps) of(d store.Device) (apps map[string]bool, hidden bool) {
	if !appsShownNow(pa.settings, d) || pa.storedHidden[d.ID] {
		return nil, true
	}
	ids, known := pa.shown[d.ID]
	if !known {
		return nil, false
	}
	return appSet(ids), false
}

func appSet(ids []string) map[string]bool {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set
}
