package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPostgresConcurrentMigrate starts several "nodes" on one empty schema
// at once: the advisory lock must let exactly one apply each migration.
func TestPostgresConcurrentMigrate(t *testing.T) {
	storetest.OpenPostgres(t) // skip rules as for every PostgreSQL test
	dsn := os.Getenv(storetest.PostgresEnv)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	schema := fmt.Sprintf("steward_test_migrate_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	defer admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	const nodes = 4
	applied := make([]int, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			db, err := sqlstore.Open(ctx, u.String(), quiet)
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			if applied[i], err = db.Migrate(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range applied {
		total += n
	}
	db, err := sqlstore.Open(ctx, u.String(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, latest, err := db.MigrationStatus(ctx)
	if err != nil || total != latest || got != latest {
		t.Fatalf("nodes applied %v (total %d); status (%d, %d, %v); want each migration applied once", applied, total, got, latest, err)
	}
}

// TestPostgresRetriesDeadlock locks two chain heads in opposite orders; the
// deadlock PostgreSQL detects must be retried, so both Tx calls succeed.
func TestPostgresRetriesDeadlock(t *testing.T) {
	st := storetest.OpenPostgres(t)
	ctx := context.Background()
	var attempts atomic.Int32
	var bothLocked sync.WaitGroup
	bothLocked.Add(2)
	var firstAttempt [2]sync.Once
	lockBoth := func(i int, first, second string) error {
		return st.Tx(ctx, func(q store.Queries) error {
			attempts.Add(1)
			if _, err := q.Audit().Head(ctx, first); err != nil {
				return err
			}
			firstAttempt[i].Do(func() { bothLocked.Done(); bothLocked.Wait() })
			_, err := q.Audit().Head(ctx, second)
			return err
		})
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = lockBoth(0, "tenant-a", "tenant-b") })
	wg.Go(func() { errs[1] = lockBoth(1, "tenant-b", "tenant-a") })
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || attempts.Load() < 3 {
		t.Fatalf("errors %v, %d attempts; want both to succeed after a retry", errs, attempts.Load())
	}
}
