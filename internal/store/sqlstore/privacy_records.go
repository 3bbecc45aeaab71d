package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type accessStore struct{ q *queries }

const accessColumns = `id, tenant_id, subject_id, device_id, actor, action, fields, reason, at`

// accessCategory is the PurgeCount category of removed access records.
const accessCategory = "access_records"

func scanAccess(s scanner) (store.AccessRecord, error) {
	var r store.AccessRecord
	var fields string
	var at int64
	if err := s.Scan(&r.ID, &r.TenantID, &r.SubjectID, &r.DeviceID, &r.Actor, &r.Action, &fields, &r.Reason,
		&at); err != nil {
		return r, err
	}
	r.At = fromMicros(at)
	var err error
	r.Fields, err = decodeStrings(fields)
	return r, err
}

// Add writes all records with a few multi-row statements.
func (s accessStore) Add(ctx context.Context, records []store.AccessRecord) error {
	rows := make([][]any, 0, len(records))
	for _, r := range records {
		fields, err := encodeStrings(r.Fields)
		if err != nil {
			return fmt.Errorf("sqlstore: encoding access record fields: %w", err)
		}
		rows = append(rows, []any{r.ID, r.TenantID, r.SubjectID, r.DeviceID, r.Actor, r.Action, fields, r.Reason,
			micros(r.At)})
	}
	return s.q.insertAll(ctx, "adding access records", `INSERT INTO access_records (`+accessColumns+`) VALUES `, rows)
}

func (s accessStore) ListForSubject(ctx context.Context, tenantID, subjectID string, p store.Page) ([]store.AccessRecord, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+accessColumns+` FROM access_records
		WHERE tenant_id = $1 AND subject_id = $2 AND id > $3 ORDER BY id LIMIT $4`, tenantID, subjectID, after, limit)
	return collect(rows, err, "listing access records", scanAccess)
}

// PurgeBefore deletes at most limit records (limit <= 0: defaultPurgeLimit),
// counted under the category "access_records".
func (s accessStore) PurgeBefore(ctx context.Context, cutoff time.Time, limit int) ([]store.PurgeCount, error) {
	if limit <= 0 {
		limit = defaultPurgeLimit
	}
	var counts map[purgeKey]int
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		counts = map[purgeKey]int{} // a retried transaction starts afresh
		_, err := q.deleteReturning(ctx, "purging access records", `DELETE FROM access_records WHERE id IN
			(SELECT id FROM access_records WHERE at < $1 LIMIT $2) RETURNING tenant_id`,
			accessCategory, counts, micros(cutoff), limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return purgeCounts(counts), nil
}

type revealStore struct{ q *queries }

const revealColumns = `id, tenant_id, admin_id, device_id, fields, reason, created_at, expires_at`

func scanReveal(s scanner) (store.Reveal, error) {
	var r store.Reveal
	var fields string
	var created, expires int64
	if err := s.Scan(&r.ID, &r.TenantID, &r.AdminID, &r.DeviceID, &fields, &r.Reason, &created, &expires); err != nil {
		return r, err
	}
	r.CreatedAt, r.ExpiresAt = fromMicros(created), fromMicros(expires)
	var err error
	r.Fields, err = decodeStrings(fields)
	return r, err
}

func (s revealStore) Create(ctx context.Context, r store.Reveal) error {
	fields, err := encodeStrings(r.Fields)
	if err != nil {
		return fmt.Errorf("sqlstore: encoding reveal fields: %w", err)
	}
	return s.q.insert(ctx, "creating reveal", `INSERT INTO reveals (`+revealColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.ID, r.TenantID, r.AdminID, r.DeviceID, fields, r.Reason, micros(r.CreatedAt), micros(r.ExpiresAt))
}

func (s revealStore) Active(ctx context.Context, tenantID, adminID, deviceID string, now time.Time) ([]store.Reveal, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+revealColumns+` FROM reveals
		WHERE tenant_id = $1 AND admin_id = $2 AND device_id = $3 AND expires_at > $4 ORDER BY id`,
		tenantID, adminID, deviceID, micros(now))
	return collect(rows, err, "listing active reveals", scanReveal)
}

type erasureStore struct{ q *queries }

const erasureColumns = `id, tenant_id, subject_id, device_id, certificate, signature, at`

func scanErasure(s scanner) (store.Erasure, error) {
	var e store.Erasure
	var cert string
	var at int64
	err := s.Scan(&e.ID, &e.TenantID, &e.SubjectID, &e.DeviceID, &cert, &e.Signature, &at)
	e.Certificate, e.Signature, e.At = nonEmpty([]byte(cert)), nonEmpty(e.Signature), fromMicros(at)
	return e, err
}

func (s erasureStore) Create(ctx context.Context, e store.Erasure) error {
	return s.q.insert(ctx, "creating erasure certificate", `INSERT INTO erasures (`+erasureColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.ID, e.TenantID, e.SubjectID, e.DeviceID, string(e.Certificate), e.Signature, micros(e.At))
}

func (s erasureStore) Get(ctx context.Context, tenantID, id string) (store.Erasure, error) {
	e, err := scanErasure(s.q.x.QueryRowContext(ctx, `SELECT `+erasureColumns+` FROM erasures
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return e, mapErr("reading erasure certificate", err)
}

func (s erasureStore) List(ctx context.Context, tenantID string, p store.Page) ([]store.Erasure, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+erasureColumns+` FROM erasures
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing erasure certificates", scanErasure)
}

type notificationStore struct{ q *queries }

const notificationColumns = `id, tenant_id, subject_id, kind, title, body, state, attempts, last_error,
	created_at, next_attempt_at, sent_at, ref`

func scanNotification(s scanner) (store.Notification, error) {
	var n store.Notification
	var created, next, sent int64
	err := s.Scan(&n.ID, &n.TenantID, &n.SubjectID, &n.Kind, &n.Title, &n.Body, &n.State, &n.Attempts,
		&n.LastError, &created, &next, &sent, &n.Ref)
	n.CreatedAt, n.NextAttemptAt, n.SentAt = fromMicros(created), fromMicros(next), fromMicros(sent)
	return n, err
}

func (s notificationStore) Create(ctx context.Context, n store.Notification) error {
	return s.q.insert(ctx, "queueing notification", `INSERT INTO notifications (`+notificationColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		n.ID, n.TenantID, n.SubjectID, n.Kind, n.Title, n.Body, n.State, n.Attempts, n.LastError,
		micros(n.CreatedAt), micros(n.NextAttemptAt), micros(n.SentAt), n.Ref)
}

// Due spans every tenant (the outbox job serves them all), soonest first,
// at most limit (limit <= 0: 100; capped at 1000).
func (s notificationStore) Due(ctx context.Context, now time.Time, limit int) ([]store.Notification, error) {
	_, n := pageArgs(store.Page{Limit: limit})
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+notificationColumns+` FROM notifications
		WHERE state = 'queued' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2`, micros(now), n)
	return collect(rows, err, "listing due notifications", scanNotification)
}

func (s notificationStore) Update(ctx context.Context, n store.Notification) error {
	return s.q.execOne(ctx, "updating notification", `UPDATE notifications SET state = $3, attempts = $4,
		last_error = $5, next_attempt_at = $6, sent_at = $7 WHERE tenant_id = $1 AND id = $2`,
		n.TenantID, n.ID, n.State, n.Attempts, n.LastError, micros(n.NextAttemptAt), micros(n.SentAt))
}

func (s notificationStore) ListForSubject(ctx context.Context, tenantID, subjectID string) ([]store.Notification, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+notificationColumns+` FROM notifications
		WHERE tenant_id = $1 AND subject_id = $2 ORDER BY id`, tenantID, subjectID)
	return collect(rows, err, "listing notifications", scanNotification)
}

type portalTokenStore struct{ q *queries }

const portalTokenColumns = `id, tenant_id, subject_id, secret_hash, created_at, expires_at, revoked_at`

func scanPortalToken(s scanner) (store.PortalToken, error) {
	var t store.PortalToken
	var created, expires, revoked int64
	err := s.Scan(&t.ID, &t.TenantID, &t.SubjectID, &t.SecretHash, &created, &expires, &revoked)
	t.SecretHash = nonEmpty(t.SecretHash)
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromMicros(created), fromMicros(expires), fromMicros(revoked)
	return t, err
}

func (s portalTokenStore) Create(ctx context.Context, t store.PortalToken) error {
	if len(t.SecretHash) == 0 {
		return fmt.Errorf("sqlstore: creating portal token: secret hash is required")
	}
	return s.q.insert(ctx, "creating portal token", `INSERT INTO portal_tokens (`+portalTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.ID, t.TenantID, t.SubjectID, t.SecretHash, micros(t.CreatedAt), micros(t.ExpiresAt), micros(t.RevokedAt))
}

// GetBySecretHash ignores the tenant, like session lookup: the secret
// itself names the token. Revoked and expired tokens are returned too.
func (s portalTokenStore) GetBySecretHash(ctx context.Context, hash []byte) (store.PortalToken, error) {
	if len(hash) == 0 {
		return store.PortalToken{}, fmt.Errorf("sqlstore: reading portal token: %w", store.ErrNotFound)
	}
	t, err := scanPortalToken(s.q.x.QueryRowContext(ctx, `SELECT `+portalTokenColumns+` FROM portal_tokens
		WHERE secret_hash = $1`, hash))
	return t, mapErr("reading portal token", err)
}

func (s portalTokenStore) RevokeForSubject(ctx context.Context, tenantID, subjectID string, at time.Time) (int, error) {
	return s.q.exec(ctx, "revoking portal tokens", `UPDATE portal_tokens SET revoked_at = $3
		WHERE tenant_id = $1 AND subject_id = $2 AND revoked_at = 0`, tenantID, subjectID, micros(at))
}

type subjectDataStore struct{ q *queries }

// DeleteForSubject returns counts keyed "access_records", "notifications"
// and "reveals"; reveals are found through the subject's devices.
func (s subjectDataStore) DeleteForSubject(ctx context.Context, tenantID, subjectID string) (map[string]int, error) {
	if err := requireID("deleting subject data", "subject ID", subjectID); err != nil {
		return nil, err
	}
	steps := []struct{ table, query string }{
		{"access_records", `DELETE FROM access_records WHERE tenant_id = $1 AND subject_id = $2`},
		{"notifications", `DELETE FROM notifications WHERE tenant_id = $1 AND subject_id = $2`},
		{"reveals", `DELETE FROM reveals WHERE tenant_id = $1 AND device_id IN
			(SELECT id FROM devices WHERE tenant_id = $1 AND subject_id = $2)`},
	}
	out := make(map[string]int, len(steps))
	for _, step := range steps {
		n, err := s.q.exec(ctx, "deleting subject "+step.table, step.query, tenantID, subjectID)
		if err != nil {
			return nil, err
		}
		out[step.table] = n
	}
	return out, nil
}
