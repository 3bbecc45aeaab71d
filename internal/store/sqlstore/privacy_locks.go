package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// lockClause returns the row-lock suffix for reads that must serialise with
// writers inside Tx; SQLite write transactions are exclusive already.
func (q *queries) lockClause(mode string) string {
	if q.inTx && q.db.dialect.name == "postgres" {
		return " FOR " + mode
	}
	return ""
}

func (s subjectStore) Lock(ctx context.Context, tenantID, id string) (store.Subject, error) {
	x, err := scanSubject(s.q.x.QueryRowContext(ctx, `SELECT `+subjectColumns+` FROM subjects
		WHERE tenant_id = $1 AND id = $2`+s.q.lockClause("UPDATE"), tenantID, id))
	return x, mapErr("locking subject", err)
}

func (s deviceStore) Lock(ctx context.Context, tenantID, id string) (store.Device, error) {
	d, err := scanDevice(s.q.x.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE tenant_id = $1 AND id = $2`+s.q.lockClause("UPDATE"), tenantID, id))
	return d, mapErr("locking device", err)
}

func (s privacySettingsStore) GetShared(ctx context.Context, tenantID string) ([]byte, int64, error) {
	var doc string
	var version int64
	err := s.q.x.QueryRowContext(ctx, `SELECT doc, version FROM privacy_settings WHERE tenant_id = $1`+s.q.lockClause("SHARE"),
		tenantID).Scan(&doc, &version)
	if err != nil {
		return nil, 0, mapErr("reading privacy settings", err)
	}
	return []byte(doc), version, nil
}

func (s revealStore) DeleteForDevice(ctx context.Context, tenantID, deviceID string) (int, error) {
	return s.q.exec(ctx, "deleting reveals", `DELETE FROM reveals WHERE tenant_id = $1 AND device_id = $2`, tenantID, deviceID)
}

func (s revealStore) PurgeExpired(ctx context.Context, before time.Time, limit int) ([]store.PurgeCount, error) {
	return s.q.purgeByID(ctx, "reveals", "reveals", `expires_at < $1`, micros(before), limit)
}

func (s notificationStore) PurgeBefore(ctx context.Context, cutoff time.Time, limit int) ([]store.PurgeCount, error) {
	return s.q.purgeByID(ctx, "notifications", "notifications", `state <> 'queued' AND created_at < $1`, micros(cutoff), limit)
}

func (s enrolmentStore) PurgeUnused(ctx context.Context, cutoff time.Time, limit int) ([]store.PurgeCount, error) {
	return s.q.purgeByID(ctx, "enrolments", "unused_enrolments", `used_at = 0 AND expires_at < $1`, micros(cutoff), limit)
}

func (s approvalStore) PurgeBefore(ctx context.Context, cutoff time.Time, limit int) ([]store.PurgeCount, error) {
	return s.q.purgeByID(ctx, "approvals", "approvals", `expires_at < $1`, micros(cutoff), limit)
}

func (s deviceStore) PurgeDeprovisioned(ctx context.Context, before time.Time, limit int) ([]store.PurgeCount, error) {
	if limit <= 0 {
		limit = defaultPurgeLimit
	}
	counts := map[purgeKey]int{}
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		// Oldest first, so that the next call goes on with a device this
		// one left half emptied. No device costs less than its own row.
		rows, err := q.x.QueryContext(ctx, `SELECT tenant_id, id FROM devices WHERE deprovisioned_at > 0 AND deprovisioned_at < $1
			ORDER BY deprovisioned_at, tenant_id, id LIMIT $2`, micros(before), limit)
		due, err := collect(rows, err, "listing deprovisioned devices", func(sc scanner) (tenantDevice, error) {
			var d tenantDevice
			return d, sc.Scan(&d.tenantID, &d.id)
		})
		if err != nil {
			return err
		}
		budget := limit
		for len(due) > 0 && budget > 0 {
			// The longest run of one tenant's devices, at most an IN list.
			n := 1
			for n < len(due) && n < maxInList && due[n].tenantID == due[0].tenantID {
				n++
			}
			ids := make([]string, n)
			for i, d := range due[:n] {
				ids[i] = d.id
			}
			removed, err := q.purgeDevices(ctx, due[0].tenantID, ids, before, budget, counts)
			if err != nil {
				return err
			}
			budget -= removed
			due = due[n:]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return purgeCounts(counts), nil
}

// purgeByID deletes up to limit rows of table matching where (with $1 bound
// to arg) and counts them per tenant under category.
func (q *queries) purgeByID(ctx context.Context, table, category, where string, arg any, limit int) ([]store.PurgeCount, error) {
	if limit <= 0 {
		limit = defaultPurgeLimit
	}
	var counts map[purgeKey]int
	err := q.inWriteTx(ctx, func(q *queries) error {
		counts = map[purgeKey]int{}
		_, err := q.deleteReturning(ctx, "purging "+table, `DELETE FROM `+table+` WHERE id IN (SELECT id FROM `+table+
			` WHERE `+where+` LIMIT $2) RETURNING tenant_id`, category, counts, arg, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return purgeCounts(counts), nil
}

type tenantDevice struct{ tenantID, id string }

// departedDeviceRows are the tables whose rows belong to a device and go
// when retention purges it, with the category their purge is counted
// under. Rows are found by device through an index, never by scanning for
// orphans; where the primary key leads with device_id it is that index
// (byKey), which SQLite, without statistics, would pass over for one that
// leads with tenant_id but not device_id, and read all the tenant's rows.
// The largest table, the command queue, comes first.
var departedDeviceRows = []struct {
	table, category string
	byKey           bool
	where           string
}{
	{"commands", "deprovisioned_device_commands", false, ""},
	{"device_actions", "deprovisioned_device_actions", false, ""},
	{"compliance_events", "deprovisioned_device_compliance_events", false, ""},
	{"device_compliance", "deprovisioned_device_compliance", true, ""},
	{"device_profiles", "deprovisioned_device_profiles", true, ""},
	{"group_members", "deprovisioned_device_group_members", false, ""},
	{"apple_user_channels", "deprovisioned_device_user_channels", false, ""},
	{"apple_channels", "deprovisioned_device_channels", false, ""},
	// The condition lets the partial index enrolments_device serve.
	{"enrolments", "deprovisioned_device_enrolments", false, " AND device_id <> ''"},
}

// deleteFirst returns a statement deleting the rows of table (named alias
// in where) that where, ending in a LIMIT, selects: by rowid on SQLite; by
// ctid on PostgreSQL, whose planner, taking an IN subquery for as many
// rows as its statistics match, would rather scan the whole table than
// look up the few the LIMIT lets through.
func (q *queries) deleteFirst(table, alias, where string) string {
	id, array := "rowid", `rowid IN (%s)`
	if q.db.dialect.name != sqliteDialect.name {
		id, array = "ctid", `ctid = ANY(ARRAY(%s))`
	}
	if alias != "" {
		id = alias + "." + id
	}
	return `DELETE FROM ` + table + ` WHERE ` + fmt.Sprintf(array, `SELECT `+id+` FROM `+table+` `+alias+where)
}

// purgeDevices deletes at most budget rows of one tenant's deprovisioned
// devices ids: first the rows that belong to them (departedDeviceRows),
// then the devices none is left of. A device row therefore goes last, in
// the transaction that finds it bare: a purge cut short leaves devices
// with some of their rows, which the next one finishes. It adds what it
// removed to counts and returns how many rows that was.
func (q *queries) purgeDevices(ctx context.Context, tenantID string, ids []string, before time.Time, budget int,
	counts map[purgeKey]int) (int, error) {
	marks, args := placeholders(ids, 3)
	args = append([]any{tenantID, nil}, args...)
	// The tenant's column, made unusable for an index on SQLite (unary +)
	// where the primary key is the index to use.
	tenantOf := func(byKey bool, alias string) string {
		if byKey && q.db.dialect.name == sqliteDialect.name {
			return "+" + alias + "tenant_id"
		}
		return alias + "tenant_id"
	}
	removed := 0
	for _, t := range departedDeviceRows {
		if removed == budget {
			return removed, nil
		}
		args[1] = budget - removed
		n, err := q.exec(ctx, "purging the "+t.table+" of deprovisioned devices", q.deleteFirst(t.table, "",
			` WHERE `+tenantOf(t.byKey, "")+` = $1 AND device_id IN (`+marks+`)`+t.where+` LIMIT $2`), args...)
		if err != nil {
			return removed, err
		}
		if n > 0 {
			counts[purgeKey{tenantID, t.category}] += n
			removed += n
		}
	}
	if removed == budget {
		return removed, nil
	}
	// A device some row of which is still there (one written since by a
	// writer that committed first) stays for the next purge.
	var bare strings.Builder
	for _, t := range departedDeviceRows {
		bare.WriteString(` AND NOT EXISTS (SELECT 1 FROM ` + t.table + ` x WHERE ` + tenantOf(t.byKey, "x.") + ` = d.tenant_id AND x.device_id = d.id` +
			strings.ReplaceAll(t.where, "device_id", "x.device_id") + `)`)
	}
	args[1] = budget - removed
	n, err := q.exec(ctx, "purging deprovisioned devices", q.deleteFirst("devices", "d",
		` WHERE d.tenant_id = $1 AND d.id IN (`+marks+`) AND d.deprovisioned_at > 0 AND d.deprovisioned_at < $`+
			strconv.Itoa(len(args)+1)+bare.String()+` LIMIT $2`), append(args, micros(before))...)
	if err != nil {
		return removed, err
	}
	if n > 0 {
		counts[purgeKey{tenantID, "deprovisioned_devices"}] += n
	}
	return removed + n, nil
}
