package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// maxBatch bounds how many transactions share one SQLite COMMIT.
const maxBatch = 256

// maxLinger bounds how long the writer waits for a batch to fill up.
const maxLinger = 200 * time.Microsecond

var errClosed = errors.New("sqlstore: store is closed")

// Job states: a queued job is claimed by exactly one of the writer (taken) or
// its caller giving up on a cancelled context (abandoned).
const (
	jobQueued int32 = iota
	jobTaken
	jobAbandoned
)

type txJob struct {
	fn    func(store.Queries) error
	state atomic.Int32
	done  chan txResult
}

type txResult struct {
	err      error
	panicked bool
	panicVal any
}

// groupCommitter makes SQLite durable and fast at once: every fsync is
// shared by all transactions queued while the previous one ran. Each caller's
// fn runs in its own SAVEPOINT, so one failing fn rolls back only itself, and
// no caller is acknowledged before the COMMIT carrying its writes returned.
type groupCommitter struct {
	db       *DB
	jobs     chan *txJob
	quit     chan struct{}
	finished chan struct{}
	stmts    stmtCache // used by the writer goroutine only
	mu       sync.RWMutex
	closed   bool
}

func newGroupCommitter(db *DB) *groupCommitter {
	c := &groupCommitter{
		db:       db,
		jobs:     make(chan *txJob, 4*maxBatch),
		quit:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	go c.loop()
	return c
}

// run queues fn and waits for its outcome. A caller whose ctx ends while the
// job is still queued gets ctx.Err() and fn never runs; once fn has started,
// the caller waits for the COMMIT so the answer is truthful.
func (c *groupCommitter) run(ctx context.Context, fn func(store.Queries) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &txJob{fn: fn, done: make(chan txResult, 1)}
	// The read lock orders sends before stop: a job is either queued while
	// the writer (or its final drain) will still see it, or refused.
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosed
	}
	select {
	case c.jobs <- j:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	var r txResult
	select {
	case r = <-j.done:
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
			return ctx.Err()
		}
		r = <-j.done
	}
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

func (c *groupCommitter) stop() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.quit)
	}
	c.mu.Unlock()
	<-c.finished
	c.stmts.close()
}

func (c *groupCommitter) loop() {
	defer close(c.finished)
	batch := make([]*txJob, 0, maxBatch)
	for {
		c.linger(len(batch))
		select {
		case j := <-c.jobs:
			batch = append(batch[:0], j)
		case <-c.quit:
			c.failQueued()
			return
		}
	collect:
		for len(batch) < maxBatch {
			select {
			case j := <-c.jobs:
				batch = append(batch, j)
			default:
				break collect
			}
		}
		c.commitBatch(batch)
		clear(batch) // keeps len: linger uses it
	}
}

// linger gives the callers acknowledged by the last batch a moment to come
// back with their next transaction. Without it, concurrent writers split
// into two cohorts that alternate, and each fsync carries half as many
// transactions as it could.
func (c *groupCommitter) linger(lastBatch int) {
	if lastBatch < 2 {
		return // no contention: never delay a lone writer
	}
	deadline := time.Now().Add(maxLinger)
	for len(c.jobs) < lastBatch && time.Now().Before(deadline) {
		runtime.Gosched()
	}
}

// failQueued answers jobs still queued at Close.
func (c *groupCommitter) failQueued() {
	for {
		select {
		case j := <-c.jobs:
			if j.state.CompareAndSwap(jobQueued, jobTaken) {
				j.done <- txResult{err: errClosed}
			}
		default:
			return
		}
	}
}

func (c *groupCommitter) commitBatch(batch []*txJob) {
	live := batch[:0:0]
	for _, j := range batch {
		if j.state.CompareAndSwap(jobQueued, jobTaken) {
			live = append(live, j)
		}
	}
	if len(live) == 0 {
		return
	}
	results := make([]txResult, len(live))
	// Background context: one caller's cancellation must not abort the
	// transaction that carries everyone else's writes.
	tx, err := c.db.write.BeginTx(context.Background(), nil)
	if err != nil {
		c.ackAll(live, fmt.Errorf("sqlstore: beginning write transaction: %w", err))
		c.db.log.Error("sqlstore: cannot begin write transaction", "error", err)
		return
	}
	x := &writerExecer{tx: tx, stmts: &c.stmts}
	q := &queries{db: c.db, x: x, inTx: true}
	for i, j := range live {
		if err := c.runInSavepoint(x, q, j, &results[i]); err != nil {
			_ = tx.Rollback()
			c.db.log.Error("sqlstore: write batch aborted", "jobs", len(live), "error", err)
			c.ackAll(live, err)
			return
		}
	}
	commitErr := tx.Commit()
	if commitErr != nil {
		commitErr = fmt.Errorf("sqlstore: committing write batch: %w", commitErr)
	}
	for i, j := range live {
		r := results[i]
		if commitErr != nil && r.err == nil && !r.panicked {
			r.err = commitErr
		}
		j.done <- r
	}
	// The writer connection is idle now: prepare what this batch met first.
	c.stmts.prepareNew(c.db.write)
}

// runInSavepoint runs one job. It returns an error only when the transaction
// itself is no longer usable, which aborts the whole batch.
func (c *groupCommitter) runInSavepoint(tx *writerExecer, q *queries, j *txJob, r *txResult) error {
	ctx := context.Background()
	if _, err := tx.ExecContext(ctx, "SAVEPOINT job"); err != nil {
		return fmt.Errorf("sqlstore: opening savepoint: %w", err)
	}
	*r = callFn(func() error { return q.runTx(j.fn) })
	if r.err != nil || r.panicked {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO job"); err != nil {
			return fmt.Errorf("sqlstore: rolling back savepoint: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE job"); err != nil {
		return fmt.Errorf("sqlstore: releasing savepoint: %w", err)
	}
	return nil
}

// callFn runs fn, turning a panic into a result so the writer survives; the
// caller's goroutine re-panics with the same value.
func callFn(fn func() error) (r txResult) {
	defer func() {
		if v := recover(); v != nil {
			r = txResult{panicked: true, panicVal: v}
		}
	}()
	return txResult{err: fn()}
}

func (c *groupCommitter) ackAll(jobs []*txJob, err error) {
	for _, j := range jobs {
		j.done <- txResult{err: err}
	}
}

// autoCommitExecer serves SQLite's Read(): queries go to the read-only pool
// and each write statement (a lease renewal, say) becomes its own transaction
// on the writer, so Read() accepts the occasional write like PostgreSQL does.
type autoCommitExecer struct{ db *DB }

func (a autoCommitExecer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := a.db.committer.run(ctx, func(q store.Queries) error {
		var err error
		res, err = q.(*queries).x.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

func (a autoCommitExecer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := a.db.readStmts.get(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return a.db.read.QueryContext(ctx, query, args...)
}

func (a autoCommitExecer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := a.db.readStmts.get(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return a.db.read.QueryRowContext(ctx, query, args...)
}
