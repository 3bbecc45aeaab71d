package sqlstore

import (
	"context"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type appleUserChannelStore struct{ q *queries }

const appleUserChannelColumns = `id, tenant_id, device_id, user_index, account_index, topic, push_token, push_magic, checked_out,
	last_checkin, push_due_at, push_attempts, created_at, updated_at, token_at`

func scanAppleUserChannel(s scanner) (store.AppleUserChannel, error) {
	var c store.AppleUserChannel
	var last, due, created, updated, tokenAt int64
	err := s.Scan(&c.ID, &c.TenantID, &c.DeviceID, &c.UserIndex, &c.AccountIndex, &c.Topic, &c.PushToken, &c.PushMagic,
		&c.CheckedOut, &last, &due, &c.PushAttempts, &created, &updated, &tokenAt)
	c.LastCheckin, c.PushDueAt, c.CreatedAt, c.UpdatedAt = fromMicros(last), fromMicros(due), fromMicros(created), fromMicros(updated)
	c.TokenAt = fromMicros(tokenAt)
	c.PushToken = nonEmpty(c.PushToken)
	return c, err
}

func (s appleUserChannelStore) Open(ctx context.Context, c store.AppleUserChannel) (store.AppleUserChannel, error) {
	var out store.AppleUserChannel
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		var err error
		// Only an open channel has a user index to conflict on. A new token
		// starts its push attempts afresh; a push due stays due, for the new
		// token.
		out, err = scanAppleUserChannel(q.x.QueryRowContext(ctx, `INSERT INTO apple_user_channels (`+appleUserChannelColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, 0, 0, $10, $10, $10)
			ON CONFLICT (tenant_id, device_id, user_index) DO UPDATE SET account_index = excluded.account_index,
				topic = excluded.topic, push_token = excluded.push_token, push_magic = excluded.push_magic,
				last_checkin = excluded.last_checkin, push_attempts = 0, updated_at = excluded.updated_at,
				token_at = excluded.token_at
			RETURNING `+appleUserChannelColumns,
			c.ID, c.TenantID, c.DeviceID, c.UserIndex, c.AccountIndex, c.Topic, blob(c.PushToken), c.PushMagic,
			micros(c.LastCheckin), micros(c.UpdatedAt)))
		return mapErr("opening a user channel", err)
	})
	return out, err
}

func (s appleUserChannelStore) Get(ctx context.Context, tenantID, id string) (store.AppleUserChannel, error) {
	c, err := scanAppleUserChannel(s.q.x.QueryRowContext(ctx, `SELECT `+appleUserChannelColumns+` FROM apple_user_channels
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return c, mapErr("reading a user channel", err)
}

func (s appleUserChannelStore) Find(ctx context.Context, tenantID, deviceID string, userIndex []byte) (store.AppleUserChannel, error) {
	c, err := scanAppleUserChannel(s.q.x.QueryRowContext(ctx, `SELECT `+appleUserChannelColumns+` FROM apple_user_channels
		WHERE tenant_id = $1 AND device_id = $2 AND user_index = $3`, tenantID, deviceID, userIndex))
	return c, mapErr("reading a user channel", err)
}

func (s appleUserChannelStore) List(ctx context.Context, tenantID, deviceID string) ([]store.AppleUserChannel, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+appleUserChannelColumns+` FROM apple_user_channels
		WHERE tenant_id = $1 AND device_id = $2 ORDER BY created_at, id`, tenantID, deviceID)
	return collect(rows, err, "listing user channels", scanAppleUserChannel)
}

func (s appleUserChannelStore) CountOpen(ctx context.Context, tenantID, deviceID string) (int, error) {
	var n int
	err := s.q.x.QueryRowContext(ctx, `SELECT COUNT(*) FROM apple_user_channels
		WHERE tenant_id = $1 AND device_id = $2 AND checked_out = 0`, tenantID, deviceID).Scan(&n)
	return n, mapErr("counting open user channels", err)
}

func (s appleUserChannelStore) Touch(ctx context.Context, tenantID, id string, at time.Time) error {
	return s.q.execOne(ctx, "recording a user check-in", `UPDATE apple_user_channels SET last_checkin = $3, updated_at = $3
		WHERE tenant_id = $1 AND id = $2 AND checked_out = 0`, tenantID, id, micros(at))
}

// closeUserChannel closes channels for good, forgetting whose they were.
const closeUserChannel = `UPDATE apple_user_channels SET checked_out = 1, user_index = NULL, account_index = NULL,
	push_token = NULL, push_magic = '', push_due_at = 0, updated_at = $3 WHERE tenant_id = $1`

func (s appleUserChannelStore) CheckOut(ctx context.Context, tenantID, id string, at time.Time) error {
	_, err := s.q.exec(ctx, "checking out a user channel", closeUserChannel+` AND id = $2`, tenantID, id, micros(at))
	return err
}

func (s appleUserChannelStore) CheckOutDevice(ctx context.Context, tenantID, deviceID string, at time.Time) error {
	_, err := s.q.exec(ctx, "checking out user channels", closeUserChannel+` AND device_id = $2 AND checked_out = 0`,
		tenantID, deviceID, micros(at))
	return err
}

func (s appleUserChannelStore) ForgetAccounts(ctx context.Context, tenantID, deviceID string) (int, error) {
	return s.q.exec(ctx, "forgetting user-channel accounts", `UPDATE apple_user_channels SET account_index = NULL
		WHERE tenant_id = $1 AND device_id = $2 AND account_index IS NOT NULL`, tenantID, deviceID)
}

func (s appleUserChannelStore) ListOpen(ctx context.Context, tenantID, afterDevice, afterID string, limit int) ([]store.AppleUserChannel, error) {
	// device_id >= $2 on its own lets both engines walk the (tenant, device)
	// index from the last page's device.
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+appleUserChannelColumns+` FROM apple_user_channels
		WHERE tenant_id = $1 AND checked_out = 0 AND device_id >= $2 AND (device_id > $2 OR id > $3)
		ORDER BY device_id, id LIMIT $4`, tenantID, afterDevice, afterID, limit)
	return collect(rows, err, "listing open user channels", scanAppleUserChannel)
}

func (s appleUserChannelStore) ForgetAccount(ctx context.Context, tenantID, id string) error {
	_, err := s.q.exec(ctx, "forgetting a user-channel account", `UPDATE apple_user_channels SET account_index = NULL
		WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	return err
}

func (s appleUserChannelStore) SchedulePush(ctx context.Context, tenantID string, ids []string, at time.Time) (int, error) {
	return s.q.schedulePush(ctx, "apple_user_channels", "id", tenantID, ids, at)
}

func (s appleUserChannelStore) ClaimPushes(ctx context.Context, now, until time.Time, limit int) ([]store.AppleUserChannel, error) {
	var out []store.AppleUserChannel
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		rows, err := q.claimPushes(ctx, "apple_user_channels", "id", appleUserChannelColumns, now, until, limit)
		out, err = collect(rows, err, "claiming due user-channel pushes", scanAppleUserChannel)
		return err
	})
	return out, err
}

func (s appleUserChannelStore) PushDone(ctx context.Context, tenantID, id string, claimed, next time.Time, attempts int, dead *store.DeadToken) error {
	return s.q.pushDone(ctx, "apple_user_channels", "id", tenantID, id, claimed, next, attempts, dead)
}
