package sqlstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type inventoryStore struct{ q *queries }

const (
	// deviceValueColumns leave out what a query of one device already knows:
	// the gate reads them on every report, inside SQLite's single writer.
	deviceValueColumns = `field, category, subject_id, hidden, value, ciphertext, key_id, digest, collected_at, expires_at`
	currentColumns     = `tenant_id, device_id, ` + deviceValueColumns
	historyColumns     = `id, tenant_id, device_id, field, category, subject_id, hidden, value, ciphertext, key_id,
	collected_at, expires_at`
)

func scanCurrentValue(s scanner) (store.InventoryValue, error) {
	var v store.InventoryValue
	err := scanValueColumns(s, &v, &v.TenantID, &v.DeviceID)
	return v, err
}

// scanValueColumns scans lead, then deviceValueColumns, into v.
func scanValueColumns(s scanner, v *store.InventoryValue, lead ...any) error {
	var collected, expires int64
	err := s.Scan(append(lead, &v.Field, &v.Category, &v.SubjectID, &v.Hidden, &v.Value,
		&v.Ciphertext, &v.KeyID, &v.Digest, &collected, &expires)...)
	v.Value, v.Ciphertext, v.Digest = nonEmpty(v.Value), nonEmpty(v.Ciphertext), nonEmpty(v.Digest)
	v.CollectedAt, v.ExpiresAt = fromMicros(collected), fromMicros(expires)
	return err
}

func scanHistoryValue(s scanner) (store.InventoryValue, error) {
	var v store.InventoryValue
	var collected, expires int64
	err := s.Scan(&v.ID, &v.TenantID, &v.DeviceID, &v.Field, &v.Category, &v.SubjectID, &v.Hidden, &v.Value,
		&v.Ciphertext, &v.KeyID, &collected, &expires)
	v.Value, v.Ciphertext = nonEmpty(v.Value), nonEmpty(v.Ciphertext)
	v.CollectedAt, v.ExpiresAt = fromMicros(collected), fromMicros(expires)
	return v, err
}

// checkValue enforces the one-of rule: a plaintext stored next to its
// ciphertext would defeat the encryption.
func checkValue(v store.InventoryValue) error {
	if v.TenantID == "" || v.DeviceID == "" || v.Field == "" {
		return fmt.Errorf("sqlstore: storing inventory: value without tenant, device or field")
	}
	if (len(v.Value) > 0) == (len(v.Ciphertext) > 0) {
		return fmt.Errorf("sqlstore: storing inventory: field %s must have exactly one of value and ciphertext", v.Field)
	}
	return nil
}

// scanDeviceValue scans deviceValueColumns of one device's values.
func scanDeviceValue(tenantID, deviceID string) func(scanner) (store.InventoryValue, error) {
	return func(s scanner) (store.InventoryValue, error) {
		v := store.InventoryValue{TenantID: tenantID, DeviceID: deviceID}
		err := scanValueColumns(s, &v)
		return v, err
	}
}

func (s inventoryStore) Current(ctx context.Context, tenantID, deviceID string) ([]store.InventoryValue, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+deviceValueColumns+` FROM inventory_values
		WHERE tenant_id = $1 AND device_id = $2 ORDER BY field`, tenantID, deviceID)
	return collect(rows, err, "reading inventory", scanDeviceValue(tenantID, deviceID))
}

func (s inventoryStore) CurrentOf(ctx context.Context, tenantID, deviceID string, fields []string) ([]store.InventoryValue, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	if len(fields) > maxInList {
		return nil, fmt.Errorf("sqlstore: reading inventory: %d fields, at most %d", len(fields), maxInList)
	}
	marks, args := placeholders(fields, 3)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+deviceValueColumns+` FROM inventory_values
		WHERE tenant_id = $1 AND device_id = $2 AND field IN (`+marks+`) ORDER BY field`, append([]any{tenantID, deviceID}, args...)...)
	return collect(rows, err, "reading inventory", scanDeviceValue(tenantID, deviceID))
}

func (s inventoryStore) FieldValues(ctx context.Context, tenantID, field, afterDeviceID string, limit int) ([]store.InventoryValue, error) {
	_, limit = pageArgs(store.Page{Limit: limit})
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+currentColumns+` FROM inventory_values
		WHERE tenant_id = $1 AND field = $2 AND device_id > $3 ORDER BY device_id LIMIT $4`, tenantID, field, afterDeviceID, limit)
	return collect(rows, err, "reading one field of every device", scanCurrentValue)
}

func (s inventoryStore) HiddenOf(ctx context.Context, tenantID, field string, deviceIDs []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := forChunks(uniqueSorted(deviceIDs), func(chunk []string) error {
		marks, args := placeholders(chunk, 3)
		ids, err := s.q.stringList(ctx, "reading which values are hidden", `SELECT device_id FROM inventory_values
			WHERE tenant_id = $1 AND field = $2 AND hidden = 1 AND device_id IN (`+marks+`)`, append([]any{tenantID, field}, args...)...)
		for _, id := range ids {
			out[id] = true
		}
		return err
	})
	return out, err
}

// Put writes each table with a few multi-row statements. When current names
// a field twice the last value wins, on both engines alike (PostgreSQL
// refuses to upsert one row twice in a statement).
func (s inventoryStore) Put(ctx context.Context, current, history []store.InventoryValue) error {
	last := make(map[[3]string]int, len(current))
	for i, v := range current {
		if err := checkValue(v); err != nil {
			return err
		}
		last[[3]string{v.TenantID, v.DeviceID, v.Field}] = i
	}
	currentRows := make([][]any, 0, len(last))
	for i, v := range current {
		if last[[3]string{v.TenantID, v.DeviceID, v.Field}] != i {
			continue
		}
		currentRows = append(currentRows, []any{v.TenantID, v.DeviceID, v.Field, v.Category, v.SubjectID,
			boolInt(v.Hidden), blob(v.Value), blob(v.Ciphertext), v.KeyID, blob(v.Digest), micros(v.CollectedAt),
			micros(v.ExpiresAt)})
	}
	historyRows := make([][]any, 0, len(history))
	for _, v := range history {
		if err := checkValue(v); err != nil {
			return err
		}
		if v.ID == "" {
			return fmt.Errorf("sqlstore: storing inventory history: field %s has no ID", v.Field)
		}
		historyRows = append(historyRows, []any{v.ID, v.TenantID, v.DeviceID, v.Field, v.Category, v.SubjectID,
			boolInt(v.Hidden), blob(v.Value), blob(v.Ciphertext), v.KeyID, micros(v.CollectedAt), micros(v.ExpiresAt)})
	}
	if _, err := s.q.insertRows(ctx, "storing inventory values", `INSERT INTO inventory_values (`+currentColumns+`) VALUES `,
		` ON CONFLICT (tenant_id, device_id, field) DO UPDATE SET category = excluded.category,
		subject_id = excluded.subject_id, hidden = excluded.hidden, value = excluded.value,
		ciphertext = excluded.ciphertext, key_id = excluded.key_id, digest = excluded.digest,
		collected_at = excluded.collected_at, expires_at = excluded.expires_at`, currentRows); err != nil {
		return err
	}
	return s.q.insertAll(ctx, "storing inventory history", `INSERT INTO inventory_history (`+historyColumns+`) VALUES `,
		historyRows)
}

func (s inventoryStore) Refresh(ctx context.Context, tenantID, deviceID string, fields []string, collectedAt, expiresAt time.Time) error {
	return forChunks(fields, func(chunk []string) error {
		marks, args := placeholders(chunk, 5)
		_, err := s.q.exec(ctx, "refreshing inventory values", `UPDATE inventory_values SET collected_at = $3, expires_at = $4
			WHERE tenant_id = $1 AND device_id = $2 AND field IN (`+marks+`)`,
			append([]any{tenantID, deviceID, micros(collectedAt), micros(expiresAt)}, args...)...)
		return err
	})
}

// History is not capped like a Page: a subject's export asks for all of it.
func (s inventoryStore) History(ctx context.Context, tenantID, deviceID string, limit int) ([]store.InventoryValue, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+historyColumns+` FROM inventory_history
		WHERE tenant_id = $1 AND device_id = $2 ORDER BY collected_at DESC, id DESC LIMIT $3`, tenantID, deviceID, limit)
	return collect(rows, err, "reading inventory history", scanHistoryValue)
}

// ForSubject returns the current values (by device and field) followed by
// the history rows (by ID).
func (s inventoryStore) ForSubject(ctx context.Context, tenantID, subjectID string) ([]store.InventoryValue, error) {
	if err := requireID("reading a subject's inventory", "subject ID", subjectID); err != nil {
		return nil, err
	}
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+currentColumns+` FROM inventory_values
		WHERE tenant_id = $1 AND subject_id = $2 ORDER BY device_id, field`, tenantID, subjectID)
	current, err := collect(rows, err, "reading a subject's inventory", scanCurrentValue)
	if err != nil {
		return nil, err
	}
	rows, err = s.q.x.QueryContext(ctx, `SELECT `+historyColumns+` FROM inventory_history
		WHERE tenant_id = $1 AND subject_id = $2 ORDER BY id`, tenantID, subjectID)
	history, err := collect(rows, err, "reading a subject's inventory history", scanHistoryValue)
	return append(current, history...), err
}

// deleteBoth runs a DELETE on inventory_values and then inventory_history
// with the same condition and returns the rows removed from both.
func (s inventoryStore) deleteBoth(ctx context.Context, what, where string, args ...any) (int, error) {
	total := 0
	for _, table := range []string{"inventory_values", "inventory_history"} {
		n, err := s.q.exec(ctx, what, `DELETE FROM `+table+` WHERE `+where, args...)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func (s inventoryStore) DeleteDevice(ctx context.Context, tenantID, deviceID string) (int, error) {
	return s.deleteBoth(ctx, "deleting device inventory", `tenant_id = $1 AND device_id = $2`, tenantID, deviceID)
}

// DeleteCategory removes current and historical values alike: both are
// values of the category the tenant stopped collecting.
func (s inventoryStore) DeleteCategory(ctx context.Context, tenantID, ownership, category string) (int, error) {
	return s.deleteBoth(ctx, "deleting inventory category", `tenant_id = $1 AND category = $3 AND device_id IN
		(SELECT id FROM devices WHERE tenant_id = $1 AND ownership = $2)`, tenantID, ownership, category)
}

// HideCategory marks history as well as current values: both are values of
// the category the tenant no longer shows.
func (s inventoryStore) HideCategory(ctx context.Context, tenantID, ownership, category string) (int, error) {
	total := 0
	for _, table := range []string{"inventory_values", "inventory_history"} {
		n, err := s.q.exec(ctx, "hiding inventory category", `UPDATE `+table+` SET hidden = 1
			WHERE tenant_id = $1 AND category = $3 AND hidden = 0 AND device_id IN
			(SELECT id FROM devices WHERE tenant_id = $1 AND ownership = $2)`, tenantID, ownership, category)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// SetRetention with a retention of zero or less keeps current values while
// the device is enrolled and leaves history to its own expiry, because an
// expiry of 0 would keep a history row forever.
func (s inventoryStore) ShortenRetention(ctx context.Context, tenantID, category string, retention time.Duration) error {
	if retention <= 0 {
		return fmt.Errorf("sqlstore: shortening inventory retention: %v is no period", retention)
	}
	for _, table := range []string{"inventory_values", "inventory_history"} {
		if _, err := s.q.exec(ctx, "shortening inventory retention", `UPDATE `+table+` SET expires_at = collected_at + $3
			WHERE tenant_id = $1 AND category = $2 AND (expires_at = 0 OR expires_at > collected_at + $3)`,
			tenantID, category, retention.Microseconds()); err != nil {
			return err
		}
	}
	return nil
}

func (s inventoryStore) DeleteByKey(ctx context.Context, tenantID, keyID string) (int, error) {
	if err := requireID("deleting inventory by key", "key ID", keyID); err != nil {
		return 0, err
	}
	return s.deleteBoth(ctx, "deleting inventory by key", `tenant_id = $1 AND key_id = $2`, tenantID, keyID)
}

// PurgeExpired deletes from history first, then current values, at most
// limit rows in all (limit <= 0: defaultPurgeLimit).
func (s inventoryStore) PurgeExpired(ctx context.Context, now time.Time, limit int) (store.InventoryPurge, error) {
	if limit <= 0 {
		limit = defaultPurgeLimit
	}
	var counts map[purgeKey]int
	var devices map[string]map[string]bool
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		counts, devices = map[purgeKey]int{}, map[string]map[string]bool{} // a retried transaction starts afresh
		n, err := q.deleteReturning(ctx, "purging inventory history", `DELETE FROM inventory_history WHERE id IN
			(SELECT id FROM inventory_history WHERE expires_at > 0 AND expires_at <= $1 LIMIT $2)
			RETURNING tenant_id, category`, "", counts, micros(now), limit)
		if err != nil || n >= limit {
			return err
		}
		return q.purgeCurrentValues(ctx, now, limit-n, counts, devices)
	})
	if err != nil {
		return store.InventoryPurge{}, err
	}
	out := store.InventoryPurge{Counts: purgeCounts(counts), Devices: make(map[string][]string, len(devices))}
	for tenantID, ids := range devices {
		out.Devices[tenantID] = slices.Sorted(maps.Keys(ids))
	}
	return out, nil
}

// purgeCurrentValues deletes up to limit expired current values, adding
// them to counts and their devices, by tenant, to devices.
func (q *queries) purgeCurrentValues(ctx context.Context, now time.Time, limit int, counts map[purgeKey]int, devices map[string]map[string]bool) error {
	const what = "purging inventory values"
	rows, err := q.x.QueryContext(ctx, `DELETE FROM inventory_values
		WHERE (tenant_id, device_id, field) IN (SELECT tenant_id, device_id, field FROM inventory_values
		WHERE expires_at > 0 AND expires_at <= $1 LIMIT $2)
		RETURNING tenant_id, category, device_id`, micros(now), limit)
	if err != nil {
		return mapErr(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k purgeKey
		var deviceID string
		if err := rows.Scan(&k.tenant, &k.category, &deviceID); err != nil {
			return mapErr(what, err)
		}
		counts[k]++
		if devices[k.tenant] == nil {
			devices[k.tenant] = map[string]bool{}
		}
		devices[k.tenant][deviceID] = true
	}
	return mapErr(what, rows.Err())
}
