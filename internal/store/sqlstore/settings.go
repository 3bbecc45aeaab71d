package sqlstore

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/store"
)

type settingStore struct{ q *queries }

func (s settingStore) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.q.x.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v)
	if err != nil {
		return nil, mapErr("reading setting", err)
	}
	if v == nil {
		v = []byte{} // present but empty: distinguishable from absent
	}
	return v, nil
}

func (s settingStore) Put(ctx context.Context, key string, value []byte) error {
	_, err := s.q.exec(ctx, "storing setting", `INSERT INTO settings (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

func (s settingStore) Swap(ctx context.Context, key string, old, value []byte) (bool, error) {
	n, err := s.q.exec(ctx, "swapping setting", `UPDATE settings SET value = $3 WHERE key = $1 AND value = $2`, key, old, value)
	return n == 1, err
}

func (s settingStore) PutIfAbsent(ctx context.Context, key string, value []byte) (bool, error) {
	n, err := s.q.exec(ctx, "storing setting", `INSERT INTO settings (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO NOTHING`, key, value)
	return n == 1, err
}

func (s settingStore) Delete(ctx context.Context, key string) error {
	return s.q.execOne(ctx, "deleting setting", `DELETE FROM settings WHERE key = $1`, key)
}

// DeletePrefix compares a substring rather than using LIKE, whose wildcards
// and case folding differ between the engines.
func (s settingStore) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if prefix == "" {
		return 0, errors.New("sqlstore: deleting settings by prefix needs a prefix")
	}
	return s.q.exec(ctx, "deleting settings", `DELETE FROM settings WHERE substr(key, 1, $1) = $2`,
		utf8.RuneCountInString(prefix), prefix)
}

func (s settingStore) ListPrefix(ctx context.Context, prefix, after string, limit int) ([]store.Setting, error) {
	if prefix == "" {
		return nil, errors.New("sqlstore: listing settings by prefix needs a prefix")
	}
	_, limit = pageArgs(store.Page{Limit: limit})
	rows, err := s.q.x.QueryContext(ctx, `SELECT key, value FROM settings WHERE substr(key, 1, $1) = $2 AND key > $3
		ORDER BY key LIMIT $4`, utf8.RuneCountInString(prefix), prefix, after, limit)
	return collect(rows, err, "listing settings", func(sc scanner) (store.Setting, error) {
		var st store.Setting
		err := sc.Scan(&st.Key, &st.Value)
		return st, err
	})
}

type leaseStore struct{ q *queries }

// TryAcquire is one upsert whose update only applies when the caller holds
// the lease already or it has expired, so racing nodes cannot both win.
func (s leaseStore) TryAcquire(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	n, err := s.q.exec(ctx, "acquiring lease", `INSERT INTO leases (name, holder, expires) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE leases.holder = excluded.holder OR leases.expires < $4`,
		name, holder, micros(now.Add(ttl)), micros(now))
	return n == 1, err
}

// Release gives the lease up if holder has it; releasing a lease one does not
// hold is not an error.
func (s leaseStore) Release(ctx context.Context, name, holder string) error {
	_, err := s.q.exec(ctx, "releasing lease", `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder)
	return err
}

var _ store.Queries = (*queries)(nil)
