package mdm

import (
	"context"
	"errors"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// A device erased or restored without a CheckOut (Apple sends it on a best
// effort, and a device erased from its own settings sends none) enrols again
// with a new identity, and its earlier record stays enrolled but unreachable.
// When an enrolment completes, Steward looks for the tenant's other open
// channels that named the same UDID. In profile enrolment the UDID is the
// device's own word, so it is believed only as far as a false claim would
// harm nobody but the claimant: the earlier record of the same person,
// personally owned like the new one, is replaced (deprovisioned, as on a
// CheckOut). Any other match is audited on the earlier record for an admin
// to judge: a corporate device's record taken out by a claim could leave the
// real device unmanaged.

// replaceEarlierEnrolments handles the earlier records of device d, whose
// enrolment on channel ch has just completed.
func (s *Service) replaceEarlierEnrolments(ctx context.Context, q store.Queries, d store.Device, ch store.AppleChannel) error {
	if d.Ownership == string(privacy.UserEnrolled) {
		return nil // its index is of the enrolment's own ID, new each time
	}
	earlier, err := q.AppleChannels().OpenByIndex(ctx, d.TenantID, ch.ChannelIndex)
	if err != nil {
		return err
	}
	actor := iam.Actor{Type: store.ActorDevice, ID: d.ID}
	for _, old := range earlier {
		if old.DeviceID == d.ID {
			continue
		}
		od, err := q.Devices().Get(ctx, d.TenantID, old.DeviceID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if od.Gone() {
			continue
		}
		if replaceable(od, d) {
			_, err := s.priv.DeprovisionIn(ctx, q, d.TenantID, od.ID, "the device enrolled again as device "+d.ID, actor)
			if err != nil && !apperr.IsKind(err, apperr.KindConflict) {
				return err
			}
			continue
		}
		e := actor.Entry(d.TenantID, "mdm.device.enrolled_again", "device", od.ID, audit.OutcomeDenied)
		e.Reason = "a new enrolment names this device's UDID; the earlier record was kept for an administrator to review"
		e.Details = map[string]any{"new_device": d.ID}
		if err := audit.Append(ctx, q, e); err != nil {
			return err
		}
	}
	return nil
}

// replaceable says whether enrolled may replace earlier on its word alone:
// both the same person's, and personally owned alike.
func replaceable(earlier, enrolled store.Device) bool {
	return enrolled.SubjectID != "" && earlier.SubjectID == enrolled.SubjectID &&
		earlier.Ownership == enrolled.Ownership && privacy.Ownership(enrolled.Ownership).PersonallyOwned()
}
