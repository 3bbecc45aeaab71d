package actions

import (
	"context"
	"errors"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// refusals returns, by device, the refusals carrying out k would meet on
// the devices among ids: not enrolled, or a rule of mdm.Service.Eligible
// (ownership, collection policy, the employee's full-wipe consent, Apple's
// rules, a Mac's Find My PIN). Checked before a request waits for a second
// admin, so that no admin approves what would be refused; carrying it out
// checks again. A delete sends nothing: none of these apply to it.
func (s *Service) refusals(ctx context.Context, q store.Queries, tenantID string, k Kind, o Options, ids []string) (map[string]*apperr.Error, error) {
	if k == Delete || len(ids) == 0 {
		return nil, nil
	}
	settings, err := privacy.ViewSettings(ctx, q, tenantID)
	if err != nil {
		return nil, err
	}
	devices, err := q.Devices().GetMany(ctx, tenantID, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]*apperr.Error{}
	for _, id := range ids {
		d, ok := devices[id]
		if !ok {
			continue // carrying it out says it is gone
		}
		err := s.eligible(ctx, q, d, k, o, settings)
		var ae *apperr.Error
		if errors.As(err, &ae) && ae.Kind != apperr.KindInternal {
			out[id] = ae
		} else if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// eligible is carryOut's checks without its effects, for an action other
// than delete.
func (s *Service) eligible(ctx context.Context, q store.Queries, d store.Device, k Kind, o Options, settings privacy.Settings) error {
	if err := checkEnrolled(d); err != nil {
		return err
	}
	reqs, err := s.commandsFor(ctx, q, d, k, o)
	if err != nil {
		return err
	}
	return s.mdm.Eligible(ctx, q, d, reqs, settings, k == Sync)
}

// checkEnrolled refuses an action other than delete on a device that is
// not enrolled; a leaving device, as when the action was requested.
func checkEnrolled(d store.Device) error {
	if d.State == store.DeviceLeaving {
		return errLeaving()
	}
	if d.State != store.DeviceEnrolled {
		return apperr.Conflict("the device is %s, not enrolled", d.State).With("reason", mdm.SkipNotEnrolled)
	}
	return nil
}

// commandsFor is what carrying out k sends to d: a retire names d's
// management profile.
func (s *Service) commandsFor(ctx context.Context, q store.Queries, d store.Device, k Kind, o Options) ([]mdmproto.Request, error) {
	profileID := ""
	if k == Retire {
		var err error
		if profileID, err = s.mdm.EnrolmentProfileIdentifier(ctx, q, d); err != nil {
			return nil, err
		}
	}
	return requests(k, o, profileID, d.Platform), nil
}
