package api

import (
	"errors"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/store"
)

// What an organisation did to an employee's own device, as its admins see
// it: the remote actions (a lock, a wipe, one waiting for a second admin),
// the MDM commands and the device's compliance standings with the reasons
// it is written to about. An employee can check what is pending and why,
// not only the values held.

// portalOwnDevice is the portal caller's own device named in the path;
// another person's, or none, is not found.
func (s *Server) portalOwnDevice(c *Call) (store.Device, error) {
	d, err := s.st.Read().Devices().Get(c.R.Context(), c.Portal.TenantID, c.Path("device"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && (d.SubjectID == "" || d.SubjectID != c.Portal.SubjectID)) {
		return store.Device{}, apperr.NotFound("device")
	}
	return d, err
}

func (s *Server) portalDeviceActions(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	d, err := s.portalOwnDevice(c)
	if err != nil {
		return nil, err
	}
	return s.actionsOf(c, d.TenantID, d.ID, page)
}

func (s *Server) portalDeviceCommands(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	d, err := s.portalOwnDevice(c)
	if err != nil {
		return nil, err
	}
	return s.commandsOf(c, d, page)
}

func (s *Server) portalDeviceCompliance(c *Call) (any, error) {
	d, err := s.portalOwnDevice(c)
	if err != nil {
		return nil, err
	}
	return s.complianceOf(c, d)
}
