package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migrationLockKey is the pg_advisory_lock key that serialises migrations
// when several nodes start at once ("steward" in ASCII).
const migrationLockKey = 0x73746577617264

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns this engine's migrations by version; files are named
// NNNN_description.sql.
func (db *DB) migrations() ([]migration, error) {
	dir := "migrations/" + db.dialect.name
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: reading embedded migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlstore: migration %q is not named NNNN_name.sql", e.Name())
		}
		body, err := migrationFiles.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// writer is the pool that accepts schema changes.
func (db *DB) writer() *sql.DB {
	if db.write != nil {
		return db.write
	}
	return db.read
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`

// Migrate applies pending migrations, each in its own transaction, and
// returns how many ran.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	all, err := db.migrations()
	if err != nil {
		return 0, err
	}
	conn, err := db.writer().Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: migrating: %w", err)
	}
	defer conn.Close()
	if db.dialect.name == "postgres" {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
			return 0, fmt.Errorf("sqlstore: taking migration lock: %w", err)
		}
		// Unlock on a fresh context: the caller's may be done by now.
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
	}
	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return 0, fmt.Errorf("sqlstore: creating schema_migrations: %w", err)
	}
	applied, err := appliedVersion(ctx, conn)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range all {
		if m.version <= applied {
			continue
		}
		if err := applyMigration(ctx, conn, m); err != nil {
			return n, err
		}
		db.log.Info("sqlstore: applied migration", "engine", db.dialect.name, "migration", m.name)
		n++
	}
	return n, nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
		m.version, nowMicros()); err != nil {
		return fmt.Errorf("sqlstore: recording migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	return nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func appliedVersion(ctx context.Context, q queryRower) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlstore: reading schema version: %w", err)
	}
	return int(v.Int64), nil
}

// MigrationStatus reports the applied and the latest embedded version; an
// unmigrated database reports applied 0.
func (db *DB) MigrationStatus(ctx context.Context) (applied, latest int, err error) {
	all, err := db.migrations()
	if err != nil {
		return 0, 0, err
	}
	if len(all) > 0 {
		latest = all[len(all)-1].version
	}
	var exists int
	probe := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
	if db.dialect.name == "postgres" {
		probe = "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE tablename = 'schema_migrations' AND schemaname = current_schema()"
	}
	if err := db.read.QueryRowContext(ctx, probe).Scan(&exists); err != nil {
		return 0, latest, fmt.Errorf("sqlstore: reading schema version: %w", err)
	}
	if exists == 0 {
		return 0, latest, nil
	}
	applied, err = appliedVersion(ctx, db.read)
	return applied, latest, err
}
