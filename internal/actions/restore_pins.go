package actions

import (
	"context"
	"errors"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// A backup restored over a live database would take with it every Find My
// PIN drawn since the backup: a Mac locked or erased after it would ask for
// a PIN nobody can look up any more, and only Apple could unlock it. So the
// restore reads the PINs first (PINsBeforeRestore) and keeps, after it,
// those the restored database lacks as departed PINs
// (KeepPINsAfterRestore), found by the device and its serial number as a
// departed Mac's are. Each stays sealed under the master key, bound to the
// action that drew it.

// pinPage is how many PINs are read at a time.
const pinPage = 500

// PINsBeforeRestore returns every PIN the database holds, of every tenant:
// those of actions still on record, as the departed PINs they would
// become, and those already kept for departed Macs.
func (s *Service) PINsBeforeRestore(ctx context.Context) ([]store.DepartedPIN, error) {
	q := s.st.Read()
	var out []store.DepartedPIN
	for after := ""; ; {
		page, err := q.Actions().WithPINs(ctx, after, pinPage)
		if err != nil {
			return nil, err
		}
		for _, a := range page {
			p := store.DepartedPIN{ID: a.ID, TenantID: a.TenantID, DeviceID: a.DeviceID, Action: a.Action, SealedPIN: a.SealedPIN,
				SentAt: a.UpdatedAt}
			// The serial number's index, to find the PIN from the Mac in hand.
			if d, err := q.Devices().Get(ctx, a.TenantID, a.DeviceID); err == nil {
				p.SerialIndex = d.SerialIndex
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			out = append(out, p)
		}
		if len(page) < pinPage {
			break
		}
		after = page[len(page)-1].ID
	}
	for after := ""; ; {
		page, err := q.DepartedPINs().All(ctx, after, pinPage)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < pinPage {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// KeepPINsAfterRestore keeps, of pins (read by PINsBeforeRestore), those
// the restored database lacks: an action's PIN it no longer holds becomes
// a departed PIN kept for DepartedPINRetention from now; a departed PIN
// keeps its own times. PINs of a tenant the backup does not hold, and
// departed PINs expired meanwhile, are left out. It returns how many it
// kept, each audited as a departure's is.
func (s *Service) KeepPINsAfterRestore(ctx context.Context, pins []store.DepartedPIN) (int, error) {
	now := s.clock()
	kept := 0
	for _, p := range pins {
		if !p.ExpiresAt.IsZero() && !p.ExpiresAt.After(now) {
			continue
		}
		done := false
		err := s.st.Tx(ctx, func(q store.Queries) error {
			done = false
			if _, err := q.Tenants().Get(ctx, p.TenantID); errors.Is(err, store.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			if a, err := q.Actions().Get(ctx, p.TenantID, p.ID); err == nil && a.SealedPIN != nil {
				return nil // the action is back with its PIN
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if _, err := q.DepartedPINs().Get(ctx, p.TenantID, p.ID); err == nil {
				return nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if p.ExpiresAt.IsZero() { // an action's: kept from now
				p.KeptAt, p.ExpiresAt = now, now.Add(privacy.DepartedPINRetention)
			}
			if err := q.DepartedPINs().Keep(ctx, p); err != nil {
				return err
			}
			done = true
			e := departureActor.Entry(p.TenantID, "device.action.pin.kept", "device", p.DeviceID, audit.OutcomeSuccess)
			e.Reason = "a backup restored over the database would have lost this Find My PIN; it is kept as a departed Mac's"
			e.Details = map[string]any{"action_id": p.ID, "action": p.Action, "until": p.ExpiresAt, "restore": true}
			return audit.Append(ctx, q, e)
		})
		if err != nil {
			return kept, err
		}
		if done {
			kept++
		}
	}
	return kept, nil
}
