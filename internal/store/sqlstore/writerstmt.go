package sqlstore

import (
	"context"
	"database/sql"
)

// maxCachedStmts bounds the writer's statement cache.
const maxCachedStmts = 256

// stmtCache keeps the SQLite writer's statements prepared: parsing SQL cost
// about as much as executing it, and the writer runs the same few dozen
// statements all day. It is touched only by the writer goroutine.
type stmtCache struct {
	prepared map[string]*sql.Stmt
	// pending are statements seen inside a transaction. They are prepared
	// on the pool once the transaction ends, because the pool's single
	// connection is busy until then.
	pending map[string]bool
}

// stmt returns the cached statement bound to tx, or nil when the query has
// not been prepared yet (it is then remembered for the next batch).
func (c *stmtCache) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	if s, ok := c.prepared[query]; ok {
		return tx.StmtContext(ctx, s)
	}
	if len(c.prepared) >= maxCachedStmts {
		return nil // audit List builds many filter shapes; keep the cache bounded
	}
	if c.pending == nil {
		c.pending = map[string]bool{}
	}
	c.pending[query] = true
	return nil
}

// prepareNew prepares the pending statements on db's (now idle) connection.
// A failure only means the statement stays unprepared.
func (c *stmtCache) prepareNew(db *sql.DB) {
	if len(c.pending) == 0 {
		return
	}
	if c.prepared == nil {
		c.prepared = map[string]*sql.Stmt{}
	}
	for query := range c.pending {
		if s, err := db.Prepare(query); err == nil {
			c.prepared[query] = s
		}
	}
	clear(c.pending)
}

func (c *stmtCache) close() {
	for _, s := range c.prepared {
		s.Close()
	}
}

// writerExecer runs a batch's statements through the statement cache and
// without their context's cancellation: the SQLite driver interrupts a
// cancelled statement, which can roll back the whole shared transaction.
// Batched statements are short, so waiting for one to finish is fine.
type writerExecer struct {
	tx    *sql.Tx
	stmts *stmtCache
	// bound holds the cached statements already bound to tx, so each is
	// bound once per batch rather than once per call.
	bound map[string]*sql.Stmt
}

func (w *writerExecer) stmt(ctx context.Context, query string) *sql.Stmt {
	if s, ok := w.bound[query]; ok {
		return s
	}
	s := w.stmts.stmt(ctx, w.tx, query)
	if s != nil {
		if w.bound == nil {
			w.bound = map[string]*sql.Stmt{}
		}
		w.bound[query] = s
	}
	return s
}

func (w *writerExecer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = context.WithoutCancel(ctx)
	if s := w.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return w.tx.ExecContext(ctx, query, args...)
}

func (w *writerExecer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = context.WithoutCancel(ctx)
	if s := w.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return w.tx.QueryContext(ctx, query, args...)
}

func (w *writerExecer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = context.WithoutCancel(ctx)
	if s := w.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return w.tx.QueryRowContext(ctx, query, args...)
}
