package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

var dumpKeep = map[string]bool{"leases": true, "sessions": true, "tenant_keysets": true, "data_keys": true}

// memDump is a dump held in memory: the info and each table's rows in order.
type memDump struct {
	info sqlstore.DumpInfo
	rows map[string][][]any
}

func dumpToMemory(t *testing.T, db *sqlstore.DB, exclude map[string]bool) memDump {
	t.Helper()
	d := memDump{rows: map[string][][]any{}}
	err := db.Dump(context.Background(), exclude,
		func(info sqlstore.DumpInfo) error { d.info = info; return nil },
		func(table string, values []any) error { d.rows[table] = append(d.rows[table], values); return nil })
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return d
}

// canonical renders a table's rows as sorted strings that keep Go types
// (so []byte("x") differs from "x" and nil from "").
func (d memDump) canonical(table string) []string {
	var out []string
	for _, r := range d.rows[table] {
		out = append(out, fmt.Sprintf("%#v", r))
	}
	slices.Sort(out)
	return out
}

// memSource replays a memDump; failAfter > 0 makes it fail after that many rows.
type memSource struct {
	d         memDump
	pos       map[string]int
	served    int
	failAfter int
}

func (m *memSource) NextRow(table string) ([]any, error) {
	if m.failAfter > 0 && m.served == m.failAfter {
		return nil, errors.New("source broke")
	}
	i := m.pos[table]
	if i >= len(m.d.rows[table]) {
		return nil, io.EOF
	}
	m.pos[table]++
	m.served++
	return m.d.rows[table][i], nil
}

func restoreFrom(db *sqlstore.DB, d memDump, failAfter int) error {
	return db.Restore(context.Background(), d.info, dumpKeep, &memSource{d: d, pos: map[string]int{}, failAfter: failAfter})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustTx(t *testing.T, st store.Store, fn func(q store.Queries) error) {
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
		Slug: "slug-" + id, AllowedCIDRs: []string{"10.0.0.0/8"}, CreatedAt: t0, UpdatedAt: t0})
}

func addAdmin(q store.Queries, id, tenant string, secret []byte) error {
	ctx := context.Background()
	err := q.Admins().Create(ctx, store.Admin{ID: id, TenantID: tenant, Email: id + "@example.test", DisplayName: "Admin " + id,
		PasswordHash: "$argon2id$x", MFASecret: secret, MFAEnabled: secret != nil, CreatedAt: t0, UpdatedAt: t0})
	if err != nil {
		return err
	}
	return q.Admins().AddPasswordHistory(ctx, id, "$argon2id$old-"+id, t0)
}

func addSession(q store.Queries, id, admin, tenant string) error {
	return q.Sessions().Create(context.Background(), store.Session{ID: id, AdminID: admin, TenantID: tenant, Kind: store.SessionCLI,
		SecretHash: []byte("secret-" + id), SourceIP: "192.0.2.7", UserAgent: "test", CreatedAt: t0, LastSeenAt: t0,
		IdleExpiry: t0.Add(time.Hour), AbsExpiry: t0.Add(24 * time.Hour)})
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
	next := store.AuditHead{TenantID: tenant, Seq: head.Seq + int64(n), Hash: prev, BaseSeq: head.BaseSeq, BaseHash: head.BaseHash}
	return q.Audit().Append(ctx, next, entries)
}

// fill writes a small but varied data set: a tenant tree, admins with and
// without sealed secrets (BLOB vs NULL), serial password history, audit, settings.
func fill(t *testing.T, st store.Store) {
	mustTx(t, st, func(q store.Queries) error {
		return errors.Join(addTenant(q, "root", ""), addTenant(q, "child", "root"), addTenant(q, "grandchild", "child"),
			addAdmin(q, "a1", "root", []byte{0, 1, 2, 0xff}), addAdmin(q, "a2", "child", nil),
			addSession(q, "s1", "a1", "root"), appendAudit(q, "root", 25), appendAudit(q, "child", 3),
			q.Settings().Put(context.Background(), "blob", []byte("value\x00with nul")))
	})
	if _, err := st.Read().Leases().TryAcquire(context.Background(), "checkpoint", "node-1", t0, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// addVaultKey puts a row into the key vault on SQLite, where the test can
// reach the database directly, so "kept as it was" is checked on real rows.
func addVaultKey(t *testing.T, db *sqlstore.DB, id string) {
	t.Helper()
	write, _ := sqlstore.Pools(db)
	if write == nil {
		return
	}
	var n int
	if err := write.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = 'data_keys'").Scan(&n); err != nil || n == 0 {
		return
	}
	if _, err := write.Exec("INSERT INTO data_keys (id, tenant_id, owner, wrapped, created_at) VALUES ($1, 'root', $1, $2, 1)",
		id, []byte("sealed-"+id)); err != nil {
		t.Fatalf("adding a vault key: %v", err)
	}
}

func asDB(t *testing.T, st store.Store) *sqlstore.DB {
	db, ok := st.(*sqlstore.DB)
	if !ok {
		t.Fatalf("store is %T, not *sqlstore.DB", st)
	}
	return db
}

func TestDumpRestoreRoundTrip(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		db := asDB(t, st)
		fill(t, st)
		addVaultKey(t, db, "k1")
		backup := dumpToMemory(t, db, dumpKeep)
		for _, tb := range backup.info.Tables {
			if dumpKeep[tb.Name] || tb.Name == "schema_migrations" {
				t.Fatalf("excluded table %s was dumped", tb.Name)
			}
		}
		if got := len(backup.rows["audit_entries"]); got != 28 {
			t.Fatalf("dumped %d audit entries, want 28", got)
		}

		// Change everything the backup covers, and the kept tables too.
		mustTx(t, st, func(q store.Queries) error {
			ten, err := q.Tenants().Get(ctx, "child")
			if err != nil {
				return err
			}
			ten.Name = "renamed"
			return errors.Join(q.Tenants().Update(ctx, ten), q.Admins().Delete(ctx, "child", "a2"),
				addTenant(q, "newcomer", "root"), addAdmin(q, "a3", "newcomer", nil),
				addSession(q, "s2", "a1", "root"), addSession(q, "s3", "a3", "newcomer"),
				appendAudit(q, "root", 5), q.Settings().Delete(ctx, "blob"))
		})
		if _, err := st.Read().Leases().TryAcquire(ctx, "archive", "node-2", t0, time.Hour); err != nil {
			t.Fatal(err)
		}
		addVaultKey(t, db, "k2")
		before := dumpToMemory(t, db, nil)

		if err := restoreFrom(db, backup, 0); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		after := dumpToMemory(t, db, nil)
		if db.Engine() == "sqlite" && len(after.rows["data_keys"]) != 2 {
			t.Errorf("data_keys has %d rows after restore, want the target's 2", len(after.rows["data_keys"]))
		}
		for _, tb := range after.info.Tables {
			want := backup.canonical(tb.Name)
			if dumpKeep[tb.Name] || tb.Name == "schema_migrations" {
				want = before.canonical(tb.Name)
			}
			if tb.Name == "sessions" {
				// s3 belonged to an admin the backup does not have: gone, as a cascade would do.
				kept := memDump{rows: map[string][][]any{"sessions": slices.DeleteFunc(slices.Clone(before.rows["sessions"]),
					func(r []any) bool { return r[0] == "s3" })}}
				want = kept.canonical("sessions")
			}
			if got := after.canonical(tb.Name); !slices.Equal(got, want) {
				t.Errorf("table %s after restore:\n got %v\nwant %v", tb.Name, got, want)
			}
		}
		var ids []string
		sessions, err := st.Read().Sessions().ListForAdmin(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sessions {
			ids = append(ids, s.ID)
		}
		if slices.Sort(ids); !slices.Equal(ids, []string{"s1", "s2"}) {
			t.Errorf("a1's sessions after restore = %v, want the kept [s1 s2]", ids)
		}
		// Sequences were moved past the restored rows: new serial rows insert.
		if err := st.Read().Admins().AddPasswordHistory(ctx, "a2", "$argon2id$new", t0.Add(time.Hour)); err != nil {
			t.Fatalf("adding password history after restore: %v", err)
		}
	})
}

func TestRestoreFailureChangesNothing(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		db := asDB(t, st)
		fill(t, st)
		backup := dumpToMemory(t, db, dumpKeep)
		mustTx(t, st, func(q store.Queries) error { return addTenant(q, "later", "root") })
		before := dumpToMemory(t, db, nil)

		wrongVersion := backup
		wrongVersion.info.SchemaVersion++
		err := restoreFrom(db, wrongVersion, 0)
		if err == nil || !strings.Contains(err.Error(), "schema version") {
			t.Fatalf("restore of another schema version: err = %v, want a schema version error", err)
		}
		if err := restoreFrom(db, backup, 10); err == nil {
			t.Fatal("restore from a failing source succeeded")
		}
		after := dumpToMemory(t, db, nil)
		for _, tb := range after.info.Tables {
			if !slices.Equal(after.canonical(tb.Name), before.canonical(tb.Name)) {
				t.Errorf("table %s changed by a failed restore", tb.Name)
			}
		}
	})
}

func TestDumpIsOneSnapshot(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		db := asDB(t, st)
		fill(t, st)
		var counted map[string]int64
		rows := map[string]int64{}
		var heads [][]any
		err := db.Dump(context.Background(), nil, func(info sqlstore.DumpInfo) error {
			counted = map[string]int64{}
			for _, tb := range info.Tables {
				counted[tb.Name] = tb.Rows
			}
			// Writes committed while the dump runs must not show up in it.
			for i := range 5 {
				mustTx(t, st, func(q store.Queries) error {
					return errors.Join(appendAudit(q, "root", 7), addSession(q, fmt.Sprint("w", i), "a1", "root"))
				})
			}
			return nil
		}, func(table string, values []any) error {
			rows[table]++
			if table == "audit_heads" {
				heads = append(heads, values)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Dump: %v", err)
		}
		for name, n := range counted {
			if rows[name] != n {
				t.Errorf("table %s: %d rows streamed, %d counted", name, rows[name], n)
			}
		}
		if rows["audit_entries"] != 28 || rows["sessions"] != 1 {
			t.Errorf("dump saw %d audit entries and %d sessions, want the snapshot's 28 and 1", rows["audit_entries"], rows["sessions"])
		}
		for _, h := range heads {
			if h[0] == "root" && h[1] != int64(25) {
				t.Errorf("root audit head in dump = %v, want 25 (consistent with the entries)", h[1])
			}
		}
		live := dumpToMemory(t, db, nil)
		if len(live.rows["audit_entries"]) != 28+35 {
			t.Errorf("live database has %d audit entries, want 63: the concurrent writes did not happen", len(live.rows["audit_entries"]))
		}
	})
}
