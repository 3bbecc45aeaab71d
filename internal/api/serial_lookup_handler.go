package api

import (
	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/rbac"
	"github.com/steward-mdm/steward/internal/store"
)

// SerialLookupRequest asks which devices carry a serial number; Reason is
// needed to find those whose policy masks it.
type SerialLookupRequest struct {
	Serial string `json:"serial"`
	Reason string `json:"reason,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// serialLookupNote goes to every caller who gave no reason, whatever was
// found: said only when a masked device was left out, it would tell that
// the serial is on someone's own device.
const serialLookupNote = "devices whose policy masks their serial number are found only with a reason and privacy.reveal"

func (s *Server) lookupDevicesBySerial(c *Call) (any, error) {
	var in SerialLookupRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.Limit < 0 || in.Limit > 1000 {
		return nil, apperr.Invalid("limit must be between 1 and 1000").With("field", "limit")
	}
	if in.Limit == 0 {
		in.Limit = 100
	}
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	may := func(d store.Device, masked bool) (bool, error) {
		perm := rbac.Permission("device.read")
		if masked {
			if _, held := c.Grants.GroupsFor("privacy.reveal"); !held {
				return false, nil
			}
			perm = "privacy.reveal"
		}
		return c.scope(perm).Contains(c.R.Context(), s.st.Read(), c.Tenant, d.ID)
	}
	ds, err := p.LookupDevicesBySerial(c.R.Context(), c.Tenant, privacy.SerialLookup{Serial: in.Serial, Reason: in.Reason, Limit: in.Limit},
		privacy.Viewer{Actor: c.Actor, AdminID: c.Principal.AdminID}, may)
	if err != nil {
		return nil, err
	}
	out := DeviceListView{Items: make([]DeviceView, 0, len(ds))}
	for _, d := range ds {
		out.Items = append(out.Items, deviceView(d))
	}
	if in.Reason == "" {
		out.Note = serialLookupNote
	}
	return out, nil
}
