package actions

import (
	"context"
	"errors"
	"fmt"

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

// PINsBeforeRestore returns the PINs a Mac may ask for, of every tenant:
// those kept for departed Macs, and, as the departed PINs they would
// become, those of locks and erases still on record that a company Mac
// took or may have fetched. As at a departure (KeepPINPastDeparture), an
// employee's own Mac contributes none: its serial number would point at
// its owner.
func (s *Service) PINsBeforeRestore(ctx context.Context) ([]store.DepartedPIN, error) {
	q := s.st.Read()
	var out []store.DepartedPIN
	// Departed PINs first: a Mac that left keeps its action (with the PIN)
	// until its record is purged, and the departed copy is the one with
	// the serial number's index and the times of the departure.
	seen := map[string]bool{}
	for after := ""; ; {
		page, err := q.DepartedPINs().All(ctx, after, pinPage)
		if err != nil {
			return nil, err
		}
		for _, p := range page {
			seen[p.ID] = true
			out = append(out, p)
		}
		if len(page) < pinPage {
			break
		}
		after = page[len(page)-1].ID
	}
	for after := ""; ; {
		page, err := q.Actions().WithPINs(ctx, after, pinPage)
		if err != nil {
			return nil, err
		}
		for _, a := range page {
			if seen[a.ID] || (a.State != store.ActionDone && a.State != store.ActionQueued) {
				continue // kept already, or never reached the Mac
			}
			d, err := q.Devices().Get(ctx, a.TenantID, a.DeviceID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if d.Platform != "macos" || privacy.Ownership(d.Ownership).PersonallyOwned() {
				continue
			}
			out = append(out, store.DepartedPIN{ID: a.ID, TenantID: a.TenantID, DeviceID: a.DeviceID, SerialIndex: d.SerialIndex,
				Action: a.Action, SealedPIN: a.SealedPIN, SentAt: a.UpdatedAt})
		}
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
// kept, each audited as a departure's is, and the PINs it could not keep;
// one failing does not cost the others theirs.
func (s *Service) KeepPINsAfterRestore(ctx context.Context, pins []store.DepartedPIN) (int, error) {
	now := s.clock()
	kept := 0
	var failed []error
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
			failed = append(failed, fmt.Errorf("the PIN of action %s: %w", p.ID, err))
		} else if done {
			kept++
		}
	}
	return kept, errors.Join(failed...)
}
