package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
)

// withStore opens the data dir's SQLite database directly, as a second
// process would, and runs fn in one transaction.
func withStore(t *testing.T, data string, fn func(q store.Queries) error) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(data, "steward.db"), sqlstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Tx(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

func createTenant(q store.Queries, id string) error {
	now := time.Now()
	return q.Tenants().Create(context.Background(), store.Tenant{ID: id, Kind: store.TenantProvider, Name: id, Slug: id,
		CreatedAt: now, UpdatedAt: now})
}

func tenantExists(t *testing.T, data, id string) bool {
	t.Helper()
	var err error
	withStore(t, data, func(q store.Queries) error {
		_, err = q.Tenants().Get(context.Background(), id)
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestBackupCommands(t *testing.T) {
	t.Setenv("STEWARD_MASTER_KEY", "")
	data := t.TempDir()
	mustCLI(t, nil, "migrate", "--data", data)
	withStore(t, data, func(q store.Queries) error { return createTenant(q, "before-backup") })

	file := filepath.Join(t.TempDir(), "steward.backup")
	_, stderr, err := cli(t, nil, "backup", "create", "--data", data, "--out", file)
	if err != nil {
		t.Fatalf("backup create: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "rows (100%)") {
		t.Errorf("backup create showed no progress: %q", stderr)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}

	withStore(t, data, func(q store.Queries) error { return createTenant(q, "after-backup") })
	if _, _, err := cli(t, nil, "backup", "restore", "--data", data, "--in", file); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("restore without --yes: err = %v, want a refusal", err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.backup")
	if err := os.WriteFile(cut, raw[:len(raw)-7], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, nil, "backup", "restore", "--data", data, "--in", cut, "--yes"); err == nil {
		t.Fatal("restore of a truncated backup succeeded")
	}
	if !tenantExists(t, data, "after-backup") {
		t.Fatal("a failed restore changed the database")
	}

	// A company Mac locked after the backup: its PIN outlives the restore.
	lockID := store.NewID()
	withStore(t, data, func(q store.Queries) error {
		ctx, now := context.Background(), time.Now()
		d := store.Device{ID: store.NewID(), TenantID: "before-backup", Ownership: "corporate", Platform: "macos",
			State: store.DeviceEnrolled, SerialIndex: []byte("serial-index"), CreatedAt: now, UpdatedAt: now, EnrolledAt: now,
			LastSeenAt: now, Compliance: store.ComplianceUnknown}
		if err := q.Devices().Create(ctx, d); err != nil {
			return err
		}
		return q.Actions().Create(ctx, []store.DeviceAction{{ID: lockID, TenantID: d.TenantID, BatchID: store.NewID(), DeviceID: d.ID,
			Action: "lock", Reason: "left in a taxi, ticket 4711", RequestedBy: "admin:1", State: store.ActionDone,
			SealedPIN: []byte("sealed PIN"), CreatedAt: now, UpdatedAt: now}})
	})

	out := mustCLI(t, nil, "backup", "restore", "--data", data, "--in", file, "--yes")
	if !strings.Contains(out, "restored") || !strings.Contains(out, "kept 1 Find My PINs") {
		t.Errorf("restore summary = %q", out)
	}
	if !tenantExists(t, data, "before-backup") || tenantExists(t, data, "after-backup") {
		t.Error("restore did not bring the database back to the backup's contents")
	}
	withStore(t, data, func(q store.Queries) error {
		p, err := q.DepartedPINs().Get(context.Background(), "before-backup", lockID)
		if err != nil || string(p.SealedPIN) != "sealed PIN" || string(p.SerialIndex) != "serial-index" {
			t.Errorf("the lock's PIN after the restore: %+v, %v", p, err)
		}
		return nil
	})
}

// TestRotateMasterCommand: `keys rotate-master` re-seals what is under the
// old key, showing its progress, and a second run finds nothing to do; the
// keyset then opens under the new key alone.
func TestRotateMasterCommand(t *testing.T) {
	t.Setenv("STEWARD_MASTER_KEY", "")
	data := t.TempDir()
	mustCLI(t, nil, "migrate", "--data", data)
	withStore(t, data, func(q store.Queries) error { return createTenant(q, "acme") })
	if _, _, err := cli(t, nil, "keys", "rotate", "--data", data, "--tenant-id", "acne"); err == nil || !strings.Contains(err.Error(), "no tenant acne") {
		t.Fatalf("keys rotate of a tenant that does not exist: %v", err)
	}
	mustCLI(t, nil, "keys", "rotate", "--data", data, "--tenant-id", "acme") // its keyset, under the key in the data dir
	oldKey := filepath.Join(data, "master.key")
	newKey := filepath.Join(t.TempDir(), "new.key")
	if err := os.WriteFile(newKey, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, nil, "keys", "rotate-master", "--data", data, "--master-key-file", newKey); err == nil ||
		!strings.Contains(err.Error(), "--previous-master-key-file") {
		t.Fatalf("rotate-master without the old key: %v", err)
	}
	rotate := []string{"keys", "rotate-master", "--data", data, "--master-key-file", newKey, "--previous-master-key-file", oldKey}
	out, stderr, err := cli(t, nil, rotate...)
	if err != nil || !strings.Contains(stderr, "tenant keysets: 1 re-sealed") || !strings.Contains(out, "Done: ") {
		t.Fatalf("rotate-master: %v\n%s%s", err, out, stderr)
	}
	if out := mustCLI(t, nil, rotate...); !strings.Contains(out, "Done: 0 values re-sealed") {
		t.Errorf("rotate-master again: %s", out)
	}
	// Opened under the new key alone, the keyset gets as far as the rule
	// that a tenant's keys are not rotated twice within two minutes.
	if _, _, err := cli(t, nil, "keys", "rotate", "--data", data, "--tenant-id", "acme", "--master-key-file", newKey); err == nil ||
		!strings.Contains(err.Error(), "rotate them again from") {
		t.Errorf("the keyset under the new key alone: %v, want the refusal of a second rotation", err)
	}
	// Every tenant: one rotated too recently is skipped, so a second run
	// after one that stopped part-way finishes the rest.
	if out, stderr, err := cli(t, nil, "keys", "rotate", "--data", data, "--master-key-file", newKey); err != nil ||
		!strings.Contains(stderr, "skipped") || !strings.Contains(out, `"tenant_id":"acme","keysets":0,"data_keys":0,"skipped":"keys: rotated too recently`) {
		t.Errorf("keys rotate of every tenant right after a rotation: %v\n%s%s", err, out, stderr)
	}
	if _, _, err := cli(t, nil, "keys", "rotate", "--data", data, "--tenant-id", "acme"); err == nil || strings.Contains(err.Error(), "rotate them again from") {
		t.Errorf("the old key alone: %v, want it to open nothing", err)
	}
}
