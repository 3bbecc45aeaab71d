package sqlstore

import (
	"context"
	"database/sql"
)

// QueuedTx reports how many Tx calls wait for the SQLite writer.
func QueuedTx(db *DB) int { return len(db.committer.jobs) }

// Pools exposes the SQLite writer and reader pools for PRAGMA checks.
func Pools(db *DB) (write, read *sql.DB) { return db.write, db.read }

// MigrateTo applies the migrations up to version, for a test that fills
// rows of an earlier schema before migrating the rest.
func MigrateTo(ctx context.Context, db *DB, version int) error {
	all, err := db.migrations()
	if err != nil {
		return err
	}
	conn, err := db.writer().Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return err
	}
	for _, m := range all {
		if m.version > version {
			break
		}
		if err := applyMigration(ctx, conn, m); err != nil {
			return err
		}
	}
	return nil
}

// Exec runs a statement on the writer, for a test that writes rows the
// store's API cannot (an earlier schema's).
func Exec(ctx context.Context, db *DB, query string, args ...any) error {
	_, err := db.writer().ExecContext(ctx, query, args...)
	return err
}
