package sqlstore

import (
	"context"
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
		rows, err := q.x.QueryContext(ctx, `SELECT tenant_id, id FROM devices WHERE deprovisioned_at > 0 AND deprovisioned_at < $1
			LIMIT $2`, micros(before), limit)
		due, err := collect(rows, err, "listing deprovisioned devices", func(sc scanner) (tenantDevice, error) {
			var d tenantDevice
			return d, sc.Scan(&d.tenantID, &d.id)
		})
		if err != nil {
			return err
		}
		byTenant := map[string][]string{}
		for _, d := range due {
			byTenant[d.tenantID] = append(byTenant[d.tenantID], d.id)
		}
		for tenantID, ids := range byTenant {
			if err := forChunks(ids, func(chunk []string) error {
				n, err := q.purgeDevices(ctx, tenantID, chunk)
				if n > 0 {
					counts[purgeKey{tenantID, "deprovisioned_devices"}] += n
				}
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(counts) == 0 {
		return purgeCounts(counts), err
	}
	// Management rows of the purged devices go with them.
	return purgeCounts(counts), s.q.inWriteTx(ctx, func(q *queries) error {
		for _, table := range []string{"group_members", "device_profiles", "device_compliance", "compliance_events", "device_actions"} {
			if _, err := q.exec(ctx, "purging "+table, `DELETE FROM `+table+
				` WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = `+table+`.device_id)`); err != nil {
				return err
			}
		}
		return nil
	})
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

// purgeDevices deletes a batch of one tenant's devices with their MDM
// channels, command queues and enrolments, through those tables' (tenant, device)
// indexes: they grow with the fleet, so they are not scanned for orphans
// as the management tables are. It returns how many devices went.
func (q *queries) purgeDevices(ctx context.Context, tenantID string, ids []string) (int, error) {
	marks, args := placeholders(ids, 2)
	args = append([]any{tenantID}, args...)
	for _, table := range []string{"apple_channels", "apple_user_channels", "commands", "enrolments"} {
		if _, err := q.exec(ctx, "purging "+table, `DELETE FROM `+table+` WHERE tenant_id = $1 AND device_id IN (`+marks+`)`, args...); err != nil {
			return 0, err
		}
	}
	return q.exec(ctx, "purging deprovisioned devices", `DELETE FROM devices WHERE tenant_id = $1 AND id IN (`+marks+`)`, args...)
}
