package actions

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealJobs re-seal what remote actions keep sealed under the master key
// (sealer still opens the previous one): the kept Find My PINs, and the
// options of actions awaiting a second admin, without which an approval
// decided after the old key is gone could not be carried out, and the PINs
// kept after their Mac's record went.
func ResealJobs(sealer secrets.Sealer) []store.ResealJob {
	return []store.ResealJob{
		store.ColumnJob("Macs' Find My PINs", sealer, store.SealedActionPINs,
			func(r store.SealedRow) []byte { return pinAD(r.TenantID, r.ID) }),
		// Bound to the action that carried them, as they were before.
		store.ColumnJob("departed Macs' Find My PINs", sealer, store.SealedDepartedPINs,
			func(r store.SealedRow) []byte { return pinAD(r.TenantID, r.ID) }),
		{What: "approvals' options", Page: func(ctx context.Context, q store.Queries, after string, limit int) (store.ResealPage, error) {
			current := func(payload []byte) bool {
				var p approvalPayload
				// One that does not parse is left for reseal to report; a
				// settled one's options are gone (forgetOptions).
				return json.Unmarshal(payload, &p) == nil && (len(p.Sealed) == 0 || secrets.SealedBy(p.Sealed) == sealer.KeyID())
			}
			return q.Sealed().Reseal(ctx, store.SealedActionApprovals, after, limit, current, func(r store.SealedRow) ([]byte, error) {
				var p approvalPayload
				if err := json.Unmarshal(r.Sealed, &p); err != nil {
					return nil, fmt.Errorf("actions: approval %s holds an unreadable payload: %w", r.ID, err)
				}
				fresh, err := secrets.Reseal(sealer, p.Sealed, optionsAD(r.ID))
				if err != nil {
					return nil, fmt.Errorf("actions: the options of approval %s do not open with the current or previous master key: %w", r.ID, err)
				}
				p.Sealed = fresh
				return json.Marshal(p)
			})
		}},
	}
}
