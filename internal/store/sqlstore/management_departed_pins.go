package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type departedPINStore struct{ q *queries }

const departedPINColumns = `id, tenant_id, device_id, serial_index, action, pin_sealed, sent_at, kept_at, expires_at`

func scanDepartedPIN(s scanner) (store.DepartedPIN, error) {
	var p store.DepartedPIN
	var sent, kept, expires int64
	err := s.Scan(&p.ID, &p.TenantID, &p.DeviceID, &p.SerialIndex, &p.Action, &p.SealedPIN, &sent, &kept, &expires)
	p.SerialIndex = nonEmpty(p.SerialIndex)
	p.SentAt, p.KeptAt, p.ExpiresAt = fromMicros(sent), fromMicros(kept), fromMicros(expires)
	return p, err
}

func (s departedPINStore) Keep(ctx context.Context, p store.DepartedPIN) error {
	if len(p.SealedPIN) == 0 {
		return fmt.Errorf("sqlstore: keeping the PIN of action %s: nothing sealed", p.ID)
	}
	_, err := s.q.exec(ctx, "keeping a departed Mac's PIN", `INSERT INTO departed_pins (`+departedPINColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
		p.ID, p.TenantID, p.DeviceID, blob(p.SerialIndex), p.Action, p.SealedPIN, micros(p.SentAt), micros(p.KeptAt), micros(p.ExpiresAt))
	return err
}

func (s departedPINStore) Get(ctx context.Context, tenantID, id string) (store.DepartedPIN, error) {
	p, err := scanDepartedPIN(s.q.x.QueryRowContext(ctx, `SELECT `+departedPINColumns+` FROM departed_pins
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return p, mapErr("reading a departed Mac's PIN", err)
}

func (s departedPINStore) List(ctx context.Context, tenantID string, f store.DepartedPINFilter) ([]store.DepartedPIN, error) {
	after, limit := pageArgs(f.Page)
	query := `SELECT ` + departedPINColumns + ` FROM departed_pins WHERE tenant_id = $1 AND id > $2`
	args := []any{tenantID, after}
	if len(f.SerialIndex) > 0 {
		args = append(args, f.SerialIndex)
		query += ` AND serial_index = $` + strconv.Itoa(len(args))
	}
	if f.DeviceID != "" {
		args = append(args, f.DeviceID)
		query += ` AND device_id = $` + strconv.Itoa(len(args))
	}
	args = append(args, limit)
	query += ` ORDER BY id LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.q.x.QueryContext(ctx, query, args...)
	return collect(rows, err, "listing departed Macs' PINs", scanDepartedPIN)
}

func (s departedPINStore) All(ctx context.Context, afterID string, limit int) ([]store.DepartedPIN, error) {
	_, limit = pageArgs(store.Page{Limit: limit})
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+departedPINColumns+` FROM departed_pins
		WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	return collect(rows, err, "listing departed PINs", scanDepartedPIN)
}

func (s departedPINStore) PurgeExpired(ctx context.Context, now time.Time, limit int) ([]store.PurgeCount, error) {
	return s.q.purgeByID(ctx, "departed_pins", "departed_mac_pins", `expires_at < $1`, micros(now), limit)
}
