package sqlstore_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.OpenSQLite(t) })
}

func TestConformancePostgres(t *testing.T) {
	storetest.OpenPostgres(t) // skips (or fails in CI) once, up front, without a database
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.OpenPostgres(t) })
}

var quiet = sqlstore.WithLogger(slog.New(slog.DiscardHandler))

func openSQLite(t *testing.T, path string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// blockWriter occupies the SQLite writer until the returned func is called,
// so Tx calls made meanwhile queue up and share the next batch.
func blockWriter(t *testing.T, db *sqlstore.DB) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	go db.Tx(context.Background(), func(store.Queries) error {
		close(started)
		<-unblock
		return nil
	})
	<-started
	return func() { close(unblock) }
}

func waitQueued(t *testing.T, db *sqlstore.DB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for sqlstore.QueuedTx(db) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d Tx calls queued", sqlstore.QueuedTx(db), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGroupCommitIsolatesFailures(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "s.db"))
	ctx := context.Background()
	release := blockWriter(t, db)
	boom := errors.New("boom")
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			errs[i] = db.Tx(ctx, func(q store.Queries) error {
				if err := q.Settings().Put(ctx, "k"+string(rune('0'+i)), []byte{byte(i)}); err != nil {
					return err
				}
				if i%3 == 0 {
					return boom // after a write: it must be undone
				}
				return nil
			})
		})
	}
	waitQueued(t, db, len(errs))
	release()
	wg.Wait()
	for i, err := range errs {
		_, getErr := db.Read().Settings().Get(ctx, "k"+string(rune('0'+i)))
		if i%3 == 0 {
			if err != boom || !errors.Is(getErr, store.ErrNotFound) {
				t.Errorf("failing Tx %d: err %v, its write: %v", i, err, getErr)
			}
		} else if err != nil || getErr != nil {
			t.Errorf("Tx %d beside failing ones: err %v, its write: %v", i, err, getErr)
		}
	}
}

func TestGroupCommitCancelledWhileQueued(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "s.db"))
	release := blockWriter(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	ran := false
	go func() { done <- db.Tx(ctx, func(store.Queries) error { ran = true; return nil }) }()
	waitQueued(t, db, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled queued Tx returned %v", err)
	}
	release()
	// The writer moves on to later work and never runs the abandoned fn.
	if err := db.Tx(context.Background(), func(store.Queries) error { return nil }); err != nil || ran {
		t.Fatalf("after cancellation: err %v, abandoned fn ran %v", err, ran)
	}
}

func TestGroupCommitPanicReachesCaller(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "s.db"))
	func() {
		defer func() {
			if v := recover(); v != "kaboom" {
				t.Fatalf("recovered %v, want the fn's panic", v)
			}
		}()
		db.Tx(context.Background(), func(q store.Queries) error {
			q.Settings().Put(context.Background(), "p", nil)
			panic("kaboom")
		})
	}()
	if _, err := db.Read().Settings().Get(context.Background(), "p"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("panicking Tx's write survived: %v", err)
	}
}

func TestSQLiteDurabilitySettings(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "s.db"))
	write, read := sqlstore.Pools(db)
	check := func(name, pragma, want string) {
		t.Helper()
		var got string
		if err := write.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil || got != want {
			t.Errorf("%s: writer PRAGMA %s = %q (%v), want %q", name, pragma, got, err, want)
		}
		if err := read.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil || got != want {
			t.Errorf("%s: reader PRAGMA %s = %q (%v), want %q", name, pragma, got, err, want)
		}
	}
	check("durability", "synchronous", "2") // FULL
	check("journal", "journal_mode", "wal")
	check("integrity", "foreign_keys", "1")
}

func TestSQLiteReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Tx(ctx, func(q store.Queries) error { return q.Settings().Put(ctx, "kept", []byte("yes")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openSQLite(t, "file:"+path)
	if n, _ := db.Migrate(ctx); n != 0 {
		t.Fatalf("reopened database applied %d migrations again", n)
	}
	v, err := db.Read().Settings().Get(ctx, "kept")
	if err != nil || string(v) != "yes" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	if err := db.Tx(ctx, func(store.Queries) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestClosedStoreRefusesTx(t *testing.T) {
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.Tx(context.Background(), func(store.Queries) error { return nil }); err == nil {
		t.Fatal("Tx on a closed store succeeded")
	}
}
