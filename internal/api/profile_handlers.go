package api

import (
	"encoding/json"
	"time"

	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/store"
)

type ProfileView struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Identifier   string   `json:"identifier"`
	Kind         string   `json:"kind"`
	PayloadTypes []string `json:"payload_types"`
	// Definition is the typed definition with every secret shown only as
	// {"set": true}; custom uploads are never returned.
	Definition json.RawMessage `json:"definition,omitempty"`
	// ForPersonalDevices: every payload's type may go to personally owned
	// devices. Settings inside (a proxy, a forced tunnel) are judged at
	// delivery, which marks the profile not applicable on such a device.
	ForPersonalDevices bool      `json:"for_personal_devices"`
	Groups             []string  `json:"groups,omitempty"`
	Version            string    `json:"version"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
}

func profileView(p store.ConfigProfile) ProfileView {
	return ProfileView{ID: p.ID, Name: p.Name, Identifier: p.Identifier, Kind: p.Kind, PayloadTypes: nonNil(p.PayloadTypes),
		Definition: device.PublicDefinition(p), ForPersonalDevices: device.ForPersonal(p.PayloadTypes), Version: p.Digest,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

type DeviceProfileView struct {
	DeviceID  string `json:"device_id"`
	ProfileID string `json:"profile_id"`
	Version   string `json:"version"`
	Status    string `json:"status"`
	Error     string `json:"error,omitempty"`
	// FailedAttempts counts the failed sends in a row of this version.
	FailedAttempts int `json:"failed_attempts,omitempty"`
	// RetryAt is when Steward sends a failed install or removal again;
	// absent when none is planned (it succeeded, waits for a fact such as
	// supervision, or Steward stopped retrying: the error then says so).
	RetryAt   *time.Time `json:"retry_at,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

func deviceProfileView(p store.DeviceProfile) DeviceProfileView {
	v := DeviceProfileView{DeviceID: p.DeviceID, ProfileID: p.ProfileID, Version: p.Digest, Status: p.Status, Error: p.Error,
		FailedAttempts: p.Attempts, UpdatedAt: p.UpdatedAt}
	if !p.RetryAt.IsZero() {
		at := p.RetryAt.UTC()
		v.RetryAt = &at
	}
	return v
}

func (s *Server) createProfile(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	var in device.ProfileInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	p, err := d.CreateProfile(c.R.Context(), c.Tenant, in, c.Actor)
	if err != nil {
		return nil, err
	}
	return profileView(p), nil
}

func (s *Server) listProfiles(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	ps, err := s.st.Read().Profiles().List(c.R.Context(), c.Tenant, page)
	if err != nil {
		return nil, err
	}
	return listOf(ps, page.Limit, profileView, func(p store.ConfigProfile) string { return p.ID }), nil
}

func (s *Server) getProfile(c *Call) (any, error) {
	q := s.st.Read()
	p, err := q.Profiles().Get(c.R.Context(), c.Tenant, c.Path("profile"))
	if err != nil {
		return nil, notFoundAs(err, "profile")
	}
	v := profileView(p)
	if v.Groups, err = q.Profiles().Groups(c.R.Context(), c.Tenant, p.ID); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *Server) updateProfile(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	var in device.ProfileInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	p, err := d.UpdateProfile(c.R.Context(), c.Tenant, c.Path("profile"), in, c.Actor)
	if err != nil {
		return nil, err
	}
	return profileView(p), nil
}

func (s *Server) deleteProfile(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	return nil, d.DeleteProfile(c.R.Context(), c.Tenant, c.Path("profile"), c.Actor)
}

func (s *Server) assignProfile(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	return nil, d.AssignProfile(c.R.Context(), c.Tenant, c.Path("profile"), c.Path("group"), true, c.Actor)
}

func (s *Server) unassignProfile(c *Call) (any, error) {
	d, err := s.deviceSvc()
	if err != nil {
		return nil, err
	}
	return nil, d.AssignProfile(c.R.Context(), c.Tenant, c.Path("profile"), c.Path("group"), false, c.Actor)
}

func (s *Server) profileDevices(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	q := s.st.Read()
	if _, err := q.Profiles().Get(c.R.Context(), c.Tenant, c.Path("profile")); err != nil {
		return nil, notFoundAs(err, "profile")
	}
	states, err := q.DeviceProfiles().ForProfile(c.R.Context(), c.Tenant, c.Path("profile"), page)
	if err != nil {
		return nil, err
	}
	return listOf(states, page.Limit, deviceProfileView, func(p store.DeviceProfile) string { return p.DeviceID }), nil
}

func (s *Server) deviceProfiles(c *Call) (any, error) {
	id := c.Path("device")
	if _, err := s.st.Read().Devices().Get(c.R.Context(), c.Tenant, id); err != nil {
		return nil, notFoundAs(err, "device")
	}
	if err := s.requireDevice(c, "device.read", id); err != nil {
		return nil, err
	}
	states, err := s.st.Read().DeviceProfiles().ForDevice(c.R.Context(), c.Tenant, id)
	if err != nil {
		return nil, err
	}
	return listOf(states, 0, deviceProfileView, func(p store.DeviceProfile) string { return p.DeviceID }), nil
}
