// Package storetest is the conformance suite every store.Store engine must
// pass, plus helpers that give other packages' tests a real, isolated store.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
)

// PostgresEnv names the environment variable holding the test database DSN.
const PostgresEnv = "STEWARD_TEST_POSTGRES_DSN"

// OpenSQLite returns a migrated SQLite store in a temporary directory,
// closed when the test ends.
func OpenSQLite(t testing.TB) store.Store {
	t.Helper()
	return openMigrated(t, filepath.Join(t.TempDir(), "steward.db"))
}

// OpenSQLiteAt is OpenSQLite at a path the test chooses, for a test that
// must reach the file itself (to damage a row, say).
func OpenSQLiteAt(t testing.TB, path string) store.Store {
	t.Helper()
	return openMigrated(t, path)
}

// OpenPostgres returns a migrated PostgreSQL store in a fresh schema of the
// database named by STEWARD_TEST_POSTGRES_DSN, dropped when the test ends.
// Without a reachable database the test is skipped, unless CI=true, where
// a missing database is a failure.
func OpenPostgres(t testing.TB) store.Store {
	t.Helper()
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		unavailable(t, PostgresEnv+" is not set")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		unavailable(t, "cannot parse "+PostgresEnv+": "+err.Error())
	}
	t.Cleanup(func() { admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		unavailable(t, "PostgreSQL at "+PostgresEnv+" is unreachable: "+err.Error())
	}
	schema := "steward_test_" + randomHex(8)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("storetest: creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storetest: dropping schema %s: %v", schema, err)
		}
	})
	st := openMigrated(t, withSearchPath(dsn, schema))
	postgresSchemas.Store(st, schema)
	t.Cleanup(func() { postgresSchemas.Delete(st) })
	return st
}

// postgresSchemas maps each store OpenPostgres made to its schema, which is
// also the application_name of the store's connections.
var postgresSchemas sync.Map

// AwaitLockWaiters waits until at least n of the connections of st, a store
// from OpenPostgres, are waiting for a lock: a race test can then start its
// next contender knowing the earlier ones queued first, however loaded the
// machine is.
func AwaitLockWaiters(t testing.TB, st store.Store, n int) {
	t.Helper()
	schema, ok := postgresSchemas.Load(st)
	if !ok {
		t.Fatal("storetest: AwaitLockWaiters needs a store from OpenPostgres")
	}
	admin, err := sql.Open("pgx", os.Getenv(PostgresEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
			schema).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("storetest: %d connections wait for a lock after 10 s, want %d", waiting, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ForEachEngine runs fn against a fresh store of each engine, as subtests
// "sqlite" and "postgres".
func ForEachEngine(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, OpenSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, OpenPostgres(t)) })
}

func openMigrated(t testing.TB, dsn string) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, dsn, sqlstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("storetest: opening store: %v", err)
	}
	// Cleanups run last-in first-out: the store closes before its schema is dropped.
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("storetest: closing store: %v", err)
		}
	})
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatalf("storetest: migrating: %v", err)
	}
	return st
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("storetest: PostgreSQL tests cannot run in CI: %s (set %s to a reachable database)", why, PostgresEnv)
	}
	t.Skipf("storetest: skipping PostgreSQL: %s", why)
}

// withSearchPath adds search_path to a URL or keyword/value DSN, so every
// pooled connection uses the test's schema.
func withSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && strings.Contains(dsn, "://") {
		q := u.Query()
		q.Set("search_path", schema)
		q.Set("application_name", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema + " application_name=" + schema
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// AllValues returns every value in every table of st as bytes, so a test can
// scan the database for data that must not be there (or must be).
func AllValues(t testing.TB, st store.Store) []byte {
	t.Helper()
	db, ok := st.(*sqlstore.DB)
	if !ok {
		t.Fatalf("storetest: AllValues needs a *sqlstore.DB, got %T", st)
	}
	var buf bytes.Buffer
	err := db.Dump(context.Background(), nil, func(sqlstore.DumpInfo) error { return nil }, func(_ string, row []any) error {
		for _, v := range row {
			fmt.Fprintf(&buf, "%v\x00", v)
			if b, ok := v.([]byte); ok {
				buf.Write(b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Hold runs fn in a transaction that stays open until release is called,
// or the test ends: writers that need what fn took queue behind it. A test
// that fails while holding still ends the transaction, or the store's
// cleanup would wait for it.
func Hold(t testing.TB, st store.Store, fn func(q store.Queries) error) (release func()) {
	t.Helper()
	held, done, result := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		result <- st.Tx(context.Background(), func(q store.Queries) error {
			if err := fn(q); err != nil {
				return err
			}
			close(held)
			<-done
			return nil
		})
	}()
	select {
	case <-held:
	case err := <-result:
		t.Fatalf("holding a transaction open: %v", err)
	}
	var once sync.Once
	var err error
	finish := func() error {
		once.Do(func() { close(done); err = <-result })
		return err
	}
	t.Cleanup(func() { _ = finish() })
	return func() {
		t.Helper()
		if err := finish(); err != nil {
			t.Fatal(err)
		}
	}
}

// ErasingMeanwhile runs fn while a transaction that marks person subjectID
// erased, having locked them first, stays open, as an erasure would; it
// commits once fn waits for that lock (st from OpenPostgres), and fn's
// error is returned. A test then checks that fn, having read the person
// before the erasure committed, left nothing of theirs behind.
func ErasingMeanwhile(t testing.TB, st store.Store, tenantID, subjectID string, fn func() error) error {
	t.Helper()
	ctx := context.Background()
	release := Hold(t, st, func(q store.Queries) error {
		sub, err := q.Subjects().Lock(ctx, tenantID, subjectID)
		if err != nil {
			return err
		}
		sub.State, sub.EmailIndex = store.SubjectErased, nil
		return q.Subjects().Update(ctx, sub)
	})
	done := make(chan error, 1)
	go func() { done <- fn() }()
	AwaitLockWaiters(t, st, 1)
	release()
	return <-done
}
