package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/backup"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newSealer(t *testing.T) secrets.Sealer {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	rand.Read(key)
	s, err := secrets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func must(t *testing.T, st store.Store, fn func(q store.Queries) error) {
	t.Helper()
	if err := st.Tx(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func addTenant(q store.Queries, id, parent string) error {
	kind := store.TenantCustomer
	if parent == "" {
		kind = store.TenantProvider
	}
	return q.Tenants().Create(context.Background(), store.Tenant{ID: id, ParentID: parent, Kind: kind, Name: "Tenant " + id,
		Slug: "slug-" + id, CreatedAt: t0, UpdatedAt: t0})
}

func addAdmin(q store.Queries, id, tenant string) error {
	return q.Admins().Create(context.Background(), store.Admin{ID: id, TenantID: tenant, Email: id + "@personal.example",
		DisplayName: "Ada " + id, PasswordHash: "$argon2id$x", MFASecret: []byte{1, 2, 3}, CreatedAt: t0, UpdatedAt: t0})
}

func appendAudit(q store.Queries, tenant string, n int) error {
	ctx := context.Background()
	head, err := q.Audit().Head(ctx, tenant)
	if err != nil {
		return err
	}
	var entries []store.AuditEntry
	prev := head.Hash
	for i := range n {
		seq := head.Seq + int64(i) + 1
		hash := []byte(fmt.Sprintf("%s#%d", tenant, seq))
		entries = append(entries, store.AuditEntry{TenantID: tenant, Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second),
			ActorType: store.ActorAdmin, ActorID: "a1", Action: "admin.create", TargetType: "admin", TargetID: fmt.Sprint(seq),
			Outcome: "success", SourceIP: "192.0.2.1", RequestID: "req", PrevHash: prev, Hash: hash})
		prev = hash
	}
	return q.Audit().Append(ctx, store.AuditHead{TenantID: tenant, Seq: head.Seq + int64(n), Hash: prev}, entries)
}

func fill(t *testing.T, st store.Store) {
	must(t, st, func(q store.Queries) error {
		return errors.Join(addTenant(q, "root", ""), addTenant(q, "child", "root"), addAdmin(q, "a1", "root"),
			addAdmin(q, "a2", "child"), appendAudit(q, "root", 1500), appendAudit(q, "child", 4))
	})
	must(t, st, func(q store.Queries) error {
		return q.Sessions().Create(context.Background(), store.Session{ID: "s1", AdminID: "a1", TenantID: "root",
			Kind: store.SessionCLI, SecretHash: []byte("h1"), SourceIP: "192.0.2.7", UserAgent: "test", CreatedAt: t0,
			LastSeenAt: t0, IdleExpiry: t0.Add(time.Hour), AbsExpiry: t0.Add(time.Hour)})
	})
}

// snapshot renders every table of the database, rows sorted, types kept.
func snapshot(t *testing.T, db *sqlstore.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := db.Dump(context.Background(), nil, func(info sqlstore.DumpInfo) error {
		for _, tb := range info.Tables {
			out[tb.Name] = []string{}
		}
		return nil
	}, func(table string, values []any) error {
		out[table] = append(out[table], fmt.Sprintf("%#v", values))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range out {
		slices.Sort(rows)
	}
	return out
}

func assertSame(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	for table := range want {
		if !slices.Equal(got[table], want[table]) {
			t.Errorf("%s: table %s differs (%d rows, want %d)", what, table, len(got[table]), len(want[table]))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d tables, want %d", what, len(got), len(want))
	}
}

func mutate(t *testing.T, st store.Store) {
	ctx := context.Background()
	must(t, st, func(q store.Queries) error {
		return errors.Join(q.Admins().Delete(ctx, "child", "a2"), addTenant(q, "new", "root"), appendAudit(q, "root", 3))
	})
	if _, err := st.Read().Leases().TryAcquire(ctx, "checkpoint", "node-9", t0, time.Hour); err != nil {
		t.Fatal(err)
	}
}

func TestCreateRestoreRoundTrip(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		db := st.(*sqlstore.DB)
		sealer := newSealer(t)
		fill(t, st)
		want := snapshot(t, db)

		var file bytes.Buffer
		var calls []int64
		h, err := backup.Create(ctx, db, sealer, &file, func(done, total int64) { calls = append(calls, done, total) })
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if h.TotalRows() == 0 || calls[len(calls)-2] != h.TotalRows() || calls[len(calls)-1] != h.TotalRows() {
			t.Errorf("final progress %v, want %d of %d", calls[len(calls)-2:], h.TotalRows(), h.TotalRows())
		}
		for _, tb := range h.Tables {
			if slices.Contains(backup.NeverBackedUp, tb.Name) || tb.Name == "schema_migrations" {
				t.Errorf("backup contains %s", tb.Name)
			}
		}
		if bytes.Contains(file.Bytes(), []byte("personal.example")) {
			t.Error("backup file holds row data in clear")
		}

		mutate(t, st)
		kept := snapshot(t, db)
		if _, err := backup.Restore(ctx, db, sealer, bytes.NewReader(file.Bytes()), nil); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		got := snapshot(t, db)
		for _, name := range backup.NeverBackedUp {
			if _, ok := kept[name]; ok {
				want[name] = kept[name] // excluded tables keep the target's rows
			}
		}
		assertSame(t, "after restore", got, want)
		if len(got["leases"]) != 1 || len(got["sessions"]) != 1 {
			t.Errorf("kept tables: %d leases, %d sessions, want the target's 1 and 1", len(got["leases"]), len(got["sessions"]))
		}
	})
}

func TestRestoreRejectsBadFiles(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		db := st.(*sqlstore.DB)
		sealer := newSealer(t)
		fill(t, st)
		var file bytes.Buffer
		if _, err := backup.Create(ctx, db, sealer, &file, nil); err != nil {
			t.Fatal(err)
		}
		good := file.Bytes()
		mutate(t, st)
		before := snapshot(t, db)

		headerEnd := bytes.Index(good, []byte(`}]}`)) + 3
		cases := map[string][]byte{
			"wrong magic":      append([]byte("STEWARD-BACKUQ"), good[14:]...),
			"wrong version":    append(append([]byte("STEWARD-BACKUP"), 0, 9), good[16:]...),
			"header byte":      flip(good, headerEnd-10),
			"sealed key byte":  flip(good, headerEnd+20),
			"first body byte":  flip(good, headerEnd+120),
			"middle body byte": flip(good, len(good)/2+headerEnd/2),
			"last byte":        flip(good, len(good)-1),
			"cut in header":    good[:headerEnd/2],
			"cut after header": good[:headerEnd+4],
			"cut in body":      good[:len(good)/2+headerEnd/2],
			"cut last byte":    good[:len(good)-1],
			"trailing garbage": append(slices.Clone(good), 0),
			"empty":            nil,
		}
		for name, data := range cases {
			if _, err := backup.Restore(ctx, db, sealer, bytes.NewReader(data), nil); err == nil {
				t.Errorf("%s: restore succeeded", name)
			}
		}
		if _, err := backup.Restore(ctx, db, sealer, bytes.NewReader(cases["wrong magic"]), nil); !errors.Is(err, backup.ErrNotBackup) {
			t.Errorf("wrong magic: err = %v, want ErrNotBackup", err)
		}
		_, err := backup.Restore(ctx, db, newSealer(t), bytes.NewReader(good), nil)
		if err == nil || !strings.Contains(err.Error(), "wrong master key") {
			t.Errorf("wrong master key: err = %v", err)
		}
		assertSame(t, "after rejected restores", snapshot(t, db), before)
	})
}

func flip(b []byte, i int) []byte {
	c := slices.Clone(b)
	c[i] ^= 0x01
	return c
}
