package device

import (
	"context"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// HiddenMembership returns the ownership classes whose membership of g is
// not shown to admins, or nil when every member may be. A dynamic group
// whose rule reads installed apps may use them, as no person sees them
// there, but its members list tells which devices hold or lack an app:
// where the policy hides a class's apps, an admin sees that only by
// revealing one device's list with a reason.
func HiddenMembership(ctx context.Context, q store.Queries, g store.Group) (map[string]bool, error) {
	if g.Kind != store.GroupDynamic || len(g.Rule) == 0 {
		return nil, nil
	}
	// A stored rule that no longer compiles may still have members that
	// an app rule chose: it is treated as reading apps.
	if r, err := CompileRule(g.Rule); err == nil && !ReadsApps(r) {
		return nil, nil
	}
	settings, err := privacy.ViewSettings(ctx, q, g.TenantID)
	if err != nil {
		return nil, err
	}
	var hidden map[string]bool
	for _, o := range privacy.Ownerships {
		if settings.Policy.Mode(o, privacy.InstalledApps) != privacy.Show {
			if hidden == nil {
				hidden = map[string]bool{}
			}
			hidden[string(o)] = true
		}
	}
	return hidden, nil
}
