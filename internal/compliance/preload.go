package compliance

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/steward-mdm/steward/internal/store"
)

// preloaded is what a tenant-wide evaluation reads once for all devices
// instead of once per device. It only tells which devices need evaluating:
// reports and ladder steps change them while the pass runs.
type preloaded struct {
	facts     map[string][]byte // device ID -> projection facts JSON
	standings map[string][]store.DeviceCompliance
	apps      *preloadedApps      // nil when no policy reads apps
	groups    map[string][]string // device ID -> the targeted groups it is in
}

func (e *Engine) preload(ctx context.Context, q store.Queries, tenantID string, policies []Policy, blocked []string) (*preloaded, error) {
	projections, err := q.ManagedDevices().Projections(ctx, tenantID, store.DeviceEnrolled)
	if err != nil {
		return nil, err
	}
	pre := &preloaded{facts: make(map[string][]byte, len(projections)), standings: map[string][]store.DeviceCompliance{}}
	for _, p := range projections {
		pre.facts[p.DeviceID] = p.Facts
	}
	ps, err := q.Compliance().ListPolicies(ctx, tenantID, store.Page{Limit: 1000})
	if err != nil {
		return nil, err
	}
	for _, p := range ps { // disabled ones too: their standings are cleared
		standings, err := q.Compliance().ForPolicy(ctx, tenantID, p.ID)
		if err != nil {
			return nil, err
		}
		for _, st := range standings {
			pre.standings[st.DeviceID] = append(pre.standings[st.DeviceID], st)
		}
	}
	pre.groups = map[string][]string{}
	for _, p := range policies {
		if p.GroupID == "" {
			continue
		}
		members, err := q.Groups().AllMembers(ctx, tenantID, p.GroupID)
		if err != nil {
			return nil, err
		}
		for _, id := range members {
			pre.groups[id] = append(pre.groups[id], p.GroupID)
		}
	}
	if slices.ContainsFunc(policies, func(p Policy) bool { return p.Rules.needsApps(blocked) }) {
		if pre.apps, err = e.preloadApps(ctx, q, tenantID); err != nil {
			return nil, err
		}
	}
	return pre, nil
}

// factValues decodes a projection's facts.
func factValues(raw []byte) map[string]json.RawMessage {
	values := map[string]json.RawMessage{}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &values)
	}
	return values
}

// evaluatePage evaluates a page of a tenant-wide pass. What the pass read
// at its start only picks the devices with something to write: a report
// or ladder step since may have changed them, and writing back an outcome
// worked out from the earlier read would undo it. Those are locked, as
// EvaluateDevice locks a device, and evaluated from what they hold now; a
// device the earlier read finds nothing to change in is left alone, as
// whatever changed it since evaluated it, or (a ladder step) changed
// nothing this evaluation would.
func (e *Engine) evaluatePage(ctx context.Context, q store.Queries, tenantID string, page []store.Device, pre *preloaded) error {
	policies, blocked, err := e.tenantPolicies(ctx, q, tenantID)
	if err != nil {
		return err
	}
	var changing []store.Device
	for _, d := range page {
		pl, err := e.planEvaluation(ctx, q, d, nil, policies, blocked, pre)
		if err != nil {
			return err
		}
		if !pl.empty() {
			changing = append(changing, d)
		}
	}
	if len(changing) == 0 {
		return nil
	}
	locked, err := lockEnrolled(ctx, q, changing)
	if err != nil {
		return err
	}
	// Read again after the locks, as EvaluateDevice reads them.
	if policies, blocked, err = e.tenantPolicies(ctx, q, tenantID); err != nil {
		return err
	}
	for _, d := range locked {
		if err := e.evaluate(ctx, q, d, nil, policies, blocked, nil); err != nil {
			return err
		}
	}
	return nil
}

// lockEnrolled locks devices, in ID order as every multi-device lock is
// taken, and returns their current rows that are still enrolled.
func lockEnrolled(ctx context.Context, q store.Queries, devices []store.Device) ([]store.Device, error) {
	out := make([]store.Device, 0, len(devices))
	for _, d := range devices {
		cur, err := q.Devices().Lock(ctx, d.TenantID, d.ID)
		if err != nil {
			return nil, err
		}
		if !cur.Gone() && cur.State == store.DeviceEnrolled {
			out = append(out, cur)
		}
	}
	return out, nil
}
