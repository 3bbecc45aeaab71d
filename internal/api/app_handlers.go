package api

import (
	"net/http"
	"time"

	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/store"
)

const tagApps = "App catalogue"

func (s *Server) appRoutes() []Route {
	const t = "/api/v1/tenants/{tenant}"
	return []Route{
		{Method: "POST", Path: t + "/apps", Access: needs("device.manage"), Tag: tagApps, Summary: "Approve or block an app; blocked apps are forbidden by every compliance policy", In: device.AppInput{}, Out: AppView{}, Status: http.StatusCreated, Handle: s.createApp},
		{Method: "GET", Path: t + "/apps", Access: needs("device.read"), Tag: tagApps, Summary: "The app catalogue", Query: pageQuery, Out: List[AppView]{}, Handle: s.listApps},
		{Method: "GET", Path: t + "/apps/{app}", Access: needs("device.read"), Tag: tagApps, Summary: "An app and its group assignments", Out: AppView{}, Handle: s.getApp},
		{Method: "DELETE", Path: t + "/apps/{app}", Access: needs("device.manage"), Tag: tagApps, Summary: "Remove an app from the catalogue", Handle: s.deleteApp},
		{Method: "PUT", Path: t + "/apps/{app}/groups/{group}", Access: needs("device.manage"), Tag: tagApps, Summary: "Assign an approved app to a group as required (installed) or available", In: AppAssignmentRequest{}, Handle: s.assignApp},
		{Method: "DELETE", Path: t + "/apps/{app}/groups/{group}", Access: needs("device.manage"), Tag: tagApps, Summary: "Stop assigning an app to a group", Handle: s.unassignApp},
	}
}

type AppView struct {
	ID          string            `json:"id"`
	Identifier  string            `json:"identifier"`
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	StoreID     int64             `json:"store_id,omitempty"`
	ManifestURL string            `json:"manifest_url,omitempty"`
	Groups      map[string]string `json:"groups,omitempty"` // group ID -> mode
	CreatedAt   time.Time         `json:"created_at"`
}

func appView(a store.CatalogueApp) AppView {
	return AppView{ID: a.ID, Identifier: a.Identifier, Name: a.Name, Kind: a.Kind, StoreID: a.StoreID, ManifestURL: a.ManifestURL, CreatedAt: a.CreatedAt}
}

type AppAssignmentRequest struct {
	Mode string `json:"mode"` // required or available
}

func (s *Server) createApp(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	var in device.AppInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	a, err := d.CreateApp(c.R.Context(), c.Tenant, in, c.Actor)
	if err != nil {
		return nil, err
	}
	if a.Kind == store.AppBlocked {
		if e, err := s.complianceSvc(); err == nil {
			if _, err := e.EvaluateTenant(c.R.Context(), c.Tenant, nil); err != nil {
				return nil, err
			}
		}
	}
	return appView(a), nil
}

func (s *Server) listApps(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	as, err := s.st.Read().Apps().List(c.R.Context(), c.Tenant, page)
	if err != nil {
		return nil, err
	}
	return listOf(as, page.Limit, appView, func(a store.CatalogueApp) string { return a.ID }), nil
}

func (s *Server) getApp(c *Call) (any, error) {
	q := s.st.Read()
	a, err := q.Apps().Get(c.R.Context(), c.Tenant, c.Path("app"))
	if err != nil {
		return nil, notFoundAs(err, "app")
	}
	v := appView(a)
	as, err := q.Apps().Assignments(c.R.Context(), c.Tenant, a.ID)
	if err != nil {
		return nil, err
	}
	v.Groups = map[string]string{}
	for _, x := range as {
		v.Groups[x.GroupID] = x.Mode
	}
	return v, nil
}

func (s *Server) deleteApp(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	return nil, d.DeleteApp(c.R.Context(), c.Tenant, c.Path("app"), c.Actor)
}

func (s *Server) assignApp(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	var in AppAssignmentRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.Mode == "" {
		in.Mode = store.AppRequired
	}
	return nil, d.AssignApp(c.R.Context(), c.Tenant, c.Path("app"), c.Path("group"), in.Mode, c.Actor)
}

func (s *Server) unassignApp(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	return nil, d.AssignApp(c.R.Context(), c.Tenant, c.Path("app"), c.Path("group"), "", c.Actor)
}
