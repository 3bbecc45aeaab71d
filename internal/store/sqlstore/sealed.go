package sqlstore

import (
	"context"
	"fmt"

	"github.com/steward-mdm/steward/internal/store"
)

// sealedColumn is where a store.SealedColumn lives: fixed SQL fragments,
// never input. A text column is written and compared as text: SQLite never
// finds a TEXT value equal to a BLOB.
type sealedColumn struct {
	table, id, column, where string
	text                     bool
}

func (c sealedColumn) arg(v []byte) any {
	if c.text {
		return string(v)
	}
	return v
}

var sealedColumns = map[store.SealedColumn]sealedColumn{
	store.SealedCommandPayloads:   {"commands", "id", "payload", "state IN " + openStates + " AND length(payload) > 0", false},
	store.SealedUnlockTokens:      {"apple_channels", "device_id", "unlock_token", "unlock_token IS NOT NULL", false},
	store.SealedBootstrapTokens:   {"apple_channels", "device_id", "bootstrap", "bootstrap IS NOT NULL", false},
	store.SealedProfileSecrets:    {"config_profiles", "id", "sealed", "sealed IS NOT NULL", false},
	store.SealedSchedulePasswords: {"report_schedules", "id", "password_sealed", "length(password_sealed) > 0", false},
	store.SealedActionPINs:        {"device_actions", "id", "pin_sealed", "pin_sealed IS NOT NULL", false},
	store.SealedAdminMFASecrets:   {"admins", "id", "mfa_secret", "mfa_secret IS NOT NULL", false},
	store.SealedActionApprovals:   {"approvals", "id", "payload", "kind = 'device_action'", true},
	store.SealedDepartedPINs:      {"departed_pins", "id", "pin_sealed", "pin_sealed IS NOT NULL", false},
}

type sealedStore struct{ q *queries }

func (s sealedStore) Reseal(ctx context.Context, col store.SealedColumn, after string, limit int, current func([]byte) bool,
	reseal func(store.SealedRow) ([]byte, error)) (store.ResealPage, error) {
	var page store.ResealPage
	c, ok := sealedColumns[col]
	if !ok {
		return page, fmt.Errorf("sqlstore: no sealed column %d", col)
	}
	what := "resealing " + c.table + "." + c.column
	rows, err := s.q.x.QueryContext(ctx, `SELECT tenant_id, `+c.id+`, `+c.column+` FROM `+c.table+
		` WHERE `+c.where+` AND `+c.id+` > $1 ORDER BY `+c.id+` LIMIT $2`, after, limit)
	batch, err := collect(rows, err, what, func(sc scanner) (store.SealedRow, error) {
		var r store.SealedRow
		return r, sc.Scan(&r.TenantID, &r.ID, &r.Sealed)
	})
	if err != nil {
		return page, err
	}
	update := `UPDATE ` + c.table + ` SET ` + c.column + ` = $4 WHERE tenant_id = $1 AND ` + c.id + ` = $2 AND ` + c.column + ` = $3`
	for _, r := range batch {
		if current(r.Sealed) {
			continue
		}
		page.Found++
		fresh, err := reseal(r)
		if err != nil {
			return page, err
		}
		n, err := s.q.exec(ctx, what, update, r.TenantID, r.ID, c.arg(r.Sealed), c.arg(fresh))
		if err != nil {
			return page, err
		}
		page.Written += n
	}
	if len(batch) == limit {
		page.Next = batch[len(batch)-1].ID
	}
	return page, nil
}
