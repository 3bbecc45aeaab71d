package device

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/rules"
	"github.com/steward-mdm/steward/internal/store"
)

// maxDynamicGroups bounds the rules each inventory report evaluates.
const maxDynamicGroups = 200

// GroupInput creates or changes a group.
type GroupInput struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Kind is static or dynamic; it cannot change after creation.
	Kind string `json:"kind"`
	// Rule is the dynamic group's rule (see the rules package).
	Rule []byte `json:"rule,omitempty"`
}

// CompileRule compiles a group rule against the device schema, with errors
// an admin can act on (400, or 422 for a rule that can never match).
func CompileRule(raw []byte) (*rules.Rule, error) {
	r, err := rules.Compile(raw, Schema)
	if errors.Is(err, rules.ErrUnsatisfiable) {
		return nil, apperr.Invalid("the rule can never match a device: %v", err)
	}
	if err != nil {
		return nil, apperr.Invalid("rule: %v", err)
	}
	return r, nil
}

func (in GroupInput) validate(creating bool) (*rules.Rule, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return nil, apperr.Invalid("a group needs a name of 1 to 100 characters")
	}
	if utf8.RuneCountInString(in.Description) > 1000 {
		return nil, apperr.Invalid("the description is limited to 1000 characters")
	}
	if creating && in.Kind != store.GroupStatic && in.Kind != store.GroupDynamic {
		return nil, apperr.Invalid("kind must be static or dynamic")
	}
	switch {
	case in.Kind == store.GroupStatic && len(in.Rule) > 0:
		return nil, apperr.Invalid("a static group has no rule; list its devices instead")
	case in.Kind == store.GroupDynamic && len(in.Rule) == 0:
		return nil, apperr.Invalid("a dynamic group needs a rule")
	case in.Kind == store.GroupDynamic:
		return CompileRule(in.Rule)
	}
	return nil, nil
}

// CreateGroup creates a group; a dynamic one is filled at once.
func (s *Service) CreateGroup(ctx context.Context, tenantID string, in GroupInput, actor iam.Actor) (store.Group, error) {
	rule, err := in.validate(true)
	if err != nil {
		return store.Group{}, err
	}
	now := s.clock()
	g := store.Group{ID: store.NewID(), TenantID: tenantID, Name: strings.TrimSpace(in.Name), Description: in.Description,
		Kind: in.Kind, CreatedBy: actor.Ref(), CreatedAt: now, UpdatedAt: now}
	if rule != nil {
		if g.Rule, err = rule.MarshalJSON(); err != nil {
			return store.Group{}, err
		}
	}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		if g.Kind == store.GroupDynamic {
			// Every inventory report evaluates every dynamic group of its
			// tenant inside the device's transaction: bounded.
			if dyn, err := q.Groups().Dynamic(ctx, tenantID); err != nil {
				return err
			} else if len(dyn) >= maxDynamicGroups {
				return apperr.Conflict("a tenant has at most %d dynamic groups", maxDynamicGroups)
			}
		}
		if err := q.Groups().Create(ctx, g); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("a group named %q exists already", g.Name)
			}
			return err
		}
		e := actor.Entry(tenantID, "device.group.create", "group", g.ID, audit.OutcomeSuccess)
		e.Details = map[string]any{"kind": g.Kind}
		return audit.Append(ctx, q, e)
	})
	if err != nil {
		return store.Group{}, err
	}
	if rule != nil {
		if _, err := s.RefreshGroup(ctx, tenantID, g.ID); err != nil {
			return store.Group{}, err
		}
	}
	return s.st.Read().Groups().Get(ctx, tenantID, g.ID)
}

// UpdateGroup renames a group or changes its rule (re-evaluated at once).
func (s *Service) UpdateGroup(ctx context.Context, tenantID, groupID string, in GroupInput, actor iam.Actor) (store.Group, error) {
	g, err := s.group(ctx, s.st.Read(), tenantID, groupID)
	if err != nil {
		return store.Group{}, err
	}
	if in.Kind != "" && in.Kind != g.Kind {
		return store.Group{}, apperr.Invalid("a group's kind cannot change; create a new group")
	}
	in.Kind = g.Kind
	rule, err := in.validate(false)
	if err != nil {
		return store.Group{}, err
	}
	g.Name, g.Description, g.UpdatedAt = strings.TrimSpace(in.Name), in.Description, s.clock()
	if rule != nil {
		if g.Rule, err = rule.MarshalJSON(); err != nil {
			return store.Group{}, err
		}
	}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		if err := q.Groups().Update(ctx, g); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("a group named %q exists already", g.Name)
			}
			return err
		}
		return audit.Append(ctx, q, actor.Entry(tenantID, "device.group.update", "group", g.ID, audit.OutcomeSuccess))
	})
	if err != nil {
		return store.Group{}, err
	}
	if rule != nil {
		if _, err := s.RefreshGroup(ctx, tenantID, g.ID); err != nil {
			return store.Group{}, err
		}
	}
	return s.st.Read().Groups().Get(ctx, tenantID, g.ID)
}

// DeleteGroup deletes a group; its profiles leave its former members. A
// group that limits a role assignment cannot be deleted until the
// assignment is changed: the admins holding it would lose all access.
func (s *Service) DeleteGroup(ctx context.Context, tenantID, groupID string, actor iam.Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		if _, err := s.group(ctx, q, tenantID, groupID); err != nil {
			return err
		}
		page := store.Page{Limit: 1000}
		for {
			as, err := q.Assignments().ListForTenant(ctx, tenantID, page)
			if err != nil {
				return err
			}
			for _, a := range as {
				if slices.Contains(a.Groups, groupID) {
					return apperr.Conflict("assignment %s limits a role to this group; remove it first", a.ID)
				}
			}
			if len(as) < page.Limit {
				break
			}
			page.After = as[len(as)-1].ID
		}
		members, err := q.Groups().AllMembers(ctx, tenantID, groupID)
		if err != nil {
			return err
		}
		if err := q.Groups().Delete(ctx, tenantID, groupID); err != nil {
			return err
		}
		if err := s.reconcileDevices(ctx, q, tenantID, members); err != nil {
			return err
		}
		return audit.Append(ctx, q, actor.Entry(tenantID, "device.group.delete", "group", groupID, audit.OutcomeSuccess))
	})
}

// ChangeMembers adds and removes devices of a static group.
func (s *Service) ChangeMembers(ctx context.Context, tenantID, groupID string, add, remove []string, actor iam.Actor) (added, removed []string, err error) {
	if len(add)+len(remove) > 10000 {
		return nil, nil, apperr.Invalid("change at most 10000 members per request")
	}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		g, err := s.group(ctx, q, tenantID, groupID)
		if err != nil {
			return err
		}
		if g.Kind != store.GroupStatic {
			return apperr.Invalid("a dynamic group's members follow its rule; change the rule instead")
		}
		for _, id := range add {
			if _, err := q.Devices().Get(ctx, tenantID, id); errors.Is(err, store.ErrNotFound) {
				return apperr.NotFound("device")
			} else if err != nil {
				return err
			}
		}
		if added, err = q.Groups().AddMembers(ctx, tenantID, groupID, add, s.clock()); err != nil {
			return err
		}
		if removed, err = q.Groups().RemoveMembers(ctx, tenantID, groupID, remove); err != nil {
			return err
		}
		if err := s.reconcileDevices(ctx, q, tenantID, append(slices.Clone(added), removed...)); err != nil {
			return err
		}
		e := actor.Entry(tenantID, "device.group.members", "group", groupID, audit.OutcomeSuccess)
		e.Details = map[string]any{"added": len(added), "removed": len(removed)}
		return audit.Append(ctx, q, e)
	})
	return added, removed, err
}

func (s *Service) group(ctx context.Context, q store.Queries, tenantID, groupID string) (store.Group, error) {
	g, err := q.Groups().Get(ctx, tenantID, groupID)
	if errors.Is(err, store.ErrNotFound) {
		return g, apperr.NotFound("group")
	}
	return g, err
}

// RefreshResult says what re-evaluating a dynamic group changed.
type RefreshResult struct {
	Evaluated int           `json:"evaluated"`
	Added     int           `json:"added"`
	Removed   int           `json:"removed"`
	Took      time.Duration `json:"-"`
}

// RefreshGroup re-evaluates a dynamic group's rule over every device of the
// tenant still under management and updates its members, then the
// profiles of the devices that joined or left.
func (s *Service) RefreshGroup(ctx context.Context, tenantID, groupID string) (RefreshResult, error) {
	start := time.Now()
	var res RefreshResult
	err := s.st.Tx(ctx, func(q store.Queries) error {
		res = RefreshResult{}
		g, err := s.group(ctx, q, tenantID, groupID)
		if err != nil {
			return err
		}
		if g.Kind != store.GroupDynamic {
			return apperr.Invalid("only dynamic groups are evaluated")
		}
		rule, err := CompileRule(g.Rule)
		if err != nil {
			return err
		}
		matched, evaluated, err := s.matching(ctx, q, tenantID, rule)
		if err != nil {
			return err
		}
		res.Evaluated = evaluated
		current, err := q.Groups().AllMembers(ctx, tenantID, groupID)
		if err != nil {
			return err
		}
		var join, leave []string
		for _, id := range current {
			if !matched[id] {
				leave = append(leave, id)
			}
			delete(matched, id)
		}
		for id := range matched {
			join = append(join, id)
		}
		slices.Sort(join)
		added, err := q.Groups().AddMembers(ctx, tenantID, groupID, join, s.clock())
		if err != nil {
			return err
		}
		removed, err := q.Groups().RemoveMembers(ctx, tenantID, groupID, leave)
		if err != nil {
			return err
		}
		res.Added, res.Removed = len(added), len(removed)
		return s.reconcileDevices(ctx, q, tenantID, append(added, removed...))
	})
	res.Took = time.Since(start)
	return res, err
}

// matching evaluates rule over the tenant's managed devices.
func (s *Service) matching(ctx context.Context, q store.Queries, tenantID string, rule *rules.Rule) (map[string]bool, int, error) {
	projections, err := q.ManagedDevices().Projections(ctx, tenantID, "")
	if err != nil {
		return nil, 0, err
	}
	factsByID := make(map[string][]byte, len(projections))
	for _, p := range projections {
		factsByID[p.DeviceID] = p.Facts
	}
	var apps map[string][]string
	if ReadsApps(rule) {
		if apps, err = s.priv.AllAppIdentifiers(ctx, q, tenantID); err != nil {
			return nil, 0, err
		}
	}
	f := Schema.NewFacts()
	now := s.clock()
	matched := map[string]bool{}
	evaluated := 0
	page := store.DeviceQuery{Limit: 1000}
	for {
		res, err := q.ManagedDevices().Search(ctx, tenantID, page)
		if err != nil {
			return nil, 0, err
		}
		for _, d := range res.Devices {
			if d.Gone() {
				continue
			}
			ids, known := apps[d.ID]
			if err := FillFacts(f, d, factsByID[d.ID], ids, known); err != nil {
				return nil, 0, err
			}
			evaluated++
			if rule.Eval(f, now).Matches() {
				matched[d.ID] = true
			}
		}
		if res.Next == (store.DeviceCursor{}) {
			break
		}
		page.After = res.Next
	}
	f.Reset()
	return matched, evaluated, nil
}

// deviceChanged re-evaluates the tenant's dynamic groups for one device
// whose inventory changed, inside q, and reports whether its groups moved.
func (s *Service) deviceChanged(ctx context.Context, q store.Queries, d store.Device, facts []byte, current []store.InventoryValue) (bool, error) {
	return s.regroup(ctx, q, d, nil, facts, current)
}

// regroup re-evaluates, for device d inside q, the tenant's dynamic groups
// whose rule only accepts (nil: all of them), and reports whether the
// device moved. facts is its projection and current its inventory when the
// caller has them; nil reads what the rules need.
func (s *Service) regroup(ctx context.Context, q store.Queries, d store.Device, only func(*rules.Rule) bool,
	facts []byte, current []store.InventoryValue) (bool, error) {
	groups, err := q.Groups().Dynamic(ctx, d.TenantID)
	if err != nil || len(groups) == 0 {
		return false, err
	}
	type compiled struct {
		group store.Group
		rule  *rules.Rule
	}
	var ruled []compiled
	readsApps, readsInventory := false, false
	for _, g := range groups {
		rule, err := s.cachedRule(g)
		if err != nil {
			s.log.Warn("a dynamic group's stored rule no longer compiles", "group", g.ID, "error", err.Error())
			continue
		}
		if only != nil && !only(rule) {
			continue
		}
		ruled = append(ruled, compiled{g, rule})
		readsApps = readsApps || ReadsApps(rule)
		readsInventory = readsInventory || readsProjection(rule)
	}
	if len(ruled) == 0 {
		return false, nil
	}
	member, err := q.Groups().GroupsOf(ctx, d.TenantID, d.ID)
	if err != nil {
		return false, err
	}
	if facts == nil && readsInventory {
		// Built as the gate's hook and enrolment build it.
		if current == nil {
			if current, err = q.Inventory().Current(ctx, d.TenantID, d.ID); err != nil {
				return false, err
			}
		}
		p, err := Project(d, current)
		if err != nil {
			return false, err
		}
		facts = p.Facts
	}
	var apps []string
	var known bool
	if readsApps {
		if apps, known, err = s.priv.AppIdentifiers(ctx, q, d.TenantID, d.ID, current); err != nil {
			return false, err
		}
	}
	f := Schema.NewFacts()
	defer f.Reset()
	if err := FillFacts(f, d, facts, apps, known); err != nil {
		return false, err
	}
	now := s.clock()
	changed := false
	for _, c := range ruled {
		g, rule := c.group, c.rule
		in := slices.Contains(member, g.ID)
		match := !d.Gone() && rule.Eval(f, now).Matches()
		switch {
		case match && !in:
			_, err = q.Groups().AddMembers(ctx, d.TenantID, g.ID, []string{d.ID}, now)
			changed = true
		case !match && in:
			_, err = q.Groups().RemoveMembers(ctx, d.TenantID, g.ID, []string{d.ID})
			changed = true
		}
		if err != nil {
			return false, err
		}
	}
	return changed, nil
}

type compiledRule struct {
	updated time.Time
	rule    *rules.Rule
}

// cachedRule compiles a group's rule once per version of the group.
func (s *Service) cachedRule(g store.Group) (*rules.Rule, error) {
	if c, ok := s.rules.Load(g.ID); ok && c.(compiledRule).updated.Equal(g.UpdatedAt) {
		return c.(compiledRule).rule, nil
	}
	r, err := CompileRule(g.Rule)
	if err != nil {
		return nil, err
	}
	s.rules.Store(g.ID, compiledRule{updated: g.UpdatedAt, rule: r})
	return r, nil
}
