package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type approvalStore struct{ q *queries }

const approvalColumns = `id, tenant_id, kind, payload, reason, requested_by, state, decided_by, created_at,
	expires_at, decided_at`

func scanApproval(s scanner) (store.Approval, error) {
	var a store.Approval
	var payload string
	var created, expires, decided int64
	err := s.Scan(&a.ID, &a.TenantID, &a.Kind, &payload, &a.Reason, &a.RequestedBy, &a.State, &a.DecidedBy,
		&created, &expires, &decided)
	a.Payload = nonEmpty([]byte(payload))
	a.CreatedAt, a.ExpiresAt, a.DecidedAt = fromMicros(created), fromMicros(expires), fromMicros(decided)
	return a, err
}

func (s approvalStore) Create(ctx context.Context, a store.Approval) error {
	return s.q.insert(ctx, "creating approval", `INSERT INTO approvals (`+approvalColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.ID, a.TenantID, a.Kind, string(a.Payload), a.Reason, a.RequestedBy, a.State, a.DecidedBy,
		micros(a.CreatedAt), micros(a.ExpiresAt), micros(a.DecidedAt))
}

func (s approvalStore) Get(ctx context.Context, tenantID, id string) (store.Approval, error) {
	a, err := scanApproval(s.q.x.QueryRowContext(ctx, `SELECT `+approvalColumns+` FROM approvals
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return a, mapErr("reading approval", err)
}

func (s approvalStore) List(ctx context.Context, tenantID string, p store.Page) ([]store.Approval, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+approvalColumns+` FROM approvals
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing approvals", scanApproval)
}

// Decide is one conditional UPDATE, so of two admins deciding at once
// exactly one succeeds.
func (s approvalStore) Decide(ctx context.Context, tenantID, id, state, by string, at time.Time) error {
	if state != "approved" && state != "rejected" {
		return fmt.Errorf("sqlstore: deciding approval: state %q is not approved or rejected", state)
	}
	n, err := s.q.exec(ctx, "deciding approval", `UPDATE approvals SET state = $3, decided_by = $4, decided_at = $5
		WHERE tenant_id = $1 AND id = $2 AND state = 'pending'`, tenantID, id, state, by, micros(at))
	if err != nil || n == 1 {
		return err
	}
	return s.q.notFoundOrConflict(ctx, "deciding approval", "approvals", tenantID, id)
}

// settledApproval is the condition of store.ApprovalStore.Settled, with at
// as $1: the same instant CheckDecider calls expired.
const settledApproval = `(state <> 'pending' OR expires_at <= $1)`

func (s approvalStore) Settled(ctx context.Context, kind string, at time.Time, afterID string, limit int) ([]store.Approval, error) {
	_, limit = pageArgs(store.Page{Limit: limit})
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+approvalColumns+` FROM approvals
		WHERE `+settledApproval+` AND kind = $2 AND id > $3 ORDER BY id LIMIT $4`, micros(at), kind, afterID, limit)
	return collect(rows, err, "listing settled approvals", scanApproval)
}

func (s approvalStore) ForgetSecrets(ctx context.Context, tenantID, id string, payload []byte, at time.Time) error {
	n, err := s.q.exec(ctx, "forgetting an approval's secrets", `UPDATE approvals SET payload = $4
		WHERE `+settledApproval+` AND tenant_id = $2 AND id = $3`, micros(at), tenantID, id, string(payload))
	if err != nil || n == 1 {
		return err
	}
	return s.q.notFoundOrConflict(ctx, "forgetting an approval's secrets", "approvals", tenantID, id)
}

type noticeStore struct{ q *queries }

const noticeColumns = `id, tenant_id, ownership, version, language, title, body, created_by, published_at`

func scanNotice(s scanner) (store.Notice, error) {
	var n store.Notice
	var published int64
	err := s.Scan(&n.ID, &n.TenantID, &n.Ownership, &n.Version, &n.Language, &n.Title, &n.Body, &n.CreatedBy,
		&published)
	n.PublishedAt = fromMicros(published)
	return n, err
}

func (s noticeStore) Create(ctx context.Context, n store.Notice) error {
	return s.q.insert(ctx, "creating notice", `INSERT INTO notices (`+noticeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		n.ID, n.TenantID, n.Ownership, n.Version, n.Language, n.Title, n.Body, n.CreatedBy, micros(n.PublishedAt))
}

// List orders by version descending, then ownership, language and ID so
// the order is the same on both engines.
func (s noticeStore) List(ctx context.Context, tenantID, ownership string) ([]store.Notice, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+noticeColumns+` FROM notices
		WHERE tenant_id = $1 AND ($2 = '' OR ownership = $2)
		ORDER BY version DESC, ownership, language, id`, tenantID, ownership)
	return collect(rows, err, "listing notices", scanNotice)
}

type consentStore struct{ q *queries }

const consentColumns = `id, tenant_id, subject_id, device_id, ownership, notice_version, language, method,
	allow_full_wipe, accepted_at, withdrawn_at, shown, notice_sha256, summary_sha256`

func scanConsent(s scanner) (store.Consent, error) {
	var c store.Consent
	var accepted, withdrawn int64
	err := s.Scan(&c.ID, &c.TenantID, &c.SubjectID, &c.DeviceID, &c.Ownership, &c.NoticeVersion, &c.Language,
		&c.Method, &c.AllowFullWipe, &accepted, &withdrawn, &c.Shown, &c.NoticeSHA256, &c.SummarySHA256)
	c.AcceptedAt, c.WithdrawnAt = fromMicros(accepted), fromMicros(withdrawn)
	return c, err
}

// Create keeps the summary text first: a text already held under the same
// digest is the same text, so thousands of consents share one row.
func (s consentStore) Create(ctx context.Context, c store.Consent) error {
	if c.Shown == "" {
		c.Shown = store.ConsentShownNotRecorded
	}
	if c.SummarySHA256 != "" {
		if _, err := s.q.exec(ctx, "keeping the summary shown", `INSERT INTO consent_texts (tenant_id, sha256, body, first_shown_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, sha256) DO NOTHING`,
			c.TenantID, c.SummarySHA256, c.Summary, micros(c.AcceptedAt)); err != nil {
			return err
		}
	}
	return s.q.insert(ctx, "creating consent", `INSERT INTO consents (`+consentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		c.ID, c.TenantID, c.SubjectID, c.DeviceID, c.Ownership, c.NoticeVersion, c.Language, c.Method,
		boolInt(c.AllowFullWipe), micros(c.AcceptedAt), micros(c.WithdrawnAt), c.Shown, c.NoticeSHA256, c.SummarySHA256)
}

func (s consentStore) ShownText(ctx context.Context, tenantID, digest string) (string, error) {
	var body string
	err := s.q.x.QueryRowContext(ctx, `SELECT body FROM consent_texts WHERE tenant_id = $1 AND sha256 = $2`,
		tenantID, digest).Scan(&body)
	return body, mapErr("reading a shown text", err)
}

func (s consentStore) ListForSubject(ctx context.Context, tenantID, subjectID string) ([]store.Consent, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE tenant_id = $1 AND subject_id = $2 ORDER BY id`, tenantID, subjectID)
	return collect(rows, err, "listing consents", scanConsent)
}

func (s consentStore) HoldForSubject(ctx context.Context, tenantID, subjectID string) error {
	lock := s.q.lockClause("SHARE")
	if lock == "" {
		return nil // SQLite's writer holds the whole database already
	}
	rows, err := s.q.x.QueryContext(ctx, `SELECT id FROM consents WHERE tenant_id = $1 AND subject_id = $2 ORDER BY id`+lock,
		tenantID, subjectID)
	_, err = collect(rows, err, "holding consents", func(sc scanner) (string, error) {
		var id string
		return id, sc.Scan(&id)
	})
	return err
}

func (s consentStore) LiveVersions(ctx context.Context, tenantID, ownership string) ([]int64, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT DISTINCT notice_version FROM consents
		WHERE tenant_id = $1 AND ownership = $2 AND withdrawn_at = 0 ORDER BY notice_version`, tenantID, ownership)
	return collect(rows, err, "listing live consent versions", scanVersion)
}

// scanVersion reads one notice version.
func scanVersion(r scanner) (int64, error) {
	var v int64
	err := r.Scan(&v)
	return v, err
}

func (s consentStore) Withdraw(ctx context.Context, tenantID, id string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("sqlstore: withdrawing consent: withdrawal time is required")
	}
	n, err := s.q.exec(ctx, "withdrawing consent", `UPDATE consents SET withdrawn_at = $3
		WHERE tenant_id = $1 AND id = $2 AND withdrawn_at = 0`, tenantID, id, micros(at))
	if err != nil || n == 1 {
		return err
	}
	return s.q.notFoundOrConflict(ctx, "withdrawing consent", "consents", tenantID, id)
}
