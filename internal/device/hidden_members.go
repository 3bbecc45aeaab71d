package device

import (
	"context"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// appsField is the inventory field an app rule reads.
const appsField = "apps.installed"

// HiddenMembers says which members of a group whose rule reads installed
// apps are not shown to admins. The rule may use every device's apps, as
// no person sees them there, but its members list tells which devices
// hold or lack an app: where a device's apps are hidden, an admin sees
// that only by revealing its list with a reason.
//
// A device's apps are hidden when the tenant's policy hides them for its
// ownership class (a narrowing applies at once), or when its list was
// stored hidden: the stored flag is what the device's own policy
// (privacy.EffectivePolicy) said when the list was collected, so a
// widening on a personal device shows its apps only once its owner
// accepted the notice and the device reported again, as the device's
// inventory view does. The flag is read for a whole page or group in one
// statement, where the effective policy would take a consent read per
// device.
type HiddenMembers struct {
	classes map[string]bool // ownership classes whose apps the tenant's policy hides
}

// HiddenMembership returns what is hidden of g's members, or nil when
// every member may be shown.
func HiddenMembership(ctx context.Context, q store.Queries, g store.Group) (*HiddenMembers, error) {
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
	h := &HiddenMembers{classes: map[string]bool{}}
	for _, o := range privacy.Ownerships {
		if settings.Policy.Mode(o, privacy.InstalledApps) != privacy.Show {
			h.classes[string(o)] = true
		}
	}
	return h, nil
}

// Of returns the IDs among devices, members of the group, whose
// membership is not shown. Nil h hides none.
func (h *HiddenMembers) Of(ctx context.Context, q store.Queries, tenantID string, devices []store.Device) (map[string]bool, error) {
	out := map[string]bool{}
	if h == nil {
		return out, nil
	}
	var others []string
	for _, d := range devices {
		if h.classes[d.Ownership] {
			out[d.ID] = true
		} else {
			others = append(others, d.ID)
		}
	}
	if len(others) == 0 {
		return out, nil
	}
	stored, err := q.Inventory().HiddenOf(ctx, tenantID, appsField, others)
	if err != nil {
		return nil, err
	}
	for id := range stored {
		out[id] = true
	}
	return out, nil
}

// Count splits the group's members into those shown and those left out.
func (h *HiddenMembers) Count(ctx context.Context, q store.Queries, g store.Group) (shown, leftOut int, err error) {
	if h == nil {
		return g.Members, 0, nil
	}
	classes, err := q.Groups().MemberClasses(ctx, g.TenantID, g.ID)
	if err != nil {
		return 0, 0, err
	}
	stored, err := q.Groups().HiddenMemberClasses(ctx, g.TenantID, g.ID, appsField)
	if err != nil {
		return 0, 0, err
	}
	for o, n := range classes {
		hidden := n
		if !h.classes[o] {
			hidden = min(stored[o], n)
		}
		leftOut += hidden
		shown += n - hidden
	}
	return shown, leftOut, nil
}
