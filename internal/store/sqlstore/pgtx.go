package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/steward-mdm/steward/internal/store"
)

// maxTxAttempts bounds how often a transaction is retried after PostgreSQL
// reports a serialisation failure or deadlock.
const maxTxAttempts = 5

func (db *DB) postgresTx(ctx context.Context, fn func(q store.Queries) error) error {
	var err error
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		err = db.postgresTxOnce(ctx, fn)
		if !isRetryable(err) || attempt == maxTxAttempts {
			return err
		}
		// Jittered backoff so the transactions that collided do not collide again.
		backoff := time.Duration(attempt) * (2*time.Millisecond + rand.N(5*time.Millisecond))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
		db.log.Debug("sqlstore: retrying transaction", "attempt", attempt+1, "error", err)
	}
	return err
}

func (db *DB) postgresTxOnce(ctx context.Context, fn func(q store.Queries) error) error {
	tx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: beginning transaction: %w", err)
	}
	// Deferred, so a panicking fn also gives its connection back; after a
	// commit it does nothing.
	defer func() { _ = tx.Rollback() }()
	q := &queries{db: db, x: tx, inTx: true}
	if err := q.runTx(fn); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: committing: %w", err)
	}
	return nil
}

// isRetryable reports a PostgreSQL serialisation failure (40001) or
// deadlock (40P01); the transaction can be run again from the start.
func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
