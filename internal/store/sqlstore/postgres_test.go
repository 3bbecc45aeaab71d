package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
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

// TestPostgresAccountNamesTakenInTurn: one transaction registers a person
// with an e-mail while another gives that name to someone else as their
// Apple account. Each checks the name is free before writing, which under
// read committed both would find, and no unique index spans the two
// columns: the tenant's name lock makes the second wait for the first and
// find the name taken.
func TestPostgresAccountNamesTakenInTurn(t *testing.T) {
	st := storetest.OpenPostgres(t)
	ctx := context.Background()
	now := time.Now().UTC()
	tenant := store.Tenant{ID: store.NewID(), Kind: store.TenantProvider, Name: "Names", CreatedAt: now, UpdatedAt: now}
	tenant.Slug = "names-" + tenant.ID
	other := store.Subject{ID: store.NewID(), TenantID: tenant.ID, Pseudonym: "person-other", EmailIndex: []byte("idx-other"),
		State: store.SubjectActive, CreatedAt: now, UpdatedAt: now}
	if err := st.Tx(ctx, func(q store.Queries) error {
		if err := q.Tenants().Create(ctx, tenant); err != nil {
			return err
		}
		return q.Subjects().Create(ctx, other)
	}); err != nil {
		t.Fatal(err)
	}
	created, done := make(chan struct{}), make(chan error, 1)
	go func() {
		<-created
		other.AppleIDIndex = []byte("idx-taken")
		done <- st.Tx(ctx, func(q store.Queries) error { return q.Subjects().Update(ctx, other) })
	}()
	err := st.Tx(ctx, func(q store.Queries) error {
		err := q.Subjects().Create(ctx, store.Subject{ID: store.NewID(), TenantID: tenant.ID, Pseudonym: "person-first",
			EmailIndex: []byte("idx-taken"), State: store.SubjectActive, CreatedAt: now, UpdatedAt: now})
		close(created)
		time.Sleep(300 * time.Millisecond) // the other transaction runs meanwhile, up to the lock
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, store.ErrConflict) {
		t.Fatalf("giving away a name registered at the same time: %v, want a conflict", err)
	}
}
