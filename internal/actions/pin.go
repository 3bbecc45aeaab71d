package actions

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// A Mac's lock or erase carries a six-digit Find My PIN, and whoever
// unlocks the Mac needs it: a locked Mac asks for it, and so does an
// erased Intel Mac before it can be set up again. The admin who chose it
// may not be the one at the desk, and a compliance ladder's lock has no
// admin at all, so Steward keeps every such PIN sealed with its action and
// gives it to an admin who may carry out that action, for a reason, on the
// audit record.

// pinAD binds a sealed PIN to its action.
func pinAD(tenantID, actionID string) []byte {
	return []byte("device-action-pin:" + tenantID + ":" + actionID)
}

// sealPIN seals pin, the one a lock or wipe carried to a Mac, onto a, for
// execute to keep.
func (s *Service) sealPIN(a *store.DeviceAction, pin string) error {
	sealed, err := s.sealer.Seal([]byte(pin), pinAD(a.TenantID, a.ID))
	if err != nil {
		return err
	}
	a.SealedPIN = sealed
	return nil
}

// newPIN draws a six-digit Find My PIN, for a lock no admin chose one for.
func newPIN() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// RevealRefused audits an admin refused the PIN of device deviceID's
// action actionID, kept past the device's departure when departed: why
// says which permission they lacked.
func (s *Service) RevealRefused(ctx context.Context, tenantID, deviceID, actionID string, departed bool, why error, actor iam.Actor) {
	err := s.st.Tx(ctx, func(q store.Queries) error {
		e := actor.Entry(tenantID, "device.action.pin.reveal", "device", deviceID, audit.OutcomeDenied)
		e.Reason = why.Error()
		e.Details = map[string]any{"action_id": actionID}
		if departed {
			e.Details["departed"] = true
		}
		return audit.Append(ctx, q, e)
	})
	if err != nil {
		s.log.Warn("auditing a refused PIN reveal failed", "error", err.Error())
	}
}

// RevealPIN returns the Find My PIN device deviceID's action actionID
// carried, and audits who asked and why. NotFound when the action is not
// the device's or carried none.
func (s *Service) RevealPIN(ctx context.Context, tenantID, deviceID, actionID, reason string, actor iam.Actor) (string, error) {
	reason, err := privacy.ValidateReason(reason)
	if err != nil {
		return "", err
	}
	var pin []byte
	err = s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Actions().Get(ctx, tenantID, actionID)
		if err != nil || a.DeviceID != deviceID || a.SealedPIN == nil {
			return apperr.NotFound("action with a Find My PIN")
		}
		pin, err = s.openPIN(ctx, q, tenantID, deviceID, a.ID, a.Action, a.SealedPIN, false, reason, actor)
		return err
	})
	return string(pin), err
}

// openPIN opens the PIN sealed onto device deviceID's action actionID and
// records the reveal, for reason, in q; departed marks a PIN kept past the
// device's record.
func (s *Service) openPIN(ctx context.Context, q store.Queries, tenantID, deviceID, actionID, action string, sealed []byte,
	departed bool, reason string, actor iam.Actor) ([]byte, error) {
	pin, err := s.sealer.Open(sealed, pinAD(tenantID, actionID))
	if err != nil {
		return nil, fmt.Errorf("actions: the PIN of action %s does not open: %w", actionID, err)
	}
	e := actor.Entry(tenantID, "device.action.pin.reveal", "device", deviceID, audit.OutcomeSuccess)
	e.Reason = reason
	e.Details = map[string]any{"action_id": actionID, "action": action}
	if departed {
		e.Details["departed"] = true
	}
	return pin, audit.Append(ctx, q, e)
}
