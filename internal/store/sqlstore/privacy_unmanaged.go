package sqlstore

import (
	"context"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// unmanagedSubject is store.SubjectStore.Unmanaged's condition on subjects
// aliased s: $1 the cutoff, $2 now, $3 and $4 the enrolment states in which
// a link can still enrol a device (open, accepted).
const unmanagedSubject = `s.state = 'active' AND s.unmanaged_since > 0 AND s.unmanaged_since < $1
	AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.tenant_id = s.tenant_id AND d.subject_id = s.id AND d.deprovisioned_at = 0)
	AND NOT EXISTS (SELECT 1 FROM enrolments e WHERE e.tenant_id = s.tenant_id AND e.subject_id = s.id
		AND e.state IN ($3, $4) AND e.expires_at > $2)`

func (s subjectStore) MarkUnmanaged(ctx context.Context, tenantID, id string, since time.Time) error {
	return s.q.execOne(ctx, "marking a person unmanaged", `UPDATE subjects SET unmanaged_since = $3
		WHERE tenant_id = $1 AND id = $2`, tenantID, id, micros(since))
}

func (s subjectStore) Unmanaged(ctx context.Context, cutoff, now time.Time, afterID string, limit int) ([]store.Subject, error) {
	_, limit = pageArgs(store.Page{Limit: limit})
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+subjectColumns+` FROM subjects s
		WHERE `+unmanagedSubject+` AND s.id > $5 ORDER BY s.id LIMIT $6`,
		micros(cutoff), micros(now), store.EnrolmentOpen, store.EnrolmentAccepted, afterID, limit)
	return collect(rows, err, "listing unmanaged people", scanSubject)
}

func (s subjectStore) IsUnmanaged(ctx context.Context, tenantID, id string, cutoff, now time.Time) (bool, error) {
	n, err := s.q.count(ctx, "checking a person is unmanaged", `SELECT COUNT(*) FROM subjects s
		WHERE `+unmanagedSubject+` AND s.tenant_id = $5 AND s.id = $6`,
		micros(cutoff), micros(now), store.EnrolmentOpen, store.EnrolmentAccepted, tenantID, id)
	return n == 1, err
}
