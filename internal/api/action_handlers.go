package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/store"
)

const tagActions = "Remote actions"

func (s *Server) actionRoutes() []Route {
	const t = "/api/v1/tenants/{tenant}"
	return []Route{
		// Each action checks its own permission (lock, locate, wipe…); the
		// route asks for the weakest, device.read, and honours group scopes.
		{Method: "POST", Path: t + "/devices/{device}/actions", Access: needs("device.read"), Scoped: true, Tag: tagActions, Summary: "Act on one device: " + actionList, In: DeviceActionRequest{}, Out: actions.Batch{}, Status: http.StatusCreated, Handle: s.deviceAction},
		{Method: "GET", Path: t + "/devices/{device}/actions", Access: needs("device.read"), Scoped: true, Tag: tagActions, Summary: "A device's remote actions and their status", Query: pageQuery, Out: List[ActionView]{}, Handle: s.deviceActions},
		{Method: "POST", Path: t + "/actions", Access: needs("device.read"), Scoped: true, Tag: tagActions, Summary: "Act on many devices, or on a group's members: " + actionList, In: actions.Request{}, Out: actions.Batch{}, Status: http.StatusCreated, Handle: s.bulkAction},
		{Method: "GET", Path: t + "/actions/{batch}", Access: needs("device.read"), Scoped: true, Tag: tagActions, Summary: "A request's progress: counts by state and a page of per-device status", Query: pageQuery, Out: BatchView{}, Handle: s.actionBatch},
		{Method: "POST", Path: t + "/action-approvals/{approval}", Access: needs("device.read"), Tag: tagActions, Summary: "Approve or reject a request waiting for a second admin", In: actions.Decision{}, Out: actions.Batch{}, Handle: s.decideAction},
		// Needs the action's own permission too: device.lock for a lock's PIN, device.wipe for a wipe's.
		{Method: "POST", Path: t + "/devices/{device}/actions/{action}/pin", Access: needs("device.read"), Scoped: true, Tag: tagActions, Summary: "The Find My PIN a Mac's lock or wipe carried, to unlock the Mac, with a reason (audited; needs device.lock for a lock's, device.wipe for a wipe's)", In: ActionPINRequest{}, Out: ActionPINView{}, Handle: s.actionPIN},
	}
}

// ActionPINRequest says why the PIN is needed.
type ActionPINRequest struct {
	Reason string `json:"reason"`
}

// ActionPINView is the six-digit Find My PIN a Mac asks for once locked, or
// once erased (Intel Macs).
type ActionPINView struct {
	PIN string `json:"pin"`
}

// actionPIN reveals the PIN of a device's lock or wipe to an admin who may
// carry that action out on the device.
func (s *Server) actionPIN(c *Call) (any, error) {
	svc, err := s.actionsSvc()
	if err != nil {
		return nil, err
	}
	var in ActionPINRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	deviceID := c.Path("device")
	// Nothing of a device outside the caller's scope is told, not even
	// what its actions were.
	if err := s.requireDevice(c, "device.read", deviceID); err != nil {
		return nil, err
	}
	a, err := s.st.Read().Actions().Get(c.R.Context(), c.Tenant, c.Path("action"))
	if err != nil {
		return nil, notFoundAs(err, "action")
	}
	if a.DeviceID != deviceID {
		return nil, apperr.NotFound("action")
	}
	perm, ok := actions.Permission(actions.Kind(a.Action))
	if !ok || (a.Action != string(actions.Lock) && a.Action != string(actions.Wipe)) {
		return nil, apperr.NotFound("action with a Find My PIN")
	}
	// requireDevice alone would take a permission not held at all for one
	// held everywhere (an unscoped grant has no groups either).
	_, held := c.Grants.GroupsFor(perm)
	if held {
		err := s.requireDevice(c, perm, deviceID)
		if err != nil && !apperr.IsKind(err, apperr.KindNotFound) {
			return nil, err
		}
		held = err == nil
	}
	if !held {
		refused := apperr.Forbidden("the PIN of a %s needs the %q permission on the device", a.Action, perm)
		svc.RevealRefused(c.R.Context(), c.Tenant, deviceID, a.ID, false, refused, c.Actor)
		return nil, refused
	}
	pin, err := svc.RevealPIN(c.R.Context(), c.Tenant, deviceID, a.ID, in.Reason, c.Actor)
	if err != nil {
		return nil, err
	}
	c.W.Header().Set("Cache-Control", "no-store")
	return ActionPINView{PIN: pin}, nil
}

// actionList names every action, from the actions package's table.
var actionList = strings.Join(actions.Kinds(), ", ")

type DeviceActionRequest struct {
	Action  actions.Kind    `json:"action"`
	Reason  string          `json:"reason"`
	Options actions.Options `json:"options"`
}

type ActionView struct {
	ID          string `json:"id"`
	BatchID     string `json:"batch_id"`
	DeviceID    string `json:"device_id"`
	Action      string `json:"action"`
	Reason      string `json:"reason"`
	RequestedBy string `json:"requested_by"`
	State       string `json:"state"`
	Error       string `json:"error,omitempty"`
	// RefusalCode is why a rule refused the action (state refused), for
	// programs; Error says it for a person.
	RefusalCode RefusalCode `json:"refusal_code,omitempty"`
	CommandID   string      `json:"command_id,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// RefusalCode is a stable code for why a rule refused an action on a
// device (actions.RefusalCodes).
type RefusalCode string

func (RefusalCode) EnumValues() []string { return actions.RefusalCodes() }

func actionView(a store.DeviceAction) ActionView {
	return ActionView{ID: a.ID, BatchID: a.BatchID, DeviceID: a.DeviceID, Action: a.Action, Reason: a.Reason, RequestedBy: a.RequestedBy,
		State: a.State, Error: a.Error, RefusalCode: RefusalCode(a.RefusalCode), CommandID: a.CommandID, CreatedAt: a.CreatedAt,
		UpdatedAt: a.UpdatedAt}
}

type BatchView struct {
	actions.Batch
	Actions List[ActionView] `json:"actions"`
}

func (s *Server) actionsSvc() (*actions.Service, error) {
	if s.opts.Actions == nil {
		return nil, apperr.New(apperr.KindUnavailable, "remote actions are not configured")
	}
	return s.opts.Actions, nil
}

// submit checks the caller holds the action's own permission (within its
// scope) and hands the request over.
func (s *Server) submit(c *Call, in actions.Request) (any, error) {
	a, err := s.actionsSvc()
	if err != nil {
		return nil, err
	}
	perm, ok := actions.Permission(in.Action)
	if !ok {
		return nil, apperr.Invalid("unknown action %q; one of %v", in.Action, actions.Kinds()).With("field", "action")
	}
	if _, held := c.Grants.GroupsFor(perm); !held {
		err := apperr.Forbidden("the %s action needs the %q permission", in.Action, perm)
		a.Refused(c.R.Context(), c.Tenant, in, err, c.Actor)
		return nil, err
	}
	return a.Submit(c.R.Context(), c.Tenant, in, c.scope(perm), c.Principal.AdminID, c.Actor)
}

func (s *Server) deviceAction(c *Call) (any, error) {
	var in DeviceActionRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return s.submit(c, actions.Request{Action: in.Action, Reason: in.Reason, Options: in.Options, DeviceIDs: []string{c.Path("device")}})
}

func (s *Server) bulkAction(c *Call) (any, error) {
	var in actions.Request
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return s.submit(c, in)
}

func (s *Server) deviceActions(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	id := c.Path("device")
	if _, err := s.st.Read().Devices().Get(c.R.Context(), c.Tenant, id); err != nil {
		return nil, notFoundAs(err, "device")
	}
	if err := s.requireDevice(c, "device.read", id); err != nil {
		return nil, err
	}
	return s.actionsOf(c, c.Tenant, id, page)
}

// actionsOf lists a page of a device's remote actions, newest first.
func (s *Server) actionsOf(c *Call, tenantID, deviceID string, page store.Page) (any, error) {
	as, err := s.st.Read().Actions().ForDevice(c.R.Context(), tenantID, deviceID, page)
	if err != nil {
		return nil, err
	}
	return listOf(as, page.Limit, actionView, func(a store.DeviceAction) string { return a.ID }), nil
}

func (s *Server) actionBatch(c *Call) (any, error) {
	a, err := s.actionsSvc()
	if err != nil {
		return nil, err
	}
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	b, _, err := a.Status(c.R.Context(), c.Tenant, c.Path("batch"))
	if err != nil {
		return nil, err
	}
	rows, err := s.st.Read().Actions().Batch(c.R.Context(), c.Tenant, b.ID, page)
	if err != nil {
		return nil, err
	}
	// An admin whose device.read is limited to groups follows the requests
	// they made themselves (on devices of their groups), and no others.
	if !c.Perms.Has("device.read") && (len(rows) == 0 || rows[0].RequestedBy != c.Principal.AdminID) {
		return nil, apperr.NotFound("action request")
	}
	return BatchView{Batch: b, Actions: listOf(rows, page.Limit, actionView, func(a store.DeviceAction) string { return a.ID })}, nil
}

// decideAction: the second admin must hold the action's permission on the
// whole tenant; a group-limited role cannot approve.
func (s *Server) decideAction(c *Call) (any, error) {
	a, err := s.actionsSvc()
	if err != nil {
		return nil, err
	}
	var in actions.Decision
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	kind, err := a.PendingAction(c.R.Context(), c.Tenant, c.Path("approval"))
	if err != nil {
		return nil, err
	}
	perm, _ := actions.Permission(kind)
	if !c.Perms.Has(perm) {
		return nil, apperr.Forbidden("deciding a %s request needs the %q permission on the whole tenant", kind, perm)
	}
	return a.Decide(c.R.Context(), c.Tenant, c.Path("approval"), in, c.Principal.AdminID, c.Actor)
}
