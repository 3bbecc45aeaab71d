package privacy

import (
	"context"
	"strings"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/store"
)

// SerialLookup asks which devices carry a serial number. Reason is needed
// only to find devices whose policy masks their identity.
type SerialLookup struct {
	Serial string
	Reason string
	Limit  int
}

// SerialLookupAccess is the access-record action of an admin who found a
// person's device by a serial number its policy masks.
const SerialLookupAccess = "serial_lookup"

// MaySee says whether the viewer may be told of d; masked is whether
// finding d tells them a serial number d's policy masks, which asks for
// what a reveal asks.
type MaySee func(d store.Device, masked bool) (bool, error)

// LookupDevicesBySerial finds the devices carrying in.Serial that the
// viewer may see. Finding a device by a serial its policy masks confirms
// the serial as a reveal would, so such devices are found only with a
// reason, audited and written to their person's access record. Without one
// they are left out and not counted: a count would say that the serial is
// on someone's own device.
func (s *Service) LookupDevicesBySerial(ctx context.Context, tenantID string, in SerialLookup, v Viewer, may MaySee) ([]store.Device, error) {
	if strings.TrimSpace(in.Serial) == "" {
		return nil, apperr.Invalid("give the serial number to look up").With("field", "serial")
	}
	if len(in.Serial) > 128 {
		return nil, apperr.Invalid("a serial number is at most 128 characters").With("field", "serial")
	}
	reason := ""
	if strings.TrimSpace(in.Reason) != "" {
		var err error
		if reason, err = ValidateReason(in.Reason); err != nil {
			return nil, err
		}
	}
	found, err := s.FindDevicesBySerial(ctx, tenantID, in.Serial, store.Page{Limit: in.Limit})
	if err != nil || len(found) == 0 {
		return nil, err
	}
	q := s.st.Read()
	settings, _, err := LoadSettings(ctx, q, tenantID)
	if err != nil {
		return nil, err
	}
	var shown, masked []store.Device
	for _, d := range found {
		policy, err := EffectivePolicy(ctx, q, settings, d)
		if err != nil {
			return nil, err
		}
		hidden := policy.Mode(Ownership(d.Ownership), DeviceIdentity) != Show
		if hidden && reason == "" {
			continue
		}
		ok, err := may(d, hidden)
		if err != nil {
			return nil, err
		}
		switch {
		case !ok:
		case hidden:
			masked = append(masked, d)
		default:
			shown = append(shown, d)
		}
	}
	if len(masked) == 0 {
		return shown, nil
	}
	now := s.clock()
	err = s.st.Tx(ctx, func(q store.Queries) error {
		for _, d := range masked {
			if d.SubjectID != "" {
				if err := RecordAccess(ctx, q, store.AccessRecord{ID: store.NewID(), TenantID: tenantID, SubjectID: d.SubjectID,
					DeviceID: d.ID, Actor: v.Actor.Ref(), Action: SerialLookupAccess, Fields: []string{"device.serial_number"},
					Reason: reason, At: now}); err != nil {
					return err
				}
			}
			e := v.Actor.Entry(tenantID, "privacy.serial_lookup", "device", d.ID, audit.OutcomeSuccess)
			e.Reason = reason
			e.Details = map[string]any{"fields": []string{"device.serial_number"}}
			if err := audit.Append(ctx, q, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append(shown, masked...), nil
}
