package mdm

import (
	"context"
	"errors"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// InstalledProfile is one entry of security.profiles: a configuration
// profile a device reported installed, without its content.
type InstalledProfile struct {
	Identifier   string `json:"identifier"`
	Name         string `json:"name,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	// Managed: whether MDM installed the profile rather than the device's
	// user (IsManaged); absent when the device did not say, as macOS and
	// supervised devices never do (profile.list.yaml).
	Managed            *bool `json:"managed,omitempty"`
	RemovalDisallowed  bool  `json:"removal_disallowed,omitempty"`
	HasRemovalPasscode bool  `json:"has_removal_passcode,omitempty"`
}

// maxProfiles bounds what one ProfileList stores.
const maxProfiles = 500

// profileObservations keeps a ProfileList answer. On a personally owned
// device only the organisation's profiles are kept, as the others and
// their names are the user's: those the device says MDM installed
// (IsManaged), and those whose identifier is one Steward installed there
// (ours), since macOS and supervised devices never say IsManaged. Only the
// number dropped is logged.
func (s *Service) profileObservations(list []mdmproto.InstalledProfile, personal bool, ours map[string]bool, deviceID string) []privacy.Observation {
	out := make([]InstalledProfile, 0, min(len(list), maxProfiles))
	dropped := 0
	for _, p := range list {
		if len(out) == maxProfiles {
			break
		}
		if personal && !isTrue(p.IsManaged) && !ours[p.PayloadIdentifier] {
			dropped++
			continue
		}
		out = append(out, InstalledProfile{Identifier: truncateText(p.PayloadIdentifier, 256), Name: truncateText(p.PayloadDisplayName, 256),
			Organisation: truncateText(p.PayloadOrganization, 256), Managed: p.IsManaged,
			RemovalDisallowed: isTrue(p.PayloadRemovalDisallowed), HasRemovalPasscode: isTrue(p.HasRemovalPasscode)})
	}
	if dropped > 0 {
		s.log.Warn("a personally owned device reported profiles that are not the organisation's; they were dropped",
			"device", deviceID, "dropped", dropped)
	}
	return []privacy.Observation{{Field: "security.profiles", Value: out}}
}

// stewardProfiles returns the PayloadIdentifiers of the profiles Steward
// installed, or is installing, on d: its management profile, and the
// configuration profiles whose state says they may be on the device
// (store.DeviceProfile.OnDevice; any version, as all share the identifier).
func stewardProfiles(ctx context.Context, q store.Queries, d store.Device) (map[string]bool, error) {
	ours := map[string]bool{}
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	switch {
	case err == nil:
		ours[mdmproto.EnrolmentIdentifier(ch.EnrolmentID)] = true
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	states, err := q.DeviceProfiles().ForDevice(ctx, d.TenantID, d.ID)
	if err != nil {
		return nil, err
	}
	for _, st := range states {
		if !st.OnDevice() {
			continue
		}
		cp, err := q.Profiles().Get(ctx, d.TenantID, st.ProfileID)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		} else if err != nil {
			return nil, err
		}
		ours[cp.Identifier] = true
	}
	return ours, nil
}
