package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/rbac"
	"github.com/steward-mdm/steward/internal/store"
)

const (
	tagGroups   = "Groups"
	tagProfiles = "Configuration profiles"
)

var deviceQuery = []QueryParam{
	{Name: "platform", Type: "string", Description: "ios, ipados or macos"},
	{Name: "ownership", Type: "string", Description: "corporate, personal, user_enrolled or shared"},
	{Name: "state", Type: "string", Description: "pending, enrolled, leaving (consent withdrawn, management profile removal sent), retired, wiped or deprovisioned"},
	{Name: "compliance", Type: "string", Description: "compliant, in_grace, noncompliant or unknown"},
	{Name: "group", Type: "string", Description: "members of this group"},
	{Name: "last_seen_before", Type: "string", Description: "RFC 3339 time, or an age such as 30d or 12h"},
	{Name: "last_seen_after", Type: "string", Description: "RFC 3339 time, or an age such as 30d or 12h"},
	{Name: "os_min", Type: "string", Description: "lowest OS version, e.g. 17.4"},
	{Name: "os_max", Type: "string", Description: "highest OS version, e.g. 17.9"},
	{Name: "model", Type: "string", Description: "model name prefix"},
	{Name: "sort", Type: "string", Description: "id, last_seen, enrolled, os_version or model; prefix - for descending"},
	{Name: "cursor", Type: "string", Description: "next_cursor of the previous page"},
	{Name: "limit", Type: "integer", Description: "page size, 1 to 1000 (default 100)"},
}

func (s *Server) deviceRoutes() []Route {
	const t = "/api/v1/tenants/{tenant}"
	return []Route{
		{Method: "GET", Path: t + "/device-settings", Access: needs("device.read"), Tag: tagDevices, Summary: "Device management settings (stale devices, approvals)", Out: device.Settings{}, Handle: s.getDeviceSettings},
		{Method: "PUT", Path: t + "/device-settings", Access: needs("settings.manage"), Tag: tagDevices, Summary: "Change device management settings", In: device.Settings{}, Out: device.Settings{}, Handle: s.putDeviceSettings},

		{Method: "POST", Path: t + "/groups", Access: needs("device.manage"), Tag: tagGroups, Summary: "Create a static or dynamic group", In: GroupRequest{}, Out: GroupView{}, Status: http.StatusCreated, Handle: s.createGroup},
		{Method: "GET", Path: t + "/groups", Access: needs("device.read"), Tag: tagGroups, Summary: "List groups", Query: pageQuery, Out: List[GroupView]{}, Handle: s.listGroups},
		{Method: "GET", Path: t + "/groups/{group}", Access: needs("device.read"), Tag: tagGroups, Summary: "A group, its rule and member count", Out: GroupView{}, Handle: s.getGroup},
		{Method: "PATCH", Path: t + "/groups/{group}", Access: needs("device.manage"), Tag: tagGroups, Summary: "Rename a group or change its rule", In: GroupRequest{}, Out: GroupView{}, Handle: s.updateGroup},
		{Method: "DELETE", Path: t + "/groups/{group}", Access: needs("device.manage"), Tag: tagGroups, Summary: "Delete a group; its profiles leave its members", Handle: s.deleteGroup},
		{Method: "GET", Path: t + "/groups/{group}/members", Access: needs("device.read"), Tag: tagGroups, Summary: "A group's device IDs; where its rule reads apps, devices whose apps are hidden (by the tenant's policy, or as their own policy stored them) are left out and counted", Query: pageQuery, Out: GroupMembersView{}, Handle: s.groupMembers},
		{Method: "POST", Path: t + "/groups/{group}/members", Access: needs("device.manage"), Tag: tagGroups, Summary: "Add and remove devices of a static group", In: MembersRequest{}, Out: MembersView{}, Handle: s.changeMembers},
		{Method: "POST", Path: t + "/groups/{group}/refresh", Access: needs("device.manage"), Tag: tagGroups, Summary: "Re-evaluate a dynamic group now", Out: device.RefreshResult{}, Handle: s.refreshGroup},

		{Method: "POST", Path: t + "/profiles", Access: needs("device.manage"), Tag: tagProfiles, Summary: "Create a configuration profile from a definition or an uploaded .mobileconfig", In: device.ProfileInput{}, MaxBody: MaxProfileBodyBytes, Out: ProfileView{}, Status: http.StatusCreated, Handle: s.createProfile},
		{Method: "GET", Path: t + "/profiles", Access: needs("device.read"), Tag: tagProfiles, Summary: "List profiles (secrets never shown)", Query: pageQuery, Out: List[ProfileView]{}, Handle: s.listProfiles},
		{Method: "GET", Path: t + "/profiles/{profile}", Access: needs("device.read"), Tag: tagProfiles, Summary: "A profile, its groups; secrets shown as set or not", Out: ProfileView{}, Handle: s.getProfile},
		{Method: "PUT", Path: t + "/profiles/{profile}", Access: needs("device.manage"), Tag: tagProfiles, Summary: "Replace a profile's content; devices get the new version", In: device.ProfileInput{}, MaxBody: MaxProfileBodyBytes, Out: ProfileView{}, Handle: s.updateProfile},
		{Method: "DELETE", Path: t + "/profiles/{profile}", Access: needs("device.manage"), Tag: tagProfiles, Summary: "Remove a profile from every device and delete it", Handle: s.deleteProfile},
		{Method: "PUT", Path: t + "/profiles/{profile}/groups/{group}", Access: needs("device.manage"), Tag: tagProfiles, Summary: "Assign a profile to a group", Handle: s.assignProfile},
		{Method: "DELETE", Path: t + "/profiles/{profile}/groups/{group}", Access: needs("device.manage"), Tag: tagProfiles, Summary: "Stop assigning a profile to a group", Handle: s.unassignProfile},
		{Method: "GET", Path: t + "/profiles/{profile}/devices", Access: needs("device.read"), Tag: tagProfiles, Summary: "The profile's state on each device", Query: pageQuery, Out: List[DeviceProfileView]{}, Handle: s.profileDevices},
		{Method: "GET", Path: t + "/devices/{device}/profiles", Access: needs("device.read"), Scoped: true, Tag: tagProfiles, Summary: "The device's profiles and their state", Out: List[DeviceProfileView]{}, Handle: s.deviceProfiles},
	}
}

func (s *Server) deviceSvc() (*device.Service, error) {
	if s.opts.Devices == nil {
		return nil, apperr.New(apperr.KindUnavailable, "device management is not configured")
	}
	return s.opts.Devices, nil
}

// scope is the part of the fleet the caller may use perm on.
func (c *Call) scope(perm rbac.Permission) device.Scope {
	groups, _ := c.Grants.GroupsFor(perm)
	if groups == nil {
		return device.Everything()
	}
	return device.Groups(groups)
}

// requireDevice answers 404 for a device outside the caller's scope, as
// for one of another tenant.
func (s *Server) requireDevice(c *Call, perm rbac.Permission, deviceID string) error {
	ok, err := c.scope(perm).Contains(c.R.Context(), s.st.Read(), c.Tenant, deviceID)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.NotFound("device")
	}
	return nil
}

// DeviceListView is a page of devices; LeftOut counts the devices of the
// page not listed, Note says why.
type DeviceListView struct {
	Items      []DeviceView `json:"items"`
	NextCursor string       `json:"next_cursor,omitempty"`
	LeftOut    int          `json:"left_out,omitempty"`
	Note       string       `json:"note,omitempty"`
}

// listDevices searches the fleet within the caller's scope.
func (s *Server) listDevices(c *Call) (any, error) {
	q, err := deviceSearch(c)
	if err != nil {
		return nil, err
	}
	q.Scope = c.scope("device.read").Filter()
	if c.Query("serial") != "" {
		// A serial in the URL would reach every proxy's access log.
		return nil, apperr.Invalid("to find a device by serial number, POST it to …/devices/lookup").With("field", "serial")
	}
	page, err := s.st.Read().ManagedDevices().Search(c.R.Context(), c.Tenant, q)
	if err != nil {
		return nil, err
	}
	// Filtered by a group whose rule reads apps, the list would tell which
	// devices hold an app, as the group's members list would.
	var hidden *device.HiddenMembers
	if q.GroupID != "" {
		g, err := s.st.Read().Groups().Get(c.R.Context(), c.Tenant, q.GroupID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if hidden, err = device.HiddenMembership(c.R.Context(), s.st.Read(), g); err != nil {
			return nil, err
		}
	}
	left, err := hidden.Of(c.R.Context(), s.st.Read(), c.Tenant, page.Devices)
	if err != nil {
		return nil, err
	}
	out := DeviceListView{Items: make([]DeviceView, 0, len(page.Devices))}
	for _, d := range page.Devices {
		if left[d.ID] {
			out.LeftOut++
			continue
		}
		out.Items = append(out.Items, deviceView(d))
	}
	if out.LeftOut > 0 {
		out.Note = hiddenMembersNote
	}
	if page.Next != (store.DeviceCursor{}) {
		raw, _ := json.Marshal([2]string{page.Next.Value, page.Next.ID})
		out.NextCursor = base64.RawURLEncoding.EncodeToString(raw)
	}
	return out, nil
}

// deviceSearch reads the list's query parameters.
func deviceSearch(c *Call) (store.DeviceQuery, error) {
	limit, err := c.limit()
	if err != nil {
		return store.DeviceQuery{}, err
	}
	q := store.DeviceQuery{Platform: c.Query("platform"), Ownership: c.Query("ownership"), State: c.Query("state"),
		Compliance: c.Query("compliance"), GroupID: c.Query("group"), ModelPrefix: c.Query("model"), Limit: limit}
	for name, dst := range map[string]*time.Time{"last_seen_before": &q.LastSeenBefore, "last_seen_after": &q.LastSeenAfter} {
		if raw := c.Query(name); raw != "" {
			t, err := timeOrAge(raw)
			if err != nil {
				return q, apperr.Invalid("%s: give an RFC 3339 time or an age such as 30d", name).With("field", name)
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*string{"os_min": &q.OSVersionMin, "os_max": &q.OSVersionMax} {
		if raw := c.Query(name); raw != "" {
			if *dst = device.VersionKey(raw); *dst == "" {
				return q, apperr.Invalid("%s: give a version such as 17.4", name).With("field", name)
			}
		}
	}
	sort := c.Query("sort")
	q.Descending = strings.HasPrefix(sort, "-")
	switch strings.TrimPrefix(sort, "-") {
	case "", "id":
		q.Sort = store.SortByID
	case "last_seen":
		q.Sort = store.SortByLastSeen
	case "enrolled":
		q.Sort = store.SortByEnrolled
	case "os_version":
		q.Sort = store.SortByOSVersion
	case "model":
		q.Sort = store.SortByModel
	default:
		return q, apperr.Invalid("sort must be id, last_seen, enrolled, os_version or model, optionally prefixed with -").With("field", "sort")
	}
	if raw := c.Query("cursor"); raw != "" {
		var pair [2]string
		b, err := base64.RawURLEncoding.DecodeString(raw)
		if err != nil || len(b) > 512 || json.Unmarshal(b, &pair) != nil || pair[1] == "" {
			return q, apperr.Invalid("cursor is not valid").With("field", "cursor")
		}
		q.After = store.DeviceCursor{Value: pair[0], ID: pair[1]}
	}
	return q, nil
}

// timeOrAge reads an RFC 3339 time, or an age ("30d", "12h") before now.
func timeOrAge(raw string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, raw); err == nil {
		return t.UTC(), nil
	}
	if n, ok := strings.CutSuffix(raw, "d"); ok {
		d, err := time.ParseDuration(n + "h")
		if err != nil || d < 0 {
			return time.Time{}, apperr.Invalid("bad age")
		}
		return time.Now().UTC().Add(-24 * d), nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < 0 {
		return time.Time{}, apperr.Invalid("bad age")
	}
	return time.Now().UTC().Add(-d), nil
}

func (s *Server) getDeviceSettings(c *Call) (any, error) {
	return device.LoadSettings(c.R.Context(), s.st.Read(), c.Tenant)
}

func (s *Server) putDeviceSettings(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	var in device.Settings
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return in, d.PutSettings(c.R.Context(), c.Tenant, in, c.Actor)
}
