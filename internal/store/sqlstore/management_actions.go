package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type actionStore struct{ q *queries }

const actionColumns = `id, tenant_id, batch_id, device_id, action, reason, requested_by, approval_id, state, command_id,
	error, final, refusal_code, pin_sealed, created_at, updated_at`

func scanAction(s scanner) (store.DeviceAction, error) {
	var a store.DeviceAction
	var created, updated int64
	err := s.Scan(&a.ID, &a.TenantID, &a.BatchID, &a.DeviceID, &a.Action, &a.Reason, &a.RequestedBy, &a.ApprovalID,
		&a.State, &a.CommandID, &a.Error, &a.Final, &a.RefusalCode, &a.SealedPIN, &created, &updated)
	a.SealedPIN = nonEmpty(a.SealedPIN)
	a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
	return a, err
}

// Create returns ErrConflict when an action ID already exists; within Tx
// nothing of the batch is then kept.
func (s actionStore) Create(ctx context.Context, as []store.DeviceAction) error {
	if len(as) == 0 {
		return nil
	}
	rows := make([][]any, len(as))
	for i, a := range as {
		rows[i] = []any{a.ID, a.TenantID, a.BatchID, a.DeviceID, a.Action, a.Reason, a.RequestedBy, a.ApprovalID, a.State,
			a.CommandID, a.Error, boolInt(a.Final), a.RefusalCode, blob(a.SealedPIN), micros(a.CreatedAt), micros(a.UpdatedAt)}
	}
	return s.q.inWriteTx(ctx, func(q *queries) error {
		return q.insertAll(ctx, "creating device actions", `INSERT INTO device_actions (`+actionColumns+`) VALUES `, rows)
	})
}

func (s actionStore) Get(ctx context.Context, tenantID, id string) (store.DeviceAction, error) {
	a, err := scanAction(s.q.x.QueryRowContext(ctx, `SELECT `+actionColumns+` FROM device_actions
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return a, mapErr("reading device action", err)
}

func (s actionStore) Batch(ctx context.Context, tenantID, batchID string, p store.Page) ([]store.DeviceAction, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+actionColumns+` FROM device_actions
		WHERE tenant_id = $1 AND batch_id = $2 AND id > $3 ORDER BY id LIMIT $4`, tenantID, batchID, after, limit)
	return collect(rows, err, "listing batch actions", scanAction)
}

// BatchCounts omits states with no action; an unknown batch gives an empty map.
func (s actionStore) BatchCounts(ctx context.Context, tenantID, batchID string) (map[string]int, error) {
	type stateCount struct {
		state string
		n     int
	}
	rows, err := s.q.x.QueryContext(ctx, `SELECT state, COUNT(*) FROM device_actions
		WHERE tenant_id = $1 AND batch_id = $2 GROUP BY state`, tenantID, batchID)
	counts, err := collect(rows, err, "counting batch actions", func(s scanner) (stateCount, error) {
		var c stateCount
		return c, s.Scan(&c.state, &c.n)
	})
	out := make(map[string]int, len(counts))
	for _, c := range counts {
		out[c.state] = c.n
	}
	return out, err
}

// ForDevice pages newest first: Page.After is the ID of the last (oldest)
// action of the previous page.
func (s actionStore) ForDevice(ctx context.Context, tenantID, deviceID string, p store.Page) ([]store.DeviceAction, error) {
	after, limit := pageArgs(p)
	query := `SELECT ` + actionColumns + ` FROM device_actions WHERE tenant_id = $1 AND device_id = $2`
	args := []any{tenantID, deviceID}
	if after != "" {
		query += ` AND id < $3`
		args = append(args, after)
	}
	args = append(args, limit)
	rows, err := s.q.x.QueryContext(ctx, query+` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	return collect(rows, err, "listing device actions", scanAction)
}

// ForApproval refuses an empty approvalID, which would match every action
// that needed no approval.
func (s actionStore) ForApproval(ctx context.Context, tenantID, approvalID string) ([]store.DeviceAction, error) {
	if err := requireID("listing actions of approval", "approval ID", approvalID); err != nil {
		return nil, err
	}
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+actionColumns+` FROM device_actions
		WHERE tenant_id = $1 AND approval_id = $2 ORDER BY id`, tenantID, approvalID)
	return collect(rows, err, "listing actions of approval", scanAction)
}

// ByCommand refuses an empty commandID, which would match every action not
// yet queued.
func (s actionStore) ByCommand(ctx context.Context, tenantID, commandID string) (store.DeviceAction, error) {
	if err := requireID("reading action of command", "command ID", commandID); err != nil {
		return store.DeviceAction{}, err
	}
	a, err := scanAction(s.q.x.QueryRowContext(ctx, `SELECT `+actionColumns+` FROM device_actions
		WHERE tenant_id = $1 AND command_id = $2 ORDER BY id LIMIT 1`, tenantID, commandID))
	return a, mapErr("reading action of command", err)
}

func (s actionStore) LastQueued(ctx context.Context, tenantID, deviceID, action string) (store.DeviceAction, error) {
	a, err := scanAction(s.q.x.QueryRowContext(ctx, `SELECT `+actionColumns+` FROM device_actions
		WHERE tenant_id = $1 AND device_id = $2 AND action = $3 AND command_id <> '' ORDER BY id DESC LIMIT 1`,
		tenantID, deviceID, action))
	return a, mapErr("reading the device's last queued action", err)
}

func (s actionStore) LastPINTaken(ctx context.Context, tenantID, deviceID, action string) (store.DeviceAction, time.Time, error) {
	row := s.q.x.QueryRowContext(ctx, `SELECT `+qualified("a", actionColumns)+`, CASE WHEN a.state = $4 THEN a.updated_at ELSE c.sent_at END
		FROM device_actions a LEFT JOIN commands c ON c.tenant_id = a.tenant_id AND c.id = a.command_id
		WHERE a.tenant_id = $1 AND a.device_id = $2 AND a.action = $3 AND a.pin_sealed IS NOT NULL
		AND (a.state = $4 OR (c.state = $5 AND c.sent_at > 0)) ORDER BY a.id DESC LIMIT 1`,
		tenantID, deviceID, action, store.ActionDone, store.CommandSent)
	var taken int64
	a, err := scanAction(scanFunc(func(dest ...any) error { return row.Scan(append(dest, &taken)...) }))
	return a, fromMicros(taken), mapErr("reading the device's last action whose PIN it took", err)
}

// BatchDevices counts a device once however many actions of the batch name
// it (a leaving device's removal sent again joins its first one's batch).
func (s actionStore) BatchDevices(ctx context.Context, tenantID, batchID string) (int, error) {
	var n int
	err := s.q.x.QueryRowContext(ctx, `SELECT COUNT(DISTINCT device_id) FROM device_actions
		WHERE tenant_id = $1 AND batch_id = $2`, tenantID, batchID).Scan(&n)
	return n, mapErr("counting the devices of a batch", err)
}

func (s actionStore) Update(ctx context.Context, a store.DeviceAction) error {
	return s.q.execOne(ctx, "updating device action", `UPDATE device_actions SET state = $3, command_id = $4, error = $5,
		final = $6, refusal_code = $7, updated_at = $8 WHERE tenant_id = $1 AND id = $2`, a.TenantID, a.ID, a.State, a.CommandID, a.Error,
		boolInt(a.Final), a.RefusalCode, micros(a.UpdatedAt))
}

func (s actionStore) KeepPIN(ctx context.Context, tenantID, id string, sealed []byte) error {
	if len(sealed) == 0 {
		return fmt.Errorf("sqlstore: keeping action %s's PIN: nothing sealed", id)
	}
	return s.q.execOne(ctx, "keeping an action's PIN", `UPDATE device_actions SET pin_sealed = $3 WHERE tenant_id = $1 AND id = $2`,
		tenantID, id, sealed)
}

func (s actionStore) WithPINs(ctx context.Context, afterID string, limit int) ([]store.DeviceAction, error) {
	_, limit = pageArgs(store.Page{Limit: limit})
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+actionColumns+` FROM device_actions
		WHERE pin_sealed IS NOT NULL AND id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	return collect(rows, err, "listing actions with a PIN", scanAction)
}

// PurgeFinished picks its batch with every exception of the contract in
// the one statement, so a batch never holds a row that must stay, and the
// purger's loop ends once only those are left.
func (s actionStore) PurgeFinished(ctx context.Context, cutoff time.Time, limit int) ([]store.PurgeCount, error) {
	if limit <= 0 {
		limit = defaultPurgeLimit
	}
	var counts map[purgeKey]int
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		counts = map[purgeKey]int{} // a retried transaction starts afresh
		_, err := q.deleteReturning(ctx, "purging finished device actions", `DELETE FROM device_actions WHERE id IN
			(SELECT a.id FROM device_actions a WHERE a.updated_at < $1
			AND (a.state IN ($3, $4, $5, $6, $7)
				OR (a.state = $8 AND NOT EXISTS (SELECT 1 FROM approvals p
					WHERE p.tenant_id = a.tenant_id AND p.id = a.approval_id AND p.expires_at >= $1)))
			AND NOT (a.state = $3 AND a.pin_sealed IS NOT NULL AND NOT EXISTS (SELECT 1 FROM device_actions n
				WHERE n.tenant_id = a.tenant_id AND n.device_id = a.device_id AND n.action = a.action
				AND n.state = $3 AND n.pin_sealed IS NOT NULL AND n.id > a.id)
				AND (a.action <> $11 OR EXISTS (SELECT 1 FROM devices h WHERE h.tenant_id = a.tenant_id AND h.id = a.device_id
					AND h.last_seen_at <= a.updated_at + $12)))
			AND NOT (a.action = $9 AND EXISTS (SELECT 1 FROM devices d
				WHERE d.tenant_id = a.tenant_id AND d.id = a.device_id AND d.state = $10))
			LIMIT $2) RETURNING tenant_id`, actionsCategory, counts, micros(cutoff), limit,
			store.ActionDone, store.ActionFailed, store.ActionRefused, store.ActionRejected, store.ActionExpired,
			store.ActionAwaitingApproval, retireAction, store.DeviceLeaving, lockAction, time.Minute.Microseconds())
		return err
	})
	if err != nil {
		return nil, err
	}
	return purgeCounts(counts), nil
}

const (
	// actionsCategory is what purged actions are counted under.
	actionsCategory = "remote_actions"
	// retireAction is actions.Retire, a leaving device's removal.
	retireAction = "retire"
	// lockAction is actions.Lock: its PIN is kept while the Mac has not
	// checked in since it took it (a minute's leeway, as the last-seen
	// time may be written before), as actions.heldAtLock judges it.
	lockAction = "lock"
)

type appStore struct{ q *queries }

const appColumns = `id, tenant_id, identifier, name, kind, store_id, manifest_url, created_at, updated_at`

func scanApp(s scanner) (store.CatalogueApp, error) {
	var a store.CatalogueApp
	var created, updated int64
	err := s.Scan(&a.ID, &a.TenantID, &a.Identifier, &a.Name, &a.Kind, &a.StoreID, &a.ManifestURL, &created, &updated)
	a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
	return a, err
}

func (s appStore) Create(ctx context.Context, a store.CatalogueApp) error {
	return s.q.insert(ctx, "adding catalogue app", `INSERT INTO catalogue_apps (`+appColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, a.ID, a.TenantID, a.Identifier, a.Name, a.Kind, a.StoreID,
		a.ManifestURL, micros(a.CreatedAt), micros(a.UpdatedAt))
}

func (s appStore) Get(ctx context.Context, tenantID, id string) (store.CatalogueApp, error) {
	a, err := scanApp(s.q.x.QueryRowContext(ctx, `SELECT `+appColumns+` FROM catalogue_apps
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return a, mapErr("reading catalogue app", err)
}

func (s appStore) List(ctx context.Context, tenantID string, p store.Page) ([]store.CatalogueApp, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+appColumns+` FROM catalogue_apps
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing catalogue apps", scanApp)
}

func (s appStore) Update(ctx context.Context, a store.CatalogueApp) error {
	return s.q.execOne(ctx, "updating catalogue app", `UPDATE catalogue_apps SET name = $3, kind = $4, store_id = $5,
		manifest_url = $6, updated_at = $7 WHERE tenant_id = $1 AND id = $2`,
		a.TenantID, a.ID, a.Name, a.Kind, a.StoreID, a.ManifestURL, micros(a.UpdatedAt))
}

func (s appStore) Delete(ctx context.Context, tenantID, id string) error {
	return s.q.inWriteTx(ctx, func(q *queries) error {
		if err := q.execOne(ctx, "deleting catalogue app", `DELETE FROM catalogue_apps WHERE tenant_id = $1 AND id = $2`,
			tenantID, id); err != nil {
			return err
		}
		_, err := q.exec(ctx, "deleting app assignments", `DELETE FROM app_assignments WHERE tenant_id = $1 AND app_id = $2`,
			tenantID, id)
		return err
	})
}

// Assign returns ErrNotFound when the app or the group is not the tenant's;
// the checks and the upsert are one statement.
func (s appStore) Assign(ctx context.Context, as store.AppAssignment) error {
	return s.q.execOne(ctx, "assigning app", `INSERT INTO app_assignments (tenant_id, app_id, group_id, mode)
		SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT)
		WHERE EXISTS (SELECT 1 FROM catalogue_apps WHERE tenant_id = $1 AND id = $2)
		AND EXISTS (SELECT 1 FROM device_groups WHERE tenant_id = $1 AND id = $3)
		ON CONFLICT (app_id, group_id) DO UPDATE SET mode = excluded.mode
		WHERE app_assignments.tenant_id = excluded.tenant_id`, as.TenantID, as.AppID, as.GroupID, as.Mode)
}

// Unassign returns ErrNotFound when the app was not assigned to the group
// in the tenant.
func (s appStore) Unassign(ctx context.Context, tenantID, appID, groupID string) error {
	return s.q.execOne(ctx, "unassigning app", `DELETE FROM app_assignments
		WHERE tenant_id = $1 AND app_id = $2 AND group_id = $3`, tenantID, appID, groupID)
}

func scanAppAssignment(s scanner) (store.AppAssignment, error) {
	var a store.AppAssignment
	err := s.Scan(&a.TenantID, &a.AppID, &a.GroupID, &a.Mode)
	return a, err
}

// Assignments returns the app's assignments by group ID.
func (s appStore) Assignments(ctx context.Context, tenantID, appID string) ([]store.AppAssignment, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT tenant_id, app_id, group_id, mode FROM app_assignments
		WHERE tenant_id = $1 AND app_id = $2 ORDER BY group_id`, tenantID, appID)
	return collect(rows, err, "listing app assignments", scanAppAssignment)
}

// ForGroups returns the assignments by app ID, then group ID; at most
// maxInList groups per call.
func (s appStore) ForGroups(ctx context.Context, tenantID string, groupIDs []string) ([]store.AppAssignment, error) {
	groups := uniqueSorted(groupIDs)
	if len(groups) > maxInList {
		return nil, fmt.Errorf("sqlstore: listing app assignments of groups: %d groups, at most %d per call", len(groups), maxInList)
	}
	if len(groups) == 0 {
		return nil, nil
	}
	marks, args := placeholders(groups, 2)
	rows, err := s.q.x.QueryContext(ctx, `SELECT tenant_id, app_id, group_id, mode FROM app_assignments
		WHERE tenant_id = $1 AND group_id IN (`+marks+`) ORDER BY app_id, group_id`, append([]any{tenantID}, args...)...)
	return collect(rows, err, "listing app assignments of groups", scanAppAssignment)
}
