package api

import (
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/store"
)

// departedPINRoutes serve the Find My PINs kept after a company Mac left
// management (actions.KeepPINPastDeparture). They outlive the device's
// record and its group memberships with it, so both need their permission
// on the whole tenant.
func (s *Server) departedPINRoutes() []Route {
	const t = "/api/v1/tenants/{tenant}"
	return []Route{
		{Method: "GET", Path: t + "/departed-pins", Access: needs("device.read"), Tag: tagActions,
			Summary: "Find My PINs kept for company Macs that left management at a lock or an erase, by the serial number on the Mac or its former device ID (no PIN shown)",
			Query: append([]QueryParam{{Name: "serial_number", Type: "string", Description: "the serial number on the Mac in hand"},
				{Name: "device_id", Type: "string", Description: "the device ID its record had"}}, pageQuery...),
			Out: List[DepartedPINView]{}, Handle: s.listDepartedPINs},
		// Needs the action's own permission on the whole tenant too.
		{Method: "POST", Path: t + "/departed-pins/{action}/pin", Access: needs("device.read"), Tag: tagActions,
			Summary: "A departed Mac's kept Find My PIN, with a reason (audited; needs device.lock for a lock's, device.wipe for a wipe's, on the whole tenant)",
			In:      ActionPINRequest{}, Out: ActionPINView{}, Handle: s.departedPIN},
	}
}

// DepartedPINView is a kept PIN without the PIN: which action carried it,
// from which device record, and until when it is kept.
type DepartedPINView struct {
	ActionID  string    `json:"action_id"`
	DeviceID  string    `json:"device_id"`
	Action    string    `json:"action"`
	SentAt    time.Time `json:"sent_at"`
	LeftAt    time.Time `json:"left_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func departedPINView(p store.DepartedPIN) DepartedPINView {
	return DepartedPINView{ActionID: p.ID, DeviceID: p.DeviceID, Action: p.Action, SentAt: p.SentAt, LeftAt: p.KeptAt, ExpiresAt: p.ExpiresAt}
}

func (s *Server) listDepartedPINs(c *Call) (any, error) {
	svc, err := s.actionsSvc()
	if err != nil {
		return nil, err
	}
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	pins, err := svc.DepartedPINs(c.R.Context(), c.Tenant, c.Query("serial_number"), c.Query("device_id"), page)
	if err != nil {
		return nil, err
	}
	return listOf(pins, page.Limit, departedPINView, func(p store.DepartedPIN) string { return p.ID }), nil
}

func (s *Server) departedPIN(c *Call) (any, error) {
	svc, err := s.actionsSvc()
	if err != nil {
		return nil, err
	}
	var in ActionPINRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	p, err := s.st.Read().DepartedPINs().Get(c.R.Context(), c.Tenant, c.Path("action"))
	if err != nil {
		return nil, notFoundAs(err, "kept PIN")
	}
	perm, ok := actions.Permission(actions.Kind(p.Action))
	if !ok {
		return nil, apperr.NotFound("kept PIN")
	}
	if !c.Perms.Has(perm) {
		refused := apperr.Forbidden("the PIN of a departed Mac's %s needs the %q permission on the whole tenant", p.Action, perm)
		svc.RevealRefused(c.R.Context(), c.Tenant, p.DeviceID, p.ID, true, refused, c.Actor)
		return nil, refused
	}
	pin, err := svc.RevealDepartedPIN(c.R.Context(), c.Tenant, p.ID, in.Reason, c.Actor)
	if err != nil {
		return nil, err
	}
	c.W.Header().Set("Cache-Control", "no-store")
	return ActionPINView{PIN: pin}, nil
}
