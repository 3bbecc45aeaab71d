package sqlstore

import "database/sql"

// QueuedTx reports how many Tx calls wait for the SQLite writer.
func QueuedTx(db *DB) int { return len(db.committer.jobs) }

// Pools exposes the SQLite writer and reader pools for PRAGMA checks.
func Pools(db *DB) (write, read *sql.DB) { return db.write, db.read }
