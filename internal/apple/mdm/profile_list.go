package mdm

import (
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
)

// InstalledProfile is one entry of security.profiles: a configuration
// profile a device reported installed, without its content.
type InstalledProfile struct {
	Identifier   string `json:"identifier"`
	Name         string `json:"name,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	// Managed: installed through MDM (IsManaged), rather than by the
	// device's user.
	Managed            bool `json:"managed"`
	RemovalDisallowed  bool `json:"removal_disallowed,omitempty"`
	HasRemovalPasscode bool `json:"has_removal_passcode,omitempty"`
}

// maxProfiles bounds what one ProfileList stores.
const maxProfiles = 500

// profileObservations keeps a ProfileList answer. On a personally owned
// device only the profiles MDM installed are kept: the ones its user
// installed are theirs, and so are their names. A device that does not
// say (IsManaged absent) has the profile counted as its user's.
func profileObservations(list []mdmproto.InstalledProfile, personal bool) []privacy.Observation {
	out := make([]InstalledProfile, 0, min(len(list), maxProfiles))
	for _, p := range list {
		if len(out) == maxProfiles {
			break
		}
		managed := p.IsManaged != nil && *p.IsManaged
		if personal && !managed {
			continue
		}
		out = append(out, InstalledProfile{Identifier: truncateText(p.PayloadIdentifier, 256), Name: truncateText(p.PayloadDisplayName, 256),
			Organisation: truncateText(p.PayloadOrganization, 256), Managed: managed,
			RemovalDisallowed:  p.PayloadRemovalDisallowed != nil && *p.PayloadRemovalDisallowed,
			HasRemovalPasscode: p.HasRemovalPasscode != nil && *p.HasRemovalPasscode})
	}
	return []privacy.Observation{{Field: "security.profiles", Value: out}}
}
