package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// Run checks every contract of store.Store against stores made by open;
// each subtest gets its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"TenantCRUD", testTenantCRUD},
		{"TenantHierarchy", testTenantHierarchy},
		{"TenantDeletePurges", testTenantDeletePurges},
		{"TenantDeleteRacesEnrolment", testTenantDeleteRacesEnrolment},
		{"TenantDeleteAgain", testTenantDeleteAgain},
		{"Tombstones", testTombstones},
		{"SubjectByAccount", testSubjectByAccount},
		{"UnmanagedSubjects", testUnmanagedSubjects},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"AdminCRUD", testAdminCRUD},
		{"AdminDeleteCascades", testAdminDeleteCascades},
		{"PasswordHistory", testPasswordHistory},
		{"RecoveryCodes", testRecoveryCodes},
		{"RecoveryCodeConsumedOnce", testRecoveryCodeConsumedOnce},
		{"Roles", testRoles},
		{"Assignments", testAssignments},
		{"Sessions", testSessions},
		{"SessionConsumedOnce", testSessionConsumedOnce},
		{"Tokens", testTokens},
		{"AuditHeadAppend", testAuditHeadAppend},
		{"AuditList", testAuditList},
		{"AuditScan", testAuditScan},
		{"AuditCheckpointsAndArchive", testAuditCheckpointsAndArchive},
		{"Settings", testSettings},
		{"PutIfAbsentRace", testPutIfAbsentRace},
		{"Leases", testLeases},
		{"TxRollback", testTxRollback},
		{"TxBeforeCommit", testTxBeforeCommit},
		{"TxBeforeCommitGathered", testTxBeforeCommitGathered},
		{"TxPanic", testTxPanic},
		{"TxConcurrentChain", testTxConcurrentChain},
		{"TxUsableAfterConflict", testTxUsableAfterConflict},
		{"Migrations", testMigrations},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	runPrivacy(t, open)
	runApple(t, open)
	runManagement(t, open)
}

// at is a fixed instant with sub-microsecond noise the store must drop.
var at = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// tx runs fn in a transaction and fails the test on error.
func tx(t *testing.T, st store.Store, fn func(q store.Queries) error) {
	t.Helper()
	if err := st.Tx(context.Background(), fn); err != nil {
		t.Fatalf("Tx: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func newTenant(t *testing.T, st store.Store, parentID string) store.Tenant {
	t.Helper()
	id := store.NewID()
	tn := store.Tenant{
		ID: id, ParentID: parentID, Kind: store.TenantCustomer, Name: "Tenant " + id[len(id)-6:],
		Slug: "t-" + strings.ToLower(id), CreatedAt: at, UpdatedAt: at,
	}
	if parentID == "" {
		tn.Kind = store.TenantProvider
	}
	tx(t, st, func(q store.Queries) error { return q.Tenants().Create(context.Background(), tn) })
	tn.CreatedAt, tn.UpdatedAt = micro(at), micro(at)
	return tn
}

func newAdmin(t *testing.T, st store.Store, tenantID string) store.Admin {
	t.Helper()
	id := store.NewID()
	a := store.Admin{
		ID: id, TenantID: tenantID, Email: fmt.Sprintf("admin-%s@example.test", id), DisplayName: "Admin",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", PasswordSetAt: at, CreatedAt: at, UpdatedAt: at,
	}
	tx(t, st, func(q store.Queries) error { return q.Admins().Create(context.Background(), a) })
	a.PasswordSetAt, a.CreatedAt, a.UpdatedAt = micro(at), micro(at), micro(at)
	return a
}

func newRole(t *testing.T, st store.Store, tenantID, name string) store.Role {
	t.Helper()
	r := store.Role{ID: store.NewID(), TenantID: tenantID, Name: name, Description: "d",
		Permissions: []string{"admin.read", "audit.read"}, CreatedAt: at}
	tx(t, st, func(q store.Queries) error { return q.Roles().Create(context.Background(), r) })
	r.CreatedAt = micro(at)
	return r
}

func testMigrations(t *testing.T, st store.Store) {
	ctx := context.Background()
	n, err := st.Migrate(ctx)
	must(t, err)
	if n != 0 {
		t.Fatalf("second Migrate applied %d migrations, want 0", n)
	}
	applied, latest, err := st.MigrationStatus(ctx)
	must(t, err)
	if applied != latest || latest < 1 {
		t.Fatalf("MigrationStatus = (%d, %d), want applied == latest >= 1", applied, latest)
	}
	must(t, st.Ping(ctx))
	if e := st.Engine(); e != "sqlite" && e != "postgres" {
		t.Fatalf("Engine() = %q", e)
	}
}
