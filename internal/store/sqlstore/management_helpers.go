package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/steward-mdm/steward/internal/store"
)

// maxInList bounds the placeholders of one IN (...) list, well below both
// engines' parameter limits.
const maxInList = 500

// placeholders returns "$first, $first+1, …" for an IN list of ids, and
// the arguments. The list is padded to a power of two (or maxInList) by
// repeating the last ID, which an IN list ignores: lists then come in a
// dozen shapes, and their prepared statements are reused rather than
// filling the statement caches.
func placeholders(ids []string, first int) (string, []any) {
	n := 1
	for n < len(ids) {
		n *= 2
	}
	n = max(min(n, maxInList), len(ids))
	var b strings.Builder
	args := make([]any, n)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
		args[i] = ids[min(i, len(ids)-1)]
	}
	return b.String(), args
}

// forChunks calls fn with consecutive slices of ids of at most maxInList.
func forChunks(ids []string, fn func(chunk []string) error) error {
	for start := 0; start < len(ids); start += maxInList {
		if err := fn(ids[start:min(start+maxInList, len(ids))]); err != nil {
			return err
		}
	}
	return nil
}

// uniqueSorted returns ids sorted without duplicates or empty strings, as a
// new slice; nil when none remain.
func uniqueSorted(ids []string) []string {
	out := slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == "" })
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

func scanString(s scanner) (string, error) {
	var v string
	err := s.Scan(&v)
	return v, err
}

func scanPair(s scanner) ([2]string, error) {
	var p [2]string
	err := s.Scan(&p[0], &p[1])
	return p, err
}

// limitOf applies the store's page-size rule to a bare limit.
func limitOf(n int) int {
	_, limit := pageArgs(store.Page{Limit: n})
	return limit
}

// stringList reads a single-column list of strings.
func (q *queries) stringList(ctx context.Context, what, query string, args ...any) ([]string, error) {
	rows, err := q.x.QueryContext(ctx, query, args...)
	return collect(rows, err, what, scanString)
}

// requireGroups returns ErrNotFound unless every one of groupIDs (unique) is
// a group of the tenant.
func (q *queries) requireGroups(ctx context.Context, what, tenantID string, groupIDs []string) error {
	return forChunks(groupIDs, func(chunk []string) error {
		marks, args := placeholders(chunk, 2)
		n, err := q.count(ctx, what, `SELECT COUNT(*) FROM device_groups WHERE tenant_id = $1 AND id IN (`+marks+`)`,
			append([]any{tenantID}, args...)...)
		if err != nil {
			return err
		}
		if n != len(chunk) {
			return fmt.Errorf("sqlstore: %s: %d of the groups are not groups of the tenant: %w", what, len(chunk)-n, store.ErrNotFound)
		}
		return nil
	})
}

// requireRow returns ErrNotFound unless table has a row id in the tenant.
func (q *queries) requireRow(ctx context.Context, what, table, tenantID, id string) error {
	n, err := q.count(ctx, what, `SELECT COUNT(*) FROM `+table+` WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", what, store.ErrNotFound)
	}
	return nil
}

// nameTaken returns ErrConflict when another row of the tenant has name. It
// runs before an UPDATE so that a clash does not abort a PostgreSQL
// transaction the caller wants to keep using.
func (q *queries) nameTaken(ctx context.Context, what, table, tenantID, id, name string) error {
	n, err := q.count(ctx, what, `SELECT COUNT(*) FROM `+table+` WHERE tenant_id = $1 AND name = $2 AND id <> $3`,
		tenantID, name, id)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("sqlstore: %s: the name is taken: %w", what, store.ErrConflict)
	}
	return nil
}

// notEmptyBlob stores nil as an empty byte string for NOT NULL blob columns.
func notEmptyBlob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// blobParam returns placeholder n typed as a byte string where it stands in
// a SELECT list (INSERT … SELECT): PostgreSQL would otherwise take it for
// text. SQLite needs no cast, and CAST(… AS BYTEA) would make it numeric.
func (q *queries) blobParam(n int) string {
	if q.db.dialect.name == "postgres" {
		return "CAST($" + strconv.Itoa(n) + " AS BYTEA)"
	}
	return "$" + strconv.Itoa(n)
}
