package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func TestArchiveKeepsTheChainVerifiable(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		s := testSigner(t, 1)
		tenant := uniqueTenant(t)
		hourly := func(i int) time.Time { return testEpoch.Add(time.Duration(i) * time.Hour) }
		appendN(t, st, tenant, 10, hourly)
		var archived bytes.Buffer
		before := testEpoch.Add(5*time.Hour + time.Minute) // entries 1..6
		n, err := Archive(ctx, st, s, tenant, before, &archived)
		check(t, err)
		if n != 6 {
			t.Fatalf("archived %d entries, want 6", n)
		}
		rep, err := VerifyExport(bytes.NewReader(archived.Bytes()), s.PublicKey())
		check(t, err)
		wantProblem(t, rep, "", 0)
		if rep.Entries != 6 || rep.FirstSeq != 1 || rep.LastSeq != 6 || rep.Checkpoints < 1 {
			t.Fatalf("archive report %+v", rep)
		}
		rep, err = VerifyStore(ctx, st, tenant, s.PublicKey())
		check(t, err)
		wantProblem(t, rep, "", 0)
		if rep.Entries != 4 || rep.FirstSeq != 7 || rep.LastSeq != 10 {
			t.Fatalf("store report %+v", rep)
		}
		// Nothing more is old enough: a second run is a no-op.
		if n, err := Archive(ctx, st, s, tenant, before, &archived); err != nil || n != 0 {
			t.Fatalf("second archive: %d, %v", n, err)
		}
		// The chain goes on from the new base, and exports still verify.
		appendN(t, st, tenant, 2, hourly)
		var export bytes.Buffer
		_, err = Export(ctx, st, tenant, &export)
		check(t, err)
		rep, err = VerifyExport(&export, s.PublicKey())
		check(t, err)
		wantProblem(t, rep, "", 0)
		if rep.FirstSeq != 7 || rep.LastSeq != 12 {
			t.Fatalf("export report %+v", rep)
		}
	})
}

func TestArchiverWritesDurableFiles(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		s := testSigner(t, 1)
		tenant := uniqueTenant(t)
		now := time.Now()
		appendN(t, st, tenant, 5, func(i int) time.Time { return now.Add(-72*time.Hour + time.Duration(i)*time.Minute) })
		appendN(t, st, tenant, 3, func(int) time.Time { return now })
		dir := filepath.Join(t.TempDir(), "archive")
		a := NewArchiver(st, s, "node-a", dir, 24*time.Hour, nil)
		_, err := a.RunOnce(ctx, now)
		check(t, err)
		path := filepath.Join(dir, tenant+"-1-5.jsonl")
		fi, err := os.Stat(path)
		check(t, err)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("archive file mode %v, want 0600", fi.Mode().Perm())
		}
		f, err := os.Open(path)
		check(t, err)
		defer f.Close()
		rep, err := VerifyExport(f, s.PublicKey())
		check(t, err)
		wantProblem(t, rep, "", 0)
		if rep.Entries != 5 {
			t.Fatalf("archive report %+v", rep)
		}
		rep, err = VerifyStore(ctx, st, tenant, s.PublicKey())
		check(t, err)
		wantProblem(t, rep, "", 0)
		if rep.FirstSeq != 6 || rep.Entries != 3 {
			t.Fatalf("store report %+v", rep)
		}
		leftovers, _ := filepath.Glob(filepath.Join(dir, ".archive-*"))
		if len(leftovers) != 0 {
			t.Fatalf("temporary files left: %v", leftovers)
		}
	})
}
