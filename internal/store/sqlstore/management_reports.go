package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type reportStore struct{ q *queries }

const scheduleColumns = `id, tenant_id, kind, format, recipients, every, link_days, password_sealed, next_run_at, last_run_at,
	created_by, created_at`

func scanSchedule(s scanner) (store.ReportSchedule, error) {
	var r store.ReportSchedule
	var recipients string
	var next, last, created int64
	err := s.Scan(&r.ID, &r.TenantID, &r.Kind, &r.Format, &recipients, &r.Every, &r.LinkDays, &r.PasswordSealed, &next, &last,
		&r.CreatedBy, &created)
	if err == nil {
		err = json.Unmarshal([]byte(recipients), &r.Recipients)
	}
	r.NextRunAt, r.LastRunAt, r.CreatedAt = fromMicros(next), fromMicros(last), fromMicros(created)
	return r, err
}

func (s reportStore) CreateSchedule(ctx context.Context, r store.ReportSchedule) error {
	recipients, err := json.Marshal(r.Recipients)
	if err != nil {
		return err
	}
	return s.q.insert(ctx, "adding report schedule", `INSERT INTO report_schedules (`+scheduleColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, r.ID, r.TenantID, r.Kind, r.Format, string(recipients), r.Every,
		r.LinkDays, r.PasswordSealed, micros(r.NextRunAt), micros(r.LastRunAt), r.CreatedBy, micros(r.CreatedAt))
}

func (s reportStore) GetSchedule(ctx context.Context, tenantID, id string) (store.ReportSchedule, error) {
	r, err := scanSchedule(s.q.x.QueryRowContext(ctx, `SELECT `+scheduleColumns+` FROM report_schedules
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return r, mapErr("reading report schedule", err)
}

func (s reportStore) ListSchedules(ctx context.Context, tenantID string, p store.Page) ([]store.ReportSchedule, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+scheduleColumns+` FROM report_schedules
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing report schedules", scanSchedule)
}

// DeleteSchedule also withdraws the schedule's published reports.
func (s reportStore) DeleteSchedule(ctx context.Context, tenantID, id string) error {
	return s.q.inWriteTx(ctx, func(q *queries) error {
		if err := q.execOne(ctx, "deleting report schedule", `DELETE FROM report_schedules WHERE tenant_id = $1 AND id = $2`,
			tenantID, id); err != nil {
			return err
		}
		_, err := q.exec(ctx, "withdrawing published reports", `DELETE FROM published_reports WHERE tenant_id = $1 AND schedule_id = $2`,
			tenantID, id)
		return err
	})
}

// DueSchedules orders by due time, then ID.
func (s reportStore) DueSchedules(ctx context.Context, now time.Time, limit int) ([]store.ReportSchedule, error) {
	_, limit = pageArgs(store.Page{Limit: limit})
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+scheduleColumns+` FROM report_schedules
		WHERE next_run_at <= $1 ORDER BY next_run_at, id LIMIT $2`, micros(now), limit)
	return collect(rows, err, "listing due report schedules", scanSchedule)
}

func (s reportStore) MarkRun(ctx context.Context, tenantID, id string, ran, next time.Time) error {
	return s.q.execOne(ctx, "recording a report run", `UPDATE report_schedules SET last_run_at = $3, next_run_at = $4
		WHERE tenant_id = $1 AND id = $2`, tenantID, id, micros(ran), micros(next))
}

const publishedColumns = `id, tenant_id, schedule_id, token_hash, archive, expires_at, created_at`

func (s reportStore) Publish(ctx context.Context, r store.PublishedReport) error {
	return s.q.insert(ctx, "publishing a report", `INSERT INTO published_reports (`+publishedColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.ID, r.TenantID, r.ScheduleID, r.TokenHash, r.Archive, micros(r.ExpiresAt), micros(r.CreatedAt))
}

func (s reportStore) PublishedByToken(ctx context.Context, tokenHash []byte) (store.PublishedReport, error) {
	var r store.PublishedReport
	var expires, created int64
	err := s.q.x.QueryRowContext(ctx, `SELECT `+publishedColumns+` FROM published_reports WHERE token_hash = $1`, tokenHash).
		Scan(&r.ID, &r.TenantID, &r.ScheduleID, &r.TokenHash, &r.Archive, &expires, &created)
	r.ExpiresAt, r.CreatedAt = fromMicros(expires), fromMicros(created)
	return r, mapErr("reading a published report", err)
}

func (s reportStore) PurgePublished(ctx context.Context, cutoff time.Time, limit int) ([]store.PurgeCount, error) {
	return s.q.purgeByID(ctx, "published_reports", "published_reports", `expires_at < $1`, micros(cutoff), limit)
}
