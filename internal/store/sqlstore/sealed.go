package sqlstore

import (
	"context"
	"fmt"

	"github.com/steward-mdm/steward/internal/store"
)

// sealedColumn is where a store.SealedColumn lives: fixed SQL fragments,
// never input.
type sealedColumn struct {
	table, id, column, where string
}

var sealedColumns = map[store.SealedColumn]sealedColumn{
	store.SealedCommandPayloads:   {"commands", "id", "payload", "state IN " + openStates + " AND length(payload) > 0"},
	store.SealedUnlockTokens:      {"apple_channels", "device_id", "unlock_token", "unlock_token IS NOT NULL"},
	store.SealedBootstrapTokens:   {"apple_channels", "device_id", "bootstrap", "bootstrap IS NOT NULL"},
	store.SealedProfileSecrets:    {"config_profiles", "id", "sealed", "sealed IS NOT NULL"},
	store.SealedSchedulePasswords: {"report_schedules", "id", "password_sealed", "length(password_sealed) > 0"},
	store.SealedActionPINs:        {"device_actions", "id", "pin_sealed", "pin_sealed IS NOT NULL"},
	store.SealedAdminMFASecrets:   {"admins", "id", "mfa_secret", "mfa_secret IS NOT NULL"},
}

type sealedStore struct{ q *queries }

func (s sealedStore) Reseal(ctx context.Context, col store.SealedColumn, current func([]byte) bool, reseal func(store.SealedRow) ([]byte, error)) (int, error) {
	c, ok := sealedColumns[col]
	if !ok {
		return 0, fmt.Errorf("sqlstore: no sealed column %d", col)
	}
	what := "resealing " + c.table + "." + c.column
	list := `SELECT tenant_id, ` + c.id + `, ` + c.column + ` FROM ` + c.table + ` WHERE ` + c.where + ` AND ` + c.id + ` > $1
		ORDER BY ` + c.id + ` LIMIT $2`
	update := `UPDATE ` + c.table + ` SET ` + c.column + ` = $4 WHERE tenant_id = $1 AND ` + c.id + ` = $2 AND ` + c.column + ` = $3`
	const page = 500
	written, after := 0, ""
	for {
		rows, err := s.q.x.QueryContext(ctx, list, after, page)
		batch, err := collect(rows, err, what, func(sc scanner) (store.SealedRow, error) {
			var r store.SealedRow
			return r, sc.Scan(&r.TenantID, &r.ID, &r.Sealed)
		})
		if err != nil {
			return written, err
		}
		for _, r := range batch {
			if current(r.Sealed) {
				continue
			}
			fresh, err := reseal(r)
			if err != nil {
				return written, err
			}
			n, err := s.q.exec(ctx, what, update, r.TenantID, r.ID, r.Sealed, fresh)
			if err != nil {
				return written, err
			}
			written += n
		}
		if len(batch) < page {
			return written, nil
		}
		after = batch[len(batch)-1].ID
	}
}
