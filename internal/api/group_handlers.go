package api

import (
	"encoding/json"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/store"
)

type GroupRequest struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Kind        string          `json:"kind,omitempty"` // static or dynamic; fixed at creation
	Rule        json.RawMessage `json:"rule,omitempty"`
}

type GroupView struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Kind        string          `json:"kind"`
	Rule        json.RawMessage `json:"rule,omitempty"`
	// RuleText is the rule in words, for people.
	RuleText  string    `json:"rule_text,omitempty"`
	Members   int       `json:"members"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// LeftOut counts the members not counted in Members, Note says why.
	LeftOut int    `json:"left_out,omitempty"`
	Note    string `json:"note,omitempty"`
}

// GroupMembersView is a page of a group's device IDs; LeftOut counts the
// members of the page not listed, Note says why.
type GroupMembersView struct {
	Items      []string `json:"items"`
	NextCursor string   `json:"next_cursor,omitempty"`
	LeftOut    int      `json:"left_out,omitempty"`
	Note       string   `json:"note,omitempty"`
}

// hiddenMembersNote says why members are left out (device.HiddenMembers).
const hiddenMembersNote = "Devices whose installed apps are hidden by the privacy policy that applies to them are left out, " +
	"as this group's rule reads apps (on a personal device, a wider policy applies once its owner accepted it): " +
	"reveal a device's app list, with a reason, to see it."

// groupViewFor is groupView with the members whose membership the privacy
// policy hides counted apart.
func (s *Server) groupViewFor(c *Call, g store.Group) (GroupView, error) {
	v := groupView(g)
	q := s.st.Read()
	hidden, err := device.HiddenMembership(c.R.Context(), q, g)
	if err != nil || hidden == nil {
		return v, err
	}
	if v.Members, v.LeftOut, err = hidden.Count(c.R.Context(), q, g); err != nil {
		return v, err
	}
	if v.LeftOut > 0 {
		v.Note = hiddenMembersNote
	}
	return v, nil
}

func groupView(g store.Group) GroupView {
	v := GroupView{ID: g.ID, Name: g.Name, Description: g.Description, Kind: g.Kind, Members: g.Members, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt}
	if len(g.Rule) > 0 {
		v.Rule = json.RawMessage(g.Rule)
		if r, err := device.CompileRule(g.Rule); err == nil {
			v.RuleText = r.String()
		}
	}
	return v
}

type MembersRequest struct {
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

type MembersView struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

func (in GroupRequest) input() device.GroupInput {
	return device.GroupInput{Name: in.Name, Description: in.Description, Kind: in.Kind, Rule: in.Rule}
}

// mayReadApps: a rule on the (encrypted) app list tells its author which
// devices hold an app, so it needs the right to reveal personal data.
func (c *Call) mayReadApps(rule json.RawMessage) error {
	if len(rule) == 0 || c.Perms.Has("privacy.reveal") {
		return nil
	}
	if r, err := device.CompileRule(rule); err == nil && device.ReadsApps(r) {
		return apperr.Forbidden("a rule on installed apps needs the privacy.reveal permission")
	}
	return nil
}

func (s *Server) createGroup(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	var in GroupRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if err := c.mayReadApps(in.Rule); err != nil {
		return nil, err
	}
	g, err := d.CreateGroup(c.R.Context(), c.Tenant, in.input(), c.Actor)
	if err != nil {
		return nil, err
	}
	return s.groupViewFor(c, g)
}

func (s *Server) listGroups(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	gs, err := s.st.Read().Groups().List(c.R.Context(), c.Tenant, page)
	if err != nil {
		return nil, err
	}
	out := List[GroupView]{Items: make([]GroupView, 0, len(gs))}
	for _, g := range gs {
		v, err := s.groupViewFor(c, g)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, v)
	}
	if len(gs) == page.Limit && page.Limit > 0 {
		out.NextCursor = gs[len(gs)-1].ID
	}
	return out, nil
}

func (s *Server) getGroup(c *Call) (any, error) {
	g, err := s.st.Read().Groups().Get(c.R.Context(), c.Tenant, c.Path("group"))
	if err != nil {
		return nil, notFoundAs(err, "group")
	}
	return s.groupViewFor(c, g)
}

func (s *Server) updateGroup(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	var in GroupRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if err := c.mayReadApps(in.Rule); err != nil {
		return nil, err
	}
	g, err := d.UpdateGroup(c.R.Context(), c.Tenant, c.Path("group"), in.input(), c.Actor)
	if err != nil {
		return nil, err
	}
	return s.groupViewFor(c, g)
}

func (s *Server) deleteGroup(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	return nil, d.DeleteGroup(c.R.Context(), c.Tenant, c.Path("group"), c.Actor)
}

func (s *Server) groupMembers(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	ctx, q := c.R.Context(), s.st.Read()
	g, err := q.Groups().Get(ctx, c.Tenant, c.Path("group"))
	if err != nil {
		return nil, notFoundAs(err, "group")
	}
	ids, err := q.Groups().Members(ctx, c.Tenant, g.ID, page)
	if err != nil {
		return nil, err
	}
	hidden, err := device.HiddenMembership(ctx, q, g)
	if err != nil {
		return nil, err
	}
	out := GroupMembersView{Items: make([]string, 0, len(ids))}
	if len(ids) == page.Limit && page.Limit > 0 {
		out.NextCursor = ids[len(ids)-1] // the page read, whatever of it is shown
	}
	var left map[string]bool
	if hidden != nil {
		devices, err := q.Devices().GetMany(ctx, c.Tenant, ids)
		if err != nil {
			return nil, err
		}
		page := make([]store.Device, 0, len(devices))
		for _, d := range devices {
			page = append(page, d)
		}
		if left, err = hidden.Of(ctx, q, c.Tenant, page); err != nil {
			return nil, err
		}
		for _, id := range ids {
			if _, known := devices[id]; !known {
				left[id] = true // gone since it was chosen: nothing to show
			}
		}
	}
	for _, id := range ids {
		if left[id] {
			out.LeftOut++
			continue
		}
		out.Items = append(out.Items, id)
	}
	if out.LeftOut > 0 {
		out.Note = hiddenMembersNote
	}
	return out, nil
}

func (s *Server) changeMembers(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	var in MembersRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	added, removed, err := d.ChangeMembers(c.R.Context(), c.Tenant, c.Path("group"), in.Add, in.Remove, c.Actor)
	if err != nil {
		return nil, err
	}
	return MembersView{Added: nonNil(added), Removed: nonNil(removed)}, nil
}

func (s *Server) refreshGroup(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	return d.RefreshGroup(c.R.Context(), c.Tenant, c.Path("group"))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
