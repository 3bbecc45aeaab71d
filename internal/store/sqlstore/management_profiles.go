package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type profileStore struct{ q *queries }

const profileColumns = `id, tenant_id, name, identifier, kind, platform, definition, sealed, digest, payload_types,
	created_by, created_at, updated_at`

func scanProfile(s scanner) (store.ConfigProfile, error) {
	var p store.ConfigProfile
	var types string
	var created, updated int64
	if err := s.Scan(&p.ID, &p.TenantID, &p.Name, &p.Identifier, &p.Kind, &p.Platform, &p.Definition, &p.Sealed,
		&p.Digest, &types, &p.CreatedBy, &created, &updated); err != nil {
		return p, err
	}
	p.Definition, p.Sealed = nonEmpty(p.Definition), nonEmpty(p.Sealed)
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	var err error
	if types != "" {
		p.PayloadTypes, err = decodeStrings(types)
	}
	return p, err
}

func (s profileStore) Create(ctx context.Context, p store.ConfigProfile) error {
	types, err := encodeStrings(p.PayloadTypes)
	if err != nil {
		return fmt.Errorf("sqlstore: encoding payload types: %w", err)
	}
	return s.q.insert(ctx, "creating profile", `INSERT INTO config_profiles (`+profileColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		p.ID, p.TenantID, p.Name, p.Identifier, p.Kind, p.Platform, blob(p.Definition), blob(p.Sealed), p.Digest, types,
		p.CreatedBy, micros(p.CreatedAt), micros(p.UpdatedAt))
}

func (s profileStore) Get(ctx context.Context, tenantID, id string) (store.ConfigProfile, error) {
	p, err := scanProfile(s.q.x.QueryRowContext(ctx, `SELECT `+profileColumns+` FROM config_profiles
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return p, mapErr("reading profile", err)
}

func (s profileStore) List(ctx context.Context, tenantID string, pg store.Page) ([]store.ConfigProfile, error) {
	after, limit := pageArgs(pg)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+profileColumns+` FROM config_profiles
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing profiles", scanProfile)
}

func (s profileStore) Update(ctx context.Context, p store.ConfigProfile) error {
	types, err := encodeStrings(p.PayloadTypes)
	if err != nil {
		return fmt.Errorf("sqlstore: encoding payload types: %w", err)
	}
	return s.q.execOne(ctx, "updating profile", `UPDATE config_profiles SET name = $3, definition = $4, sealed = $5,
		digest = $6, payload_types = $7, updated_at = $8 WHERE tenant_id = $1 AND id = $2`,
		p.TenantID, p.ID, p.Name, blob(p.Definition), blob(p.Sealed), p.Digest, types, micros(p.UpdatedAt))
}

func (s profileStore) Share(ctx context.Context, tenantID string, ids []string) error {
	lock := s.q.lockClause("SHARE")
	if lock == "" || len(ids) == 0 {
		return nil // SQLite's writer holds the whole database already
	}
	return forChunks(ids, func(chunk []string) error {
		marks, args := placeholders(chunk, 2)
		rows, err := s.q.x.QueryContext(ctx, `SELECT id FROM config_profiles WHERE tenant_id = $1 AND id IN (`+marks+`)
			ORDER BY id`+lock, append([]any{tenantID}, args...)...)
		_, err = collect(rows, err, "holding profiles", func(sc scanner) (string, error) {
			var id string
			return id, sc.Scan(&id)
		})
		return err
	})
}

// Delete removes the profile with its assignments and device states,
// atomically; ErrNotFound when the profile is not the tenant's.
func (s profileStore) Delete(ctx context.Context, tenantID, id string) error {
	return s.q.inWriteTx(ctx, func(q *queries) error {
		if err := q.execOne(ctx, "deleting profile", `DELETE FROM config_profiles WHERE tenant_id = $1 AND id = $2`,
			tenantID, id); err != nil {
			return err
		}
		for _, table := range []string{"profile_assignments", "device_profiles"} {
			if _, err := q.exec(ctx, "deleting profile from "+table, `DELETE FROM `+table+`
				WHERE tenant_id = $1 AND profile_id = $2`, tenantID, id); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s profileStore) Assign(ctx context.Context, tenantID, profileID, groupID string, at time.Time) error {
	if err := s.q.requireRow(ctx, "assigning profile", "config_profiles", tenantID, profileID); err != nil {
		return err
	}
	if err := s.q.requireRow(ctx, "assigning profile", "device_groups", tenantID, groupID); err != nil {
		return err
	}
	_, err := s.q.exec(ctx, "assigning profile", `INSERT INTO profile_assignments (tenant_id, profile_id, group_id, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, tenantID, profileID, groupID, micros(at))
	return err
}

// Unassign returns ErrNotFound when the profile was not assigned to the
// group in the tenant.
func (s profileStore) Unassign(ctx context.Context, tenantID, profileID, groupID string) error {
	return s.q.execOne(ctx, "unassigning profile", `DELETE FROM profile_assignments
		WHERE tenant_id = $1 AND profile_id = $2 AND group_id = $3`, tenantID, profileID, groupID)
}

// Groups returns the group IDs sorted.
func (s profileStore) Groups(ctx context.Context, tenantID, profileID string) ([]string, error) {
	return s.q.stringList(ctx, "listing profile groups", `SELECT group_id FROM profile_assignments
		WHERE tenant_id = $1 AND profile_id = $2 ORDER BY group_id`, tenantID, profileID)
}

// ForGroups returns each profile once, by ID.
func (s profileStore) ForGroups(ctx context.Context, tenantID string, groupIDs []string) ([]store.ConfigProfile, error) {
	groups := uniqueSorted(groupIDs)
	if len(groups) > maxInList {
		return nil, fmt.Errorf("sqlstore: listing profiles of groups: %d groups, at most %d per call", len(groups), maxInList)
	}
	if len(groups) == 0 {
		return nil, nil
	}
	marks, args := placeholders(groups, 2)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+profileColumns+` FROM config_profiles p WHERE tenant_id = $1
		AND EXISTS (SELECT 1 FROM profile_assignments a WHERE a.tenant_id = $1 AND a.profile_id = p.id
		AND a.group_id IN (`+marks+`)) ORDER BY id`, append([]any{tenantID}, args...)...)
	return collect(rows, err, "listing profiles of groups", scanProfile)
}

type deviceProfileStore struct{ q *queries }

const deviceProfileColumns = `tenant_id, device_id, profile_id, digest, status, command_id, error, updated_at, attempts, retry_at`

func scanDeviceProfile(s scanner) (store.DeviceProfile, error) {
	var dp store.DeviceProfile
	var updated, retry int64
	err := s.Scan(&dp.TenantID, &dp.DeviceID, &dp.ProfileID, &dp.Digest, &dp.Status, &dp.CommandID, &dp.Error, &updated,
		&dp.Attempts, &retry)
	dp.UpdatedAt, dp.RetryAt = fromMicros(updated), fromMicros(retry)
	return dp, err
}

// Put returns ErrNotFound when the device or the profile is not the
// tenant's. The device and profile checks and the upsert are one statement.
func (s deviceProfileStore) Put(ctx context.Context, dp store.DeviceProfile) error {
	return s.q.execOne(ctx, "storing device profile state", `INSERT INTO device_profiles (`+deviceProfileColumns+`)
		SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS TEXT), CAST($6 AS TEXT),
			CAST($7 AS TEXT), CAST($8 AS BIGINT), CAST($9 AS INTEGER), CAST($10 AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2)
		AND EXISTS (SELECT 1 FROM config_profiles WHERE tenant_id = $1 AND id = $3)
		ON CONFLICT (device_id, profile_id) DO UPDATE SET digest = excluded.digest, status = excluded.status,
			command_id = excluded.command_id, error = excluded.error, updated_at = excluded.updated_at,
			attempts = excluded.attempts, retry_at = excluded.retry_at
		WHERE device_profiles.tenant_id = excluded.tenant_id`,
		dp.TenantID, dp.DeviceID, dp.ProfileID, dp.Digest, dp.Status, dp.CommandID, dp.Error, micros(dp.UpdatedAt),
		dp.Attempts, micros(dp.RetryAt))
}

func (s deviceProfileStore) Get(ctx context.Context, tenantID, deviceID, profileID string) (store.DeviceProfile, error) {
	dp, err := scanDeviceProfile(s.q.x.QueryRowContext(ctx, `SELECT `+deviceProfileColumns+` FROM device_profiles
		WHERE tenant_id = $1 AND device_id = $2 AND profile_id = $3`, tenantID, deviceID, profileID))
	return dp, mapErr("reading device profile state", err)
}

// ForDevice returns the states by profile ID.
func (s deviceProfileStore) ForDevice(ctx context.Context, tenantID, deviceID string) ([]store.DeviceProfile, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+deviceProfileColumns+` FROM device_profiles
		WHERE tenant_id = $1 AND device_id = $2 ORDER BY profile_id`, tenantID, deviceID)
	return collect(rows, err, "listing device profile states", scanDeviceProfile)
}

// ForProfile pages by device ID: Page.After is a device ID.
func (s deviceProfileStore) ForProfile(ctx context.Context, tenantID, profileID string, p store.Page) ([]store.DeviceProfile, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+deviceProfileColumns+` FROM device_profiles
		WHERE tenant_id = $1 AND profile_id = $2 AND device_id > $3 ORDER BY device_id LIMIT $4`,
		tenantID, profileID, after, limit)
	return collect(rows, err, "listing profile device states", scanDeviceProfile)
}

// ByCommand refuses an empty commandID, which would match every state not
// waiting on a command.
func (s deviceProfileStore) ByCommand(ctx context.Context, tenantID, commandID string) (store.DeviceProfile, error) {
	if err := requireID("reading device profile state", "command ID", commandID); err != nil {
		return store.DeviceProfile{}, err
	}
	dp, err := scanDeviceProfile(s.q.x.QueryRowContext(ctx, `SELECT `+deviceProfileColumns+` FROM device_profiles
		WHERE tenant_id = $1 AND command_id = $2 ORDER BY device_id, profile_id LIMIT 1`, tenantID, commandID))
	return dp, mapErr("reading device profile state", err)
}

// DueForRetry reads the partial index of states with a retry set, which
// holds only failed states: the hourly retry never scans the rest.
func (s deviceProfileStore) DueForRetry(ctx context.Context, tenantID string, at time.Time, p store.Page) ([]string, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT DISTINCT device_id FROM device_profiles
		WHERE tenant_id = $1 AND retry_at > 0 AND retry_at <= $2 AND device_id > $3 ORDER BY device_id LIMIT $4`,
		tenantID, micros(at), after, limit)
	return collect(rows, err, "listing devices with profiles due for retry", func(sc scanner) (string, error) {
		var id string
		return id, sc.Scan(&id)
	})
}

func (s deviceProfileStore) Delete(ctx context.Context, tenantID, deviceID, profileID string) error {
	return s.q.execOne(ctx, "deleting device profile state", `DELETE FROM device_profiles
		WHERE tenant_id = $1 AND device_id = $2 AND profile_id = $3`, tenantID, deviceID, profileID)
}
