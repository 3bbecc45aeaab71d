package actions

import (
	"context"
	"errors"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// A device's record, and its actions with it, goes 30 days after the device
// left management; a company Mac found after that, erased or still at its
// firmware lock, would ask for a PIN nobody has any more, and only Apple
// could unlock it. So the PIN it may still ask for outlives the record,
// for privacy.DepartedPINRetention, with nothing of a person: the serial
// number's blind index (to find it from the Mac in hand) and the PIN,
// sealed as before. Nothing a device reports makes Steward drop it
// earlier: a serial number is the device's own claim, and a device enrolled
// with another Mac's would otherwise cost that Mac its PIN.

// KeepPINPastDeparture is a privacy hook, run in the transaction that
// takes device d out of management: a company Mac keeps the PIN of its
// erase, or of the lock it has not checked in since. It runs before the
// protocol adapters cancel the device's commands (privacy.DepartingHook),
// so a lock or erase fetched and still unanswered counts. A Mac that
// removed its profile itself (CheckOut) was running past any lock: it was
// seen then, so no lock's PIN is kept for it.
func (s *Service) KeepPINPastDeparture(ctx context.Context, q store.Queries, d store.Device, serialIndex []byte) error {
	if d.Platform != "macos" || privacy.Ownership(d.Ownership).PersonallyOwned() {
		// An employee's own Mac is never sent a PIN Steward drew, and its
		// serial number would point at its owner.
		return nil
	}
	a, at, err := q.Actions().LastPINTaken(ctx, d.TenantID, d.ID, string(Wipe))
	if errors.Is(err, store.ErrNotFound) {
		var held bool
		if a, at, held, err = heldAtLock(ctx, q, d); err != nil || !held {
			return err
		}
	}
	if err != nil {
		return err
	}
	now := s.clock()
	if err := q.DepartedPINs().Keep(ctx, store.DepartedPIN{ID: a.ID, TenantID: d.TenantID, DeviceID: d.ID, SerialIndex: serialIndex,
		Action: a.Action, SealedPIN: a.SealedPIN, SentAt: at, KeptAt: now, ExpiresAt: now.Add(privacy.DepartedPINRetention)}); err != nil {
		return err
	}
	e := departureActor.Entry(d.TenantID, "device.action.pin.kept", "device", d.ID, audit.OutcomeSuccess)
	e.Reason = "the Mac left management while it may still ask for this Find My PIN; it is kept past the device's record"
	e.Details = map[string]any{"action_id": a.ID, "action": a.Action, "until": now.Add(privacy.DepartedPINRetention)}
	return audit.Append(ctx, q, e)
}

// departureActor keeps a departed Mac's PIN in the audit log.
var departureActor = iam.Actor{Type: store.ActorSystem, ID: "departed-pins"}

// DepartedPINs lists the PINs kept for Macs that left management, by the
// serial number on the Mac in hand and by the device ID its record had;
// both empty lists them all.
func (s *Service) DepartedPINs(ctx context.Context, tenantID, serial, deviceID string, p store.Page) ([]store.DepartedPIN, error) {
	f := store.DepartedPINFilter{DeviceID: deviceID, Page: p}
	if serial != "" {
		idx, err := s.priv.SerialIndex(ctx, tenantID, serial)
		if err != nil {
			return nil, err
		}
		f.SerialIndex = idx
	}
	return s.st.Read().DepartedPINs().List(ctx, tenantID, f)
}

// RevealDepartedPIN returns the PIN kept as id (the ID of the action that
// carried it) and audits who asked and why, as RevealPIN does for a device
// still on record.
func (s *Service) RevealDepartedPIN(ctx context.Context, tenantID, id, reason string, actor iam.Actor) (string, error) {
	reason, err := privacy.ValidateReason(reason)
	if err != nil {
		return "", err
	}
	var pin []byte
	err = s.st.Tx(ctx, func(q store.Queries) error {
		p, err := q.DepartedPINs().Get(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.NotFound("kept PIN")
		}
		if err != nil {
			return err
		}
		pin, err = s.openPIN(ctx, q, tenantID, p.DeviceID, p.ID, p.Action, p.SealedPIN, true, reason, actor)
		return err
	})
	return string(pin), err
}
