// Package sqlstore implements store.Store on SQLite (embedded default, pure
// Go driver) and PostgreSQL (several nodes sharing one database). One set of
// query code serves both; the differences live in a small dialect value.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
	_ "modernc.org/sqlite"             // registers driver "sqlite"

	"github.com/steward-mdm/steward/internal/store"
)

// Option configures Open.
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger sets where the store logs infrastructure events (never row data).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// dialect holds everything that differs between the engines. Placeholders
// are $N on both: modernc's SQLite binds $N by ordinal.
type dialect struct {
	name string
	// forUpdate and forShare are appended to reads that must lock the row
	// inside Tx. SQLite needs neither: its writers run one at a time.
	forUpdate, forShare string
}

var (
	sqliteDialect   = dialect{name: "sqlite"}
	postgresDialect = dialect{name: "postgres", forUpdate: " FOR UPDATE", forShare: " FOR SHARE"}
)

// DB is a store.Store backed by database/sql.
type DB struct {
	dialect dialect
	log     *slog.Logger
	// read serves Read(); on PostgreSQL it is also the writer pool.
	read *sql.DB
	// write is SQLite's single writer connection, fed by committer.
	write     *sql.DB
	committer *groupCommitter
	readStmts *readStmts // SQLite's prepared read queries
}

var _ store.Store = (*DB)(nil)

// Open connects to dsn without migrating. postgres:// and postgresql://
// select PostgreSQL; anything else is a SQLite file path, optionally
// prefixed with "sqlite:" or "file:".
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	o := options{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return openPostgres(ctx, dsn, o)
	}
	return openSQLite(ctx, dsn, o)
}

func openPostgres(ctx context.Context, dsn string, o options) (*DB, error) {
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: opening postgres: %w", err)
	}
	pool.SetMaxOpenConns(4 * runtime.GOMAXPROCS(0))
	pool.SetMaxIdleConns(4 * runtime.GOMAXPROCS(0))
	db := &DB{dialect: postgresDialect, log: o.logger, read: pool}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sqlstore: connecting to postgres: %w", err)
	}
	return db, nil
}

func openSQLite(ctx context.Context, dsn string, o options) (*DB, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if path == "" {
		return nil, errors.New("sqlstore: empty SQLite path")
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		// Connection settings are ours to choose: durability depends on them.
		path = path[:i]
	}
	// synchronous=FULL: an acknowledged commit survives power loss, not just
	// a process crash. busy_timeout covers the readers' brief WAL checkpoints.
	// temp_store=MEMORY keeps the group committer's savepoint sub-journals
	// off disk; they are discarded at every COMMIT anyway.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "cache_size(-16384)")
	q.Add("_pragma", "temp_store(MEMORY)")
	base := "file:" + path + "?" + q.Encode()

	write, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: opening sqlite: %w", err)
	}
	// One writer connection: SQLite allows one writer at a time anyway, and
	// the group committer batches callers onto it.
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlstore: opening sqlite %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", base+"&_query_only=1")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlstore: opening sqlite readers: %w", err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	db := &DB{dialect: sqliteDialect, log: o.logger, read: read, write: write, readStmts: &readStmts{pool: read}}
	db.committer = newGroupCommitter(db)
	return db, nil
}

// Engine reports "sqlite" or "postgres".
func (db *DB) Engine() string { return db.dialect.name }

// Read returns queries on the read pool, outside any transaction.
// On SQLite, writes made through it are committed one statement at a time.
func (db *DB) Read() store.Queries {
	if db.committer != nil {
		return &queries{db: db, x: autoCommitExecer{db}}
	}
	return &queries{db: db, x: db.read}
}

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return err
	}
	if db.write != nil {
		return db.write.PingContext(ctx)
	}
	return nil
}

// Tx runs fn in a transaction; see store.Store.
func (db *DB) Tx(ctx context.Context, fn func(q store.Queries) error) error {
	if db.committer != nil {
		return db.committer.run(ctx, fn)
	}
	return db.postgresTx(ctx, fn)
}

// Close stops the writer and closes every connection.
func (db *DB) Close() error {
	if db.committer != nil {
		db.committer.stop()
		db.readStmts.close()
	}
	err := db.read.Close()
	if db.write != nil {
		err = errors.Join(err, db.write.Close())
	}
	return err
}
