package mdm

import (
	"context"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// Eligible refuses reqs for device d as queueing them inside q would
// (EnqueueIn; with inventory, EnqueueInventoryIn, which leaves out the
// requests Apple's rules or the policy rule out as long as one remains),
// without building or queueing anything: d is not enrolled, its ownership,
// the collection policy or its employee's full-wipe consent rule a request
// out, or Apple's rules for its system, enrolment, supervision and OS
// version do (admitted). A request that waits for a
// second admin is checked so, and no admin approves what would be refused.
// settings are the tenant's (privacy.ViewSettings). The unlock token a
// ClearPasscode needs is not looked for.
func (s *Service) Eligible(ctx context.Context, q store.Queries, d store.Device, reqs []mdmproto.Request, settings privacy.Settings,
	inventory bool) error {
	var policy privacy.Policy
	if inventory {
		var err error
		if policy, err = privacy.EffectivePolicy(ctx, q, settings, d); err != nil {
			return err
		}
	}
	admitted := false
	var unsupported error
	for _, req := range reqs {
		if inventory && keepsNothingOf(req, policy, privacy.Ownership(d.Ownership)) {
			unsupported = errKeepsNothing(req, d)
			continue
		}
		_, err := s.admitted(ctx, q, d, req, settings)
		if inventory && unsupportedThere(err) {
			unsupported = err
			continue
		}
		if err != nil {
			return err
		}
		admitted = true
	}
	if !admitted && unsupported != nil {
		return unsupported
	}
	return nil
}

// errKeepsNothing refuses an inventory request the collection policy
// keeps nothing of on d.
func errKeepsNothing(req mdmproto.Request, d store.Device) error {
	return apperr.Conflict("the collection policy keeps nothing of %s on %s devices", req.RequestType(), d.Ownership).
		With("reason", SkipPolicy)
}

// unsupportedThere says whether err is Apple's rules refusing a request on
// the device's system or enrolment (SkipUnsupported), which an inventory
// request is left out for rather than failing the others.
func unsupportedThere(err error) bool {
	return apperr.IsKind(err, apperr.KindConflict) && apperr.As(err).Details["reason"] == SkipUnsupported
}
