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
	return groupView(g), nil
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
	return listOf(gs, page.Limit, groupView, func(g store.Group) string { return g.ID }), nil
}

func (s *Server) getGroup(c *Call) (any, error) {
	g, err := s.st.Read().Groups().Get(c.R.Context(), c.Tenant, c.Path("group"))
	if err != nil {
		return nil, notFoundAs(err, "group")
	}
	return groupView(g), nil
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
	return groupView(g), nil
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
	if _, err := s.st.Read().Groups().Get(c.R.Context(), c.Tenant, c.Path("group")); err != nil {
		return nil, notFoundAs(err, "group")
	}
	ids, err := s.st.Read().Groups().Members(c.R.Context(), c.Tenant, c.Path("group"), page)
	if err != nil {
		return nil, err
	}
	return listOf(ids, page.Limit, func(id string) string { return id }, func(id string) string { return id }), nil
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
