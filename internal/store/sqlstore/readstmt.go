package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// maxReadStmts bounds the readers' statement cache; queries built from
// filters (audit search, device lists) beyond it run unprepared.
const maxReadStmts = 512

// readStmts keeps SQLite's read queries prepared. The driver parses a query
// on every call otherwise, which cost a fifth of an idle check-in's CPU.
// A *sql.Stmt prepares itself once per pooled connection as it meets them.
type readStmts struct {
	pool *sql.DB
	mu   sync.RWMutex
	m    map[string]*sql.Stmt
}

// get returns the prepared statement for query, or nil when it cannot be
// prepared or the cache is full: the caller then runs the query directly,
// and a genuinely bad query reports its error there.
func (c *readStmts) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.RLock()
	s, ok := c.m[query]
	full := len(c.m) >= maxReadStmts
	c.mu.RUnlock()
	if ok || full {
		return s
	}
	s, err := c.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok { // another caller won the race
		s.Close()
		return prev
	}
	if len(c.m) >= maxReadStmts {
		s.Close()
		return nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = s
	return s
}

func (c *readStmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		s.Close()
	}
	c.m = nil
}
