package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type enrolmentStore struct{ q *queries }

const enrolmentColumns = `id, tenant_id, ownership, subject_id, group_id, notice_version, user_enrollment, allow_full_wipe, secret_hash,
	state, created_by, device_id, created_at, expires_at, used_at, access_rights, link_mailed`

func scanEnrolment(s scanner) (store.Enrolment, error) {
	var e store.Enrolment
	var created, expires, used int64
	err := s.Scan(&e.ID, &e.TenantID, &e.Ownership, &e.SubjectID, &e.GroupID, &e.NoticeVersion, &e.UserEnrollment, &e.AllowFullWipe,
		&e.SecretHash, &e.State, &e.CreatedBy, &e.DeviceID, &created, &expires, &used, &e.AccessRights, &e.LinkMailed)
	e.CreatedAt, e.ExpiresAt, e.UsedAt = fromMicros(created), fromMicros(expires), fromMicros(used)
	return e, err
}

func (s enrolmentStore) Create(ctx context.Context, e store.Enrolment) error {
	if err := s.q.holdTenant(ctx, "creating enrolment", e.TenantID); err != nil {
		return err
	}
	return s.q.insert(ctx, "creating enrolment", `INSERT INTO enrolments (`+enrolmentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		e.ID, e.TenantID, e.Ownership, e.SubjectID, e.GroupID, e.NoticeVersion, boolInt(e.UserEnrollment), boolInt(e.AllowFullWipe),
		e.SecretHash, e.State, e.CreatedBy, e.DeviceID, micros(e.CreatedAt), micros(e.ExpiresAt), micros(e.UsedAt), e.AccessRights, boolInt(e.LinkMailed))
}

func (s enrolmentStore) Get(ctx context.Context, tenantID, id string) (store.Enrolment, error) {
	e, err := scanEnrolment(s.q.x.QueryRowContext(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return e, mapErr("reading enrolment", err)
}

func (s enrolmentStore) GetShared(ctx context.Context, tenantID, id string) (store.Enrolment, error) {
	e, err := scanEnrolment(s.q.x.QueryRowContext(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE tenant_id = $1 AND id = $2`+
		s.q.lockClause("SHARE"), tenantID, id))
	return e, mapErr("reading enrolment", err)
}

func (s enrolmentStore) GetBySecretHash(ctx context.Context, hash []byte) (store.Enrolment, error) {
	e, err := scanEnrolment(s.q.x.QueryRowContext(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE secret_hash = $1`, hash))
	return e, mapErr("reading enrolment", err)
}

func (s enrolmentStore) List(ctx context.Context, tenantID string, p store.Page) ([]store.Enrolment, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE tenant_id = $1 AND id > $2
		ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing enrolments", scanEnrolment)
}

func (s enrolmentStore) ListForSubject(ctx context.Context, tenantID, subjectID string) ([]store.Enrolment, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE tenant_id = $1 AND subject_id = $2
		ORDER BY created_at, id`, tenantID, subjectID)
	return collect(rows, err, "listing a person's enrolments", scanEnrolment)
}

func (s enrolmentStore) PendingVersions(ctx context.Context, tenantID, ownership string) ([]int64, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT DISTINCT notice_version FROM enrolments
		WHERE tenant_id = $1 AND ownership = $2 AND state IN ('open', 'accepted') ORDER BY notice_version`, tenantID, ownership)
	return collect(rows, err, "listing pending enrolment versions", scanVersion)
}

func (s enrolmentStore) Update(ctx context.Context, e store.Enrolment) error {
	return s.q.execOne(ctx, "updating enrolment", `UPDATE enrolments SET state = $3, device_id = $4, used_at = $5, allow_full_wipe = $6
		WHERE tenant_id = $1 AND id = $2`, e.TenantID, e.ID, e.State, e.DeviceID, micros(e.UsedAt), boolInt(e.AllowFullWipe))
}

func (s enrolmentStore) Accept(ctx context.Context, tenantID, id string, allowFullWipe bool) error {
	n, err := s.q.exec(ctx, "accepting enrolment", `UPDATE enrolments SET state = 'accepted', allow_full_wipe = $3
		WHERE tenant_id = $1 AND id = $2 AND state = 'open'`, tenantID, id, boolInt(allowFullWipe))
	if err == nil && n == 0 {
		return fmt.Errorf("sqlstore: enrolment %s is not open: %w", id, store.ErrConflict)
	}
	return err
}

func (s enrolmentStore) TakeBackFullWipe(ctx context.Context, tenantID, id string) error {
	return s.q.execOne(ctx, "taking back a full-wipe permission", `UPDATE enrolments SET allow_full_wipe = 0
		WHERE tenant_id = $1 AND id = $2`, tenantID, id)
}

func (s enrolmentStore) SetSecretHash(ctx context.Context, tenantID, id string, hash []byte) error {
	if len(hash) == 0 {
		return errors.New("sqlstore: an enrolment link needs a secret hash")
	}
	n, err := s.q.exec(ctx, "setting an enrolment link", `UPDATE enrolments SET secret_hash = $3
		WHERE tenant_id = $1 AND id = $2 AND state = 'open'`, tenantID, id, hash)
	if err == nil && n == 0 {
		return fmt.Errorf("sqlstore: enrolment %s is not open: %w", id, store.ErrConflict)
	}
	return err
}

func (s enrolmentStore) SetAccessRights(ctx context.Context, tenantID, id string, rights int) error {
	return s.q.execOne(ctx, "recording enrolment access rights", `UPDATE enrolments SET access_rights = $3
		WHERE tenant_id = $1 AND id = $2`, tenantID, id, rights)
}

func (s enrolmentStore) Use(ctx context.Context, tenantID, id, deviceID string, at time.Time) error {
	n, err := s.q.exec(ctx, "using enrolment", `UPDATE enrolments SET state = 'used', device_id = $3, used_at = $4
		WHERE tenant_id = $1 AND id = $2 AND state = 'accepted'`, tenantID, id, deviceID, micros(at))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: enrolment %s is not open for a device: %w", id, store.ErrConflict)
	}
	return nil
}

func (s enrolmentStore) Revoke(ctx context.Context, tenantID, id string, from ...string) error {
	if len(from) == 0 {
		return errors.New("sqlstore: revoking an enrolment needs the states it may be revoked from")
	}
	// Conditional, as Use is: whichever of the two commits first wins.
	marks, states := placeholders(from, 3)
	n, err := s.q.exec(ctx, "revoking enrolment", `UPDATE enrolments SET state = 'revoked'
		WHERE tenant_id = $1 AND id = $2 AND state IN (`+marks+`)`, append([]any{tenantID, id}, states...)...)
	if err != nil || n > 0 {
		return err
	}
	// Nothing changed: an enrolment that is not there, or one in another state.
	if _, err := s.Get(ctx, tenantID, id); err != nil {
		return err
	}
	return fmt.Errorf("sqlstore: enrolment %s is not in a state it may be revoked from (%s): %w", id, strings.Join(from, ", "), store.ErrConflict)
}

type appleChannelStore struct{ q *queries }

const appleChannelColumns = `device_id, tenant_id, cert_fingerprint, cert_serial, cert_not_after, enrolment_id, channel_index, topic,
	push_token, push_magic, unlock_token, bootstrap, checked_out, last_checkin, push_due_at, push_attempts, renewal_command, renewal_at,
	created_at, updated_at, token_at`

func scanAppleChannel(s scanner) (store.AppleChannel, error) {
	var c store.AppleChannel
	var notAfter, last, due, renewal, created, updated, tokenAt int64
	err := s.Scan(&c.DeviceID, &c.TenantID, &c.CertFingerprint, &c.CertSerial, &notAfter, &c.EnrolmentID, &c.ChannelIndex, &c.Topic, &c.PushToken,
		&c.PushMagic, &c.UnlockToken, &c.Bootstrap, &c.CheckedOut, &last, &due, &c.PushAttempts, &c.RenewalCommand, &renewal,
		&created, &updated, &tokenAt)
	c.CertNotAfter, c.LastCheckin, c.CreatedAt, c.UpdatedAt = fromMicros(notAfter), fromMicros(last), fromMicros(created), fromMicros(updated)
	c.PushDueAt, c.RenewalAt, c.TokenAt = fromMicros(due), fromMicros(renewal), fromMicros(tokenAt)
	c.PushToken, c.UnlockToken, c.Bootstrap = nonEmpty(c.PushToken), nonEmpty(c.UnlockToken), nonEmpty(c.Bootstrap)
	return c, err
}

func (s appleChannelStore) Create(ctx context.Context, c store.AppleChannel) error {
	return s.q.insert(ctx, "creating MDM channel", `INSERT INTO apple_channels (`+appleChannelColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
		c.DeviceID, c.TenantID, c.CertFingerprint, c.CertSerial, micros(c.CertNotAfter), c.EnrolmentID, c.ChannelIndex, c.Topic, blob(c.PushToken),
		c.PushMagic, blob(c.UnlockToken), blob(c.Bootstrap), boolInt(c.CheckedOut), micros(c.LastCheckin), micros(c.PushDueAt),
		c.PushAttempts, c.RenewalCommand, micros(c.RenewalAt), micros(c.CreatedAt), micros(c.UpdatedAt), micros(c.TokenAt))
}

func (s appleChannelStore) Get(ctx context.Context, tenantID, deviceID string) (store.AppleChannel, error) {
	c, err := scanAppleChannel(s.q.x.QueryRowContext(ctx, `SELECT `+appleChannelColumns+` FROM apple_channels
		WHERE tenant_id = $1 AND device_id = $2`, tenantID, deviceID))
	return c, mapErr("reading MDM channel", err)
}

func (s appleChannelStore) GetByCert(ctx context.Context, fingerprint []byte) (store.AppleChannel, error) {
	c, err := scanAppleChannel(s.q.x.QueryRowContext(ctx, `SELECT `+appleChannelColumns+` FROM apple_channels
		WHERE cert_fingerprint = $1`, fingerprint))
	return c, mapErr("reading MDM channel", err)
}

// The check-in paths' reads, built once: they run on every request.
var (
	channelWithDeviceQuery = `SELECT ` + qualified("ch", appleChannelColumns) + `, ` + qualified("d", deviceColumns) + `
		FROM apple_channels ch JOIN devices d ON d.tenant_id = ch.tenant_id AND d.id = ch.device_id
		WHERE ch.cert_fingerprint = $1`
	presenceQuery = `SELECT ` + qualified("ch", appleChannelColumns) + `, d.state, d.last_seen_at,
		EXISTS (SELECT 1 FROM commands c WHERE c.tenant_id = ch.tenant_id AND c.device_id = ch.device_id AND c.user_channel = ''
			AND c.state IN ` + openStates + `)
		FROM apple_channels ch JOIN devices d ON d.tenant_id = ch.tenant_id AND d.id = ch.device_id
		WHERE ch.cert_fingerprint = $1`
)

func (s appleChannelStore) GetByCertWithDevice(ctx context.Context, fingerprint []byte) (store.AppleChannel, store.Device, error) {
	row := s.q.x.QueryRowContext(ctx, channelWithDeviceQuery, fingerprint)
	var ch store.AppleChannel
	// The channel's columns come first: scanDevice reads its own after them.
	d, err := scanDevice(scanFunc(func(deviceDest ...any) error {
		var err error
		ch, err = scanAppleChannel(scanAlso{row, deviceDest})
		return err
	}))
	return ch, d, mapErr("reading MDM channel", err)
}

func (s appleChannelStore) Presence(ctx context.Context, fingerprint []byte) (store.ChannelPresence, error) {
	var p store.ChannelPresence
	var seen int64
	row := s.q.x.QueryRowContext(ctx, presenceQuery, fingerprint)
	ch, err := scanAppleChannel(scanAlso{row, []any{&p.DeviceState, &seen, &p.Pending}})
	p.Channel, p.LastSeenAt = ch, fromMicros(seen)
	return p, mapErr("reading MDM channel", err)
}

func (s appleChannelStore) GetByEnrolment(ctx context.Context, tenantID, enrolmentID string) (store.AppleChannel, error) {
	c, err := scanAppleChannel(s.q.x.QueryRowContext(ctx, `SELECT `+appleChannelColumns+` FROM apple_channels
		WHERE tenant_id = $1 AND enrolment_id = $2`, tenantID, enrolmentID))
	return c, mapErr("reading MDM channel", err)
}

func (s appleChannelStore) Update(ctx context.Context, c store.AppleChannel) error {
	return s.q.execOne(ctx, "updating MDM channel", `UPDATE apple_channels SET cert_fingerprint = $3, cert_serial = $4,
		cert_not_after = $5, topic = $6, push_token = $7, push_magic = $8, unlock_token = $9, bootstrap = $10, last_checkin = $11,
		updated_at = $12, token_at = $13 WHERE tenant_id = $1 AND device_id = $2 AND checked_out = 0`,
		c.TenantID, c.DeviceID, c.CertFingerprint, c.CertSerial, micros(c.CertNotAfter), c.Topic, blob(c.PushToken), c.PushMagic,
		blob(c.UnlockToken), blob(c.Bootstrap), micros(c.LastCheckin), micros(c.UpdatedAt), micros(c.TokenAt))
}

func (s appleChannelStore) Change(ctx context.Context, tenantID, deviceID string, c store.ChannelChange) error {
	sets, args := []string{"last_checkin = $3", "updated_at = $3"}, []any{tenantID, deviceID, micros(c.At)}
	set := func(column string, v any) {
		args = append(args, v)
		sets = append(sets, fmt.Sprintf("%s = $%d", column, len(args)))
	}
	if p := c.Push; p != nil {
		set("push_token", blob(p.Token))
		set("push_magic", p.Magic)
		set("topic", p.Topic)
		set("token_at", micros(p.At))
	}
	if c.UnlockToken != nil {
		set("unlock_token", blob(c.UnlockToken))
	}
	if c.Bootstrap != nil {
		set("bootstrap", blob(*c.Bootstrap))
	}
	if c.CertSerial != "" {
		set("cert_serial", c.CertSerial)
	}
	where := "tenant_id = $1 AND device_id = $2 AND checked_out = 0"
	if c.Signer != nil {
		args = append(args, c.Signer)
		where += fmt.Sprintf(" AND cert_fingerprint = $%d", len(args))
	}
	return s.q.execOne(ctx, "changing MDM channel", `UPDATE apple_channels SET `+strings.Join(sets, ", ")+` WHERE `+where, args...)
}

func (s appleChannelStore) MoveCertificate(ctx context.Context, tenantID, deviceID string, from []byte, cert store.ChannelCertificate, at time.Time) error {
	n, err := s.q.exec(ctx, "moving MDM channel to a renewed certificate", `UPDATE apple_channels SET cert_fingerprint = $4,
		cert_serial = $5, cert_not_after = $6, updated_at = $7
		WHERE tenant_id = $1 AND device_id = $2 AND cert_fingerprint = $3 AND checked_out = 0`,
		tenantID, deviceID, from, cert.Fingerprint, cert.Serial, micros(cert.NotAfter), micros(at))
	if err == nil && n == 0 {
		return fmt.Errorf("sqlstore: the channel of device %s moved or closed meanwhile: %w", deviceID, store.ErrConflict)
	}
	return err
}

func (s appleChannelStore) Restart(ctx context.Context, tenantID, deviceID string, from []byte, cert store.ChannelCertificate, index []byte, topic string, at time.Time) error {
	// The escrowed tokens were the first attempt's device's: another
	// device retrying must not be handed them.
	n, err := s.q.exec(ctx, "restarting an unfinished MDM channel", `UPDATE apple_channels SET cert_fingerprint = $4,
		cert_serial = $5, cert_not_after = $6, channel_index = $7, topic = $8, last_checkin = $9, created_at = $9, updated_at = $9,
		bootstrap = NULL, unlock_token = NULL
		WHERE tenant_id = $1 AND device_id = $2 AND cert_fingerprint = $3 AND checked_out = 0 AND push_token IS NULL AND token_at = 0`,
		tenantID, deviceID, from, cert.Fingerprint, cert.Serial, micros(cert.NotAfter), index, topic, micros(at))
	if err == nil && n == 0 {
		return fmt.Errorf("sqlstore: the channel of device %s finished, moved or closed meanwhile: %w", deviceID, store.ErrConflict)
	}
	return err
}

func (s appleChannelStore) OpenTopics(ctx context.Context, tenantID string) (map[string]int, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT topic, COUNT(*) FROM apple_channels WHERE tenant_id = $1 AND checked_out = 0
		GROUP BY topic`, tenantID)
	if err != nil {
		return nil, mapErr("counting open channels by topic", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			topic string
			n     int
		)
		if err := rows.Scan(&topic, &n); err != nil {
			return nil, mapErr("counting open channels by topic", err)
		}
		out[topic] = n
	}
	return out, mapErr("counting open channels by topic", rows.Err())
}

func (s appleChannelStore) OpenOfDeparted(ctx context.Context, limit int) ([]store.AppleChannel, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+qualified("ch", appleChannelColumns)+` FROM apple_channels ch
		JOIN devices d ON d.tenant_id = ch.tenant_id AND d.id = ch.device_id
		WHERE ch.checked_out = 0 AND d.state IN ('deprovisioned', 'retired', 'wiped') LIMIT $1`, limit)
	return collect(rows, err, "listing open channels of departed devices", scanAppleChannel)
}

func (s appleChannelStore) Unfinished(ctx context.Context, createdBefore time.Time, limit int) ([]store.AppleChannel, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+qualified("ch", appleChannelColumns)+` FROM apple_channels ch
		JOIN devices d ON d.tenant_id = ch.tenant_id AND d.id = ch.device_id
		WHERE ch.push_token IS NULL AND ch.checked_out = 0 AND ch.token_at = 0 AND ch.created_at < $1 AND d.state = 'pending'
		ORDER BY ch.created_at LIMIT $2`, micros(createdBefore), limit)
	return collect(rows, err, "listing unfinished enrolments", scanAppleChannel)
}

func (s appleChannelStore) OpenByIndex(ctx context.Context, tenantID string, index []byte) ([]store.AppleChannel, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+appleChannelColumns+` FROM apple_channels
		WHERE tenant_id = $1 AND channel_index = $2 AND checked_out = 0 ORDER BY created_at`, tenantID, index)
	return collect(rows, err, "finding a device's channels", scanAppleChannel)
}

func (s appleChannelStore) CheckOut(ctx context.Context, tenantID, deviceID string, at time.Time) error {
	// The channel index (a keyed digest of the UDID) goes too: only open
	// channels are looked up by it, and kept it would tie the departed
	// record to its device.
	return s.q.execOne(ctx, "checking out MDM channel", `UPDATE apple_channels SET checked_out = 1, push_token = NULL,
		push_magic = '', unlock_token = NULL, bootstrap = NULL, push_due_at = 0, channel_index = $4, updated_at = $3
		WHERE tenant_id = $1 AND device_id = $2`, tenantID, deviceID, micros(at), []byte{})
}

func (s appleChannelStore) SchedulePush(ctx context.Context, tenantID string, deviceIDs []string, at time.Time) (int, error) {
	return s.q.schedulePush(ctx, "apple_channels", "device_id", tenantID, deviceIDs, at)
}

// schedulePush makes the channels of table (apple_channels or
// apple_user_channels, keyed by keyColumn) due a push at at, keeping an
// earlier due time, and returns how many can be pushed.
func (q *queries) schedulePush(ctx context.Context, table, keyColumn, tenantID string, keys []string, at time.Time) (int, error) {
	total := 0
	err := forChunks(keys, func(chunk []string) error {
		marks, args := placeholders(chunk, 3)
		n, err := q.exec(ctx, "scheduling pushes", `UPDATE `+table+` SET push_due_at = $2
			WHERE tenant_id = $1 AND push_token IS NOT NULL AND checked_out = 0 AND (push_due_at = 0 OR push_due_at > $2)
			AND `+keyColumn+` IN (`+marks+`)`, append([]any{tenantID, micros(at)}, args...)...)
		total += n
		return err
	})
	return total, err
}

func (s appleChannelStore) ClaimPushes(ctx context.Context, now, until time.Time, limit int) ([]store.AppleChannel, error) {
	var out []store.AppleChannel
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		rows, err := q.claimPushes(ctx, "apple_channels", "device_id", appleChannelColumns, now, until, limit)
		out, err = collect(rows, err, "claiming due pushes", scanAppleChannel)
		return err
	})
	return out, err
}

// claimPushes makes up to limit channels of table that are due a push at
// now due again at until, and returns their columns. On PostgreSQL the pick
// skips rows another claim holds locked.
func (q *queries) claimPushes(ctx context.Context, table, keyColumn, columns string, now, until time.Time, limit int) (*sql.Rows, error) {
	return q.x.QueryContext(ctx, `UPDATE `+table+` SET push_due_at = $2
		WHERE (tenant_id, `+keyColumn+`) IN (SELECT tenant_id, `+keyColumn+` FROM `+table+`
			WHERE push_due_at > 0 AND push_due_at <= $1 AND push_token IS NOT NULL AND checked_out = 0
			ORDER BY push_due_at LIMIT $3`+q.lockClause("UPDATE SKIP LOCKED")+`)
		RETURNING `+columns, micros(now), micros(until), limit)
}

func (s appleChannelStore) ExpiringCertificates(ctx context.Context, after, before, renewedBefore time.Time, limit int) ([]store.AppleChannel, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+qualified("ch", appleChannelColumns)+` FROM apple_channels ch
		JOIN devices d ON d.tenant_id = ch.tenant_id AND d.id = ch.device_id
		WHERE ch.cert_not_after > $1 AND ch.cert_not_after < $2 AND ch.checked_out = 0 AND ch.renewal_at < $3
			AND d.state IN ($5, $6) ORDER BY ch.cert_not_after LIMIT $4`,
		micros(after), micros(before), micros(renewedBefore), limit, store.DeviceEnrolled, store.DeviceLeaving)
	return collect(rows, err, "listing expiring device certificates", scanAppleChannel)
}

func (s appleChannelStore) RenewalQueued(ctx context.Context, tenantID, deviceID, commandID string, at time.Time) error {
	return s.q.execOne(ctx, "recording an identity renewal", `UPDATE apple_channels SET renewal_command = $3, renewal_at = $4
		WHERE tenant_id = $1 AND device_id = $2`, tenantID, deviceID, commandID, micros(at))
}

func (s appleChannelStore) CertificateExpiry(ctx context.Context, now, soon time.Time) ([]store.CertificateExpiryCount, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT tenant_id, COUNT(*), SUM(CASE WHEN cert_not_after <= $1 THEN 1 ELSE 0 END)
		FROM apple_channels WHERE cert_not_after < $2 AND checked_out = 0 GROUP BY tenant_id ORDER BY tenant_id`, micros(now), micros(soon))
	return collect(rows, err, "counting expiring device certificates", func(r scanner) (store.CertificateExpiryCount, error) {
		var c store.CertificateExpiryCount
		err := r.Scan(&c.TenantID, &c.Expiring, &c.Expired)
		return c, err
	})
}

func (s appleChannelStore) PushDone(ctx context.Context, tenantID, deviceID string, claimed, next time.Time, attempts int, dead *store.DeadToken) error {
	return s.q.pushDone(ctx, "apple_channels", "device_id", tenantID, deviceID, claimed, next, attempts, dead)
}

// pushDone records a push outcome on a channel of table, keyed by keyColumn,
// if its due time is still the claim's.
func (q *queries) pushDone(ctx context.Context, table, keyColumn, tenantID, key string, claimed, next time.Time, attempts int, dead *store.DeadToken) error {
	if dead != nil {
		// Only the token that was pushed is dead, and only if the device has
		// not sent it again since APNs found it dead. Dead whatever was
		// scheduled since: no push can reach it.
		n, err := q.exec(ctx, "dropping a dead push token", `UPDATE `+table+`
			SET push_due_at = 0, push_attempts = 0, push_token = NULL, push_magic = ''
			WHERE tenant_id = $1 AND `+keyColumn+` = $2 AND push_token = $3 AND token_at <= $4`,
			tenantID, key, dead.Token, micros(dead.Since))
		if err != nil || n > 0 {
			return err
		}
		// The device sent a token since (a new one, or this one again): the
		// push is still owed, to the token the channel holds now.
	}
	_, err := q.exec(ctx, "recording a push", `UPDATE `+table+` SET push_due_at = $4, push_attempts = $5
		WHERE tenant_id = $1 AND `+keyColumn+` = $2 AND push_due_at = $3`, tenantID, key, micros(claimed), micros(next), attempts)
	return err
}

type commandStore struct{ q *queries }

const commandColumns = `id, tenant_id, device_id, user_channel, request_type, queries, payload, state, requested_by, attempts, unanswered,
	error_chain, created_at, sent_at, completed_at, reason`

func scanCommand(s scanner) (store.Command, error) {
	var c store.Command
	var queries string
	var created, sent, completed int64
	err := s.Scan(&c.ID, &c.TenantID, &c.DeviceID, &c.UserChannel, &c.RequestType, &queries, &c.Payload, &c.State, &c.RequestedBy, &c.Attempts,
		&c.Unanswered, &c.ErrorChain, &created, &sent, &completed, &c.Reason)
	if queries != "" {
		c.Queries = strings.Split(queries, ",")
	}
	c.CreatedAt, c.SentAt, c.CompletedAt = fromMicros(created), fromMicros(sent), fromMicros(completed)
	return c, err
}

// joinQueries is the queries column of a command: its DeviceInformation
// keys, comma-separated.
func joinQueries(queries []string) (string, error) {
	for _, k := range queries {
		if k == "" || strings.Contains(k, ",") {
			return "", fmt.Errorf("sqlstore: queueing commands: query %.64q is empty or holds a comma", k)
		}
	}
	return strings.Join(queries, ","), nil
}

// openStates are the states of a command still to be answered.
const openStates = `('queued', 'sent', 'notnow')`

func (s commandStore) Enqueue(ctx context.Context, cmds []store.Command, maxQueued int) error {
	return s.enqueue(ctx, cmds, maxQueued, nil)
}

func (s commandStore) EnqueueCounted(ctx context.Context, cmds []store.Command, maxQueued int, open map[string]int) error {
	if open == nil {
		open = map[string]int{} // counted: none open
	}
	return s.enqueue(ctx, cmds, maxQueued, open)
}

// enqueue inserts cmds within the bound; open nil locks the queues and
// counts their open commands, otherwise it is the caller's count, read
// under the lock it holds (EnqueueCounted).
func (s commandStore) enqueue(ctx context.Context, cmds []store.Command, maxQueued int, open map[string]int) error {
	if len(cmds) == 0 {
		return nil
	}
	type queue struct{ device, userChannel string }
	perQueue := map[queue]int{}
	var devices []string
	for _, c := range cmds {
		if c.TenantID != cmds[0].TenantID {
			return fmt.Errorf("sqlstore: queueing commands: one tenant per call")
		}
		k := queue{c.DeviceID, c.UserChannel}
		if perQueue[k] == 0 && c.UserChannel == "" {
			devices = append(devices, c.DeviceID)
		}
		perQueue[k]++
	}
	locked := devices // and the devices of user-channel commands, in a copy
	for k := range perQueue {
		if k.userChannel != "" && !slices.Contains(locked, k.device) {
			locked = append(slices.Clip(locked), k.device)
		}
	}
	if open == nil {
		if err := s.LockQueues(ctx, cmds[0].TenantID, locked); err != nil {
			return err
		}
		var err error
		if open, err = s.OpenCounts(ctx, cmds[0].TenantID, devices); err != nil {
			return err
		}
	}
	for k, n := range perQueue {
		held := open[k.device]
		if k.userChannel != "" {
			// User-channel commands come one at a time.
			if err := s.q.x.QueryRowContext(ctx, `SELECT COUNT(*) FROM commands WHERE tenant_id = $1 AND device_id = $2
				AND user_channel = $3 AND state IN `+openStates, cmds[0].TenantID, k.device, k.userChannel).Scan(&held); err != nil {
				return mapErr("counting open commands", err)
			}
		}
		if held+n > maxQueued {
			return fmt.Errorf("sqlstore: a channel of device %s has %d open commands (limit %d): %w", k.device, held, maxQueued, store.ErrConflict)
		}
	}
	rows := make([][]any, len(cmds))
	for i, c := range cmds {
		queries, err := joinQueries(c.Queries)
		if err != nil {
			return err
		}
		rows[i] = []any{c.ID, c.TenantID, c.DeviceID, c.UserChannel, c.RequestType, queries, c.Payload, c.State, c.RequestedBy, micros(c.CreatedAt), c.Reason}
	}
	return s.q.insertAll(ctx, "queueing commands", `INSERT INTO commands (id, tenant_id, device_id, user_channel, request_type, queries,
		payload, state, requested_by, created_at, reason) VALUES `, rows)
}

// LockQueues uses PostgreSQL's advisory locks, which live in memory: an
// enqueue for several devices takes the tenant's queue lock alone, one for
// a single device shares it and takes the device's. Row locks on every
// device of a bulk command would write to each row. SQLite's single writer
// runs enqueues one at a time already.
func (s commandStore) LockQueues(ctx context.Context, tenantID string, deviceIDs []string) error {
	if !s.q.inTx || s.q.db.dialect.name != "postgres" || len(deviceIDs) == 0 {
		return nil
	}
	tenantKey := "steward.command-queues:" + tenantID
	var err error
	if len(deviceIDs) > 1 {
		_, err = s.q.x.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, tenantKey)
	} else {
		_, err = s.q.x.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0)),
			pg_advisory_xact_lock(hashtextextended($2, 0))`, tenantKey, tenantKey+":"+deviceIDs[0])
	}
	return mapErr("locking command queues", err)
}

func (s commandStore) OpenOnChannel(ctx context.Context, tenantID, deviceID, userChannel string) (int, error) {
	var n int
	err := s.q.x.QueryRowContext(ctx, `SELECT COUNT(*) FROM commands WHERE tenant_id = $1 AND device_id = $2 AND user_channel = $3
		AND state IN `+openStates, tenantID, deviceID, userChannel).Scan(&n)
	return n, mapErr("counting a channel's open commands", err)
}

func (s commandStore) OpenCounts(ctx context.Context, tenantID string, deviceIDs []string) (map[string]int, error) {
	out := map[string]int{}
	err := forChunks(deviceIDs, func(chunk []string) error {
		marks, args := placeholders(chunk, 2)
		rows, err := s.q.x.QueryContext(ctx, `SELECT device_id, COUNT(*) FROM commands WHERE tenant_id = $1 AND user_channel = ''
			AND state IN `+openStates+` AND device_id IN (`+marks+`) GROUP BY device_id`, append([]any{tenantID}, args...)...)
		counts, err := collect(rows, err, "counting open commands", func(sc scanner) (idCount, error) {
			var c idCount
			return c, sc.Scan(&c.id, &c.n)
		})
		for _, c := range counts {
			out[c.id] = c.n
		}
		return err
	})
	return out, err
}

type idCount struct {
	id string
	n  int
}

func (s commandStore) Get(ctx context.Context, tenantID, id string) (store.Command, error) {
	c, err := scanCommand(s.q.x.QueryRowContext(ctx, `SELECT `+commandColumns+` FROM commands WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return c, mapErr("reading command", err)
}

func (s commandStore) SendNext(ctx context.Context, tenantID, deviceID, userChannel string, idle bool, at time.Time) (store.Command, error) {
	const states = `('queued', 'sent')`
	var c store.Command
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		if idle {
			// Those the device put off in earlier exchanges: offered only
			// as the first of one, the oldest would keep every other
			// behind it for as long as the device keeps putting it off.
			if _, err := q.x.ExecContext(ctx, `UPDATE commands SET state = 'queued'
				WHERE tenant_id = $1 AND device_id = $2 AND user_channel = $3 AND state = 'notnow'`, tenantID, deviceID, userChannel); err != nil {
				return mapErr("offering put-off commands again", err)
			}
		}
		var err error
		// On the right of SET, state is still the old one: a command sent
		// before and not answered since is a delivery left unanswered. On
		// PostgreSQL the subquery locks its pick: one cancelled meanwhile
		// is re-checked there and passed over for the next, and the outer
		// state test backs that up.
		c, err = scanCommand(q.x.QueryRowContext(ctx, `UPDATE commands SET state = 'sent', sent_at = $3, attempts = attempts + 1,
				unanswered = CASE WHEN state = 'sent' THEN unanswered + 1 ELSE 0 END
			WHERE tenant_id = $1 AND state IN `+states+`
				AND id = (SELECT id FROM commands WHERE tenant_id = $1 AND device_id = $2 AND user_channel = $4
				AND state IN `+states+` ORDER BY id LIMIT 1`+q.lockClause("UPDATE")+`)
			RETURNING `+commandColumns, tenantID, deviceID, micros(at), userChannel))
		return mapErr("sending the next command", err)
	})
	return c, err
}

func (s commandStore) PutOff(ctx context.Context, tenantID, id string, delivery int) error {
	// Under PostgreSQL's read committed, a delivery committed by a
	// concurrent Idle is re-checked here once its row lock is free: its
	// attempts no longer match.
	return s.q.execOne(ctx, "recording a NotNow", `UPDATE commands SET state = 'notnow'
		WHERE tenant_id = $1 AND id = $2 AND state = 'sent' AND attempts = $3`, tenantID, id, delivery)
}

func (s commandStore) Finish(ctx context.Context, c store.Command) error {
	return s.finish(ctx, c, "")
}

func (s commandStore) FinishDelivery(ctx context.Context, c store.Command, delivery int) error {
	// Under PostgreSQL's read committed, a delivery committed (or waited
	// for, its row lock held) since c was read is re-checked here: its
	// attempts no longer match.
	return s.finish(ctx, c, ` AND attempts = $7`, delivery)
}

func (s commandStore) finish(ctx context.Context, c store.Command, filter string, args ...any) error {
	if store.CommandOpen(c.State) {
		return fmt.Errorf("sqlstore: finishing command %s as %s, an open state: %w", c.ID, c.State, store.ErrConflict)
	}
	return s.q.execOne(ctx, "finishing command", `UPDATE commands SET state = $3, error_chain = $4, completed_at = $5, payload = $6
		WHERE tenant_id = $1 AND id = $2 AND state IN `+openStates+filter,
		append([]any{c.TenantID, c.ID, c.State, c.ErrorChain, micros(c.CompletedAt), []byte{}}, args...)...)
}

func (s commandStore) Update(ctx context.Context, c store.Command) error {
	query := `UPDATE commands SET state = $3, attempts = $4, unanswered = $5, error_chain = $6, sent_at = $7, completed_at = $8`
	args := []any{c.TenantID, c.ID, c.State, c.Attempts, c.Unanswered, c.ErrorChain, micros(c.SentAt), micros(c.CompletedAt)}
	if !store.CommandOpen(c.State) {
		query += `, payload = $9`
		args = append(args, []byte{})
	}
	// Under PostgreSQL's read committed, a command cancelled by a
	// concurrent departure is re-checked here once its row lock is free.
	// The counters are not: the caller holds the row (store.CommandStore).
	return s.q.execOne(ctx, "updating command", query+` WHERE tenant_id = $1 AND id = $2 AND state IN `+openStates, args...)
}

func (s commandStore) Cancel(ctx context.Context, tenantID, id, errorChain string, at time.Time) (store.Command, error) {
	var c store.Command
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		var err error
		c, err = scanCommand(q.x.QueryRowContext(ctx, `UPDATE commands SET state = 'cancelled', completed_at = $3, error_chain = $4,
			payload = $5 WHERE tenant_id = $1 AND id = $2 AND state IN ('queued', 'notnow') RETURNING `+commandColumns,
			tenantID, id, micros(at), errorChain, []byte{}))
		return mapErr("cancelling a command", err)
	})
	return c, err
}

func (s commandStore) CancelOpen(ctx context.Context, tenantID, deviceID, errorChain string, at time.Time) ([]store.Command, error) {
	return s.cancelOpen(ctx, "", tenantID, deviceID, errorChain, at)
}

func (s commandStore) CancelOpenExcept(ctx context.Context, tenantID, deviceID, keepID, errorChain string, at time.Time) ([]store.Command, error) {
	return s.cancelOpen(ctx, ` AND id <> $6`, tenantID, deviceID, errorChain, at, keepID)
}

func (s commandStore) CancelOpenForUser(ctx context.Context, tenantID, deviceID, userChannel, errorChain string, at time.Time) ([]store.Command, error) {
	return s.cancelOpen(ctx, ` AND user_channel = $6`, tenantID, deviceID, errorChain, at, userChannel)
}

func (s commandStore) cancelOpen(ctx context.Context, filter, tenantID, deviceID, errorChain string, at time.Time, args ...any) ([]store.Command, error) {
	var cancelled []store.Command
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		rows, err := q.x.QueryContext(ctx, `UPDATE commands SET state = 'cancelled', completed_at = $3, error_chain = $4, payload = $5
			WHERE tenant_id = $1 AND device_id = $2 AND state IN `+openStates+filter+` RETURNING `+commandColumns,
			append([]any{tenantID, deviceID, micros(at), errorChain, []byte{}}, args...)...)
		cancelled, err = collect(rows, err, "cancelling commands", scanCommand)
		return err
	})
	// RETURNING gives no order; the hooks run oldest first.
	slices.SortFunc(cancelled, func(a, b store.Command) int { return strings.Compare(a.ID, b.ID) })
	return cancelled, err
}

func (s commandStore) SetErrorChain(ctx context.Context, tenantID, id, errorChain string) error {
	return s.q.execOne(ctx, "replacing a command's error chain", `UPDATE commands SET error_chain = $3
		WHERE tenant_id = $1 AND id = $2 AND state NOT IN `+openStates, tenantID, id, errorChain)
}

func (s commandStore) DescribedErrors(ctx context.Context, after string, limit int) ([]store.DescribedError, string, error) {
	// Every row read comes back, so that the walk moves on by the same
	// bounded step however few of them carry a description; only those
	// carry their chain.
	rows, err := s.q.x.QueryContext(ctx, `SELECT c.id, c.tenant_id, COALESCE(d.ownership, ''),
			CASE WHEN c.state = 'error' AND c.error_chain LIKE '%Description"%' THEN c.error_chain ELSE '' END, c.completed_at
		FROM commands c LEFT JOIN devices d ON d.tenant_id = c.tenant_id AND d.id = c.device_id
		WHERE c.id > $1 ORDER BY c.id LIMIT $2`, after, limit)
	read, err := collect(rows, err, "reading failed commands", func(r scanner) (store.DescribedError, error) {
		var e store.DescribedError
		var completed int64
		err := r.Scan(&e.ID, &e.TenantID, &e.Ownership, &e.ErrorChain, &completed)
		e.CompletedAt = fromMicros(completed)
		return e, err
	})
	if err != nil || len(read) == 0 {
		return nil, "", err
	}
	described := read[:0]
	for _, e := range read {
		if e.ErrorChain != "" {
			described = append(described, e)
		}
	}
	return described, read[len(read)-1].ID, nil
}

func (s commandStore) List(ctx context.Context, tenantID, deviceID string, p store.Page) ([]store.Command, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+commandColumns+` FROM commands WHERE tenant_id = $1 AND device_id = $2 AND id > $3
		ORDER BY id LIMIT $4`, tenantID, deviceID, after, limit)
	return collect(rows, err, "listing commands", scanCommand)
}

func (s commandStore) PurgeBefore(ctx context.Context, cutoff time.Time, limit int) ([]store.PurgeCount, error) {
	// Open commands have no completion time (0), which the index range skips.
	return s.q.purgeByID(ctx, "commands", "command_results", `completed_at > 0 AND completed_at < $1 AND state NOT IN `+openStates,
		micros(cutoff), limit)
}
