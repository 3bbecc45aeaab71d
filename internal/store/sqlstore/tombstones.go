package sqlstore

import (
	"context"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type tombstoneStore struct{ q *queries }

const tombstoneColumns = `kind, subject_id, scope_id, decided_at, until_at`

func scanTombstone(s scanner) (store.Tombstone, error) {
	var t store.Tombstone
	var decided, until int64
	err := s.Scan(&t.Kind, &t.SubjectID, &t.ScopeID, &decided, &until)
	t.DecidedAt, t.Until = fromMicros(decided), fromMicros(until)
	return t, err
}

func (s tombstoneStore) Put(ctx context.Context, t store.Tombstone) error {
	_, err := s.q.exec(ctx, "recording a tombstone", `INSERT INTO vault_tombstones (`+tombstoneColumns+`)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		t.Kind, t.SubjectID, t.ScopeID, micros(t.DecidedAt), micros(t.Until))
	return err
}

func (s tombstoneStore) List(ctx context.Context, kind string, now time.Time, p store.Page) ([]store.Tombstone, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+tombstoneColumns+` FROM vault_tombstones
		WHERE kind = $1 AND subject_id > $2 AND (until_at = 0 OR until_at >= $3) ORDER BY subject_id LIMIT $4`,
		kind, after, micros(now), limit)
	return collect(rows, err, "listing tombstones", scanTombstone)
}

func (s tombstoneStore) PurgeEnded(ctx context.Context, now time.Time) (int, error) {
	return s.q.exec(ctx, "purging ended tombstones", `DELETE FROM vault_tombstones WHERE until_at > 0 AND until_at < $1`, micros(now))
}
