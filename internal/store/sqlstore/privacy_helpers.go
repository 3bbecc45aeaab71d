package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/steward-mdm/steward/internal/store"
)

// maxChunkRows bounds the rows of one multi-row INSERT.
const maxChunkRows = 64

// defaultPurgeLimit applies when a purge is asked for limit <= 0: purging
// nothing by mistake would keep personal data past its retention.
const defaultPurgeLimit = 1000

// chunkSizes splits n rows into power-of-two chunks of at most maxChunkRows.
// Few distinct statement shapes keep the SQLite writer's bounded statement
// cache from filling with one shape per row count.
func chunkSizes(n int) []int {
	var out []int
	for size := maxChunkRows; n > 0; size /= 2 {
		for n >= size {
			out = append(out, size)
			n -= size
		}
	}
	return out
}

// valuesList returns "($1, $2), ($3, $4)" for rows tuples of cols
// placeholders, or "(?, ?), (?, ?)" on SQLite, where numbered placeholders
// are named ones: SQLite finds each name by walking the statement's list of
// names, when parsing and again when binding, so a 64-row insert of ten
// columns cost hundreds of thousands of comparisons per execution.
func valuesList(d dialect, rows, cols int) string {
	var b strings.Builder
	n := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			if d.name == sqliteDialect.name {
				b.WriteByte('?')
			} else {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(n))
			}
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// insertRows inserts rows (each a tuple of args) with one statement per
// chunk: head is "INSERT INTO t (cols) VALUES " and tail follows the tuples.
// It returns how many rows the statements reported affected.
func (q *queries) insertRows(ctx context.Context, what, head, tail string, rows [][]any) (int, error) {
	total := 0
	for _, size := range chunkSizes(len(rows)) {
		chunk := rows[:size]
		rows = rows[size:]
		args := make([]any, 0, size*len(chunk[0]))
		for _, r := range chunk {
			args = append(args, r...)
		}
		n, err := q.exec(ctx, what, head+valuesList(q.db.dialect, size, len(chunk[0]))+tail, args...)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// insertAll inserts rows and reports ErrConflict when any of them clashed
// with an existing row (ON CONFLICT DO NOTHING keeps a PostgreSQL transaction
// usable, as in insert).
func (q *queries) insertAll(ctx context.Context, what, head string, rows [][]any) error {
	n, err := q.insertRows(ctx, what, head, " ON CONFLICT DO NOTHING", rows)
	if err != nil {
		return err
	}
	if n != len(rows) {
		return fmt.Errorf("sqlstore: %s: %d of %d rows already exist: %w", what, len(rows)-n, len(rows), store.ErrConflict)
	}
	return nil
}

// inWriteTx runs fn where a statement that writes and returns rows can run:
// SQLite's Read() sends queries to its read-only pool, so a DELETE ...
// RETURNING outside a transaction gets one of its own.
func (q *queries) inWriteTx(ctx context.Context, fn func(q *queries) error) error {
	if q.inTx {
		return fn(q)
	}
	return q.db.Tx(ctx, func(tq store.Queries) error {
		inner, ok := tq.(*queries)
		if !ok {
			return errors.New("sqlstore: transaction has an unexpected query type")
		}
		return fn(inner)
	})
}

type purgeKey struct{ tenant, category string }

// deleteReturning runs a DELETE ... RETURNING tenant_id[, category] and adds
// the removed rows to counts. A non-empty category means the statement
// returns tenant_id only and every row counts under that category.
func (q *queries) deleteReturning(ctx context.Context, what, query, category string, counts map[purgeKey]int,
	args ...any) (int, error) {
	rows, err := q.x.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, mapErr(what, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		k := purgeKey{category: category}
		dest := []any{&k.tenant}
		if category == "" {
			dest = append(dest, &k.category)
		}
		if err := rows.Scan(dest...); err != nil {
			return n, mapErr(what, err)
		}
		counts[k]++
		n++
	}
	if err := rows.Err(); err != nil {
		return n, mapErr(what, err)
	}
	return n, nil
}

// purgeCounts orders counts by tenant and category for a stable answer.
func purgeCounts(counts map[purgeKey]int) []store.PurgeCount {
	out := make([]store.PurgeCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, store.PurgeCount{TenantID: k.tenant, Category: k.category, Rows: n})
	}
	slices.SortFunc(out, func(a, b store.PurgeCount) int {
		return cmp.Or(cmp.Compare(a.TenantID, b.TenantID), cmp.Compare(a.Category, b.Category))
	})
	return out
}

// requireID refuses an empty ID where "" would match every unassigned row
// (devices without a person, for instance) instead of none.
func requireID(what, name, id string) error {
	if id == "" {
		return fmt.Errorf("sqlstore: %s: %s is required", what, name)
	}
	return nil
}

// notFoundOrConflict explains a conditional UPDATE that touched no row: the
// row is absent from the tenant (ErrNotFound) or not in the required state
// (ErrConflict).
func (q *queries) notFoundOrConflict(ctx context.Context, what, table, tenantID, id string) error {
	n, err := q.count(ctx, what, `SELECT COUNT(*) FROM `+table+` WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("sqlstore: %s: %w", what, store.ErrConflict)
}
