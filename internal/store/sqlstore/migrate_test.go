package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// openUnmigrated opens an empty database of the engine, closed (and on
// PostgreSQL its schema dropped) when the test ends.
func openUnmigrated(t *testing.T, engine string) *sqlstore.DB {
	t.Helper()
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "steward.db")
	if engine == "postgres" {
		storetest.OpenPostgres(t) // skip rules as for every PostgreSQL test
		admin, err := sql.Open("pgx", os.Getenv(storetest.PostgresEnv))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Close() })
		schema := fmt.Sprintf("steward_test_migration_%d", time.Now().UnixNano())
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
		u, err := url.Parse(os.Getenv(storetest.PostgresEnv))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	db, err := sqlstore.Open(ctx, dsn, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestProfileRetriesMigrationRetriesEarlierFailures: states that failed
// before migration 19 are due at the first hourly retry after it, one
// failed attempt counted, except one whose command an admin cancelled
// (known by its command, or once that is purged by its error); other
// states are not retried.
func TestProfileRetriesMigrationRetriesEarlierFailures(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			db := openUnmigrated(t, engine)
			if err := sqlstore.MigrateTo(ctx, db, 18); err != nil {
				t.Fatal(err)
			}
			const tenant = "tenant-1"
			for _, c := range []struct{ id, state string }{{"CMD-REFUSED", store.CommandError}, {"CMD-CANCELLED", store.CommandCancelled}} {
				if err := sqlstore.Exec(ctx, db, `INSERT INTO commands (id, tenant_id, device_id, request_type, payload, state, requested_by, created_at)
					VALUES ($1, $2, 'any', 'InstallProfile', $3, $4, 'system:profiles', 1)`, c.id, tenant, []byte{}, c.state); err != nil {
					t.Fatal(err)
				}
			}
			states := []struct{ device, status, command, error string }{
				{"dev-refused", store.ProfileFailed, "CMD-REFUSED", "refused"},
				{"dev-not-queued", store.ProfileFailed, "", "refused"},
				{"dev-removal-refused", store.ProfileRemovalFailed, "", "refused"},
				{"dev-earlier-kept", store.ProfileNotApplicableRemovalFailed, "", "refused"},
				{"dev-cancelled", store.ProfileFailed, "CMD-CANCELLED", "cancelled by an administrator"},
				// Its command purged since: the error still tells.
				{"dev-cancelled-purged", store.ProfileFailed, "CMD-PURGED", "cancelled by an administrator: not wanted"},
				{"dev-installed", store.ProfileInstalled, "", ""},
				{"dev-pending", store.ProfilePending, "CMD-OPEN", ""},
			}
			for _, s := range states {
				if err := sqlstore.Exec(ctx, db, `INSERT INTO device_profiles (tenant_id, device_id, profile_id, digest, status, command_id, error, updated_at)
					VALUES ($1, $2, 'profile-1', 'digest-1', $3, $4, $5, 5)`, tenant, s.device, s.status, s.command, s.error); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}

			due, err := db.Read().DeviceProfiles().DueForRetry(ctx, tenant, time.Now(), store.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"dev-earlier-kept", "dev-not-queued", "dev-refused", "dev-removal-refused"}
			if !slices.Equal(due, want) {
				t.Errorf("due at the first retry: %v, want %v", due, want)
			}
			for _, s := range states {
				got, err := db.Read().DeviceProfiles().Get(ctx, tenant, s.device, "profile-1")
				if err != nil {
					t.Fatal(err)
				}
				retried := slices.Contains(want, s.device)
				if retried != (got.Attempts == 1 && !got.RetryAt.IsZero()) || !retried && (got.Attempts != 0 || !got.RetryAt.IsZero()) {
					t.Errorf("%s after the migration: %+v", s.device, got)
				}
			}
		})
	}
}

// TestDepartedPINsMigrationKeepsWhatLeavingKeeps: company Macs that left
// before migration 23 keep their erase's PIN, or their lock's when they
// never checked in after it; nothing else is kept.
func TestDepartedPINsMigrationKeepsWhatLeavingKeeps(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			db := openUnmigrated(t, engine)
			if err := sqlstore.MigrateTo(ctx, db, 22); err != nil {
				t.Fatal(err)
			}
			const tenant = "tenant-1"
			at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
			left := at.Add(48 * time.Hour)
			mac := func(id, ownership string, lastSeen time.Time, deprovisioned time.Time) store.Device {
				return store.Device{ID: id, TenantID: tenant, Ownership: ownership, Platform: "macos", State: store.DeviceDeprovisioned,
					EnrolledAt: at, LastSeenAt: lastSeen, DeprovisionedAt: deprovisioned, CreatedAt: at, UpdatedAt: at}
			}
			n := 0
			action := func(device, kind, state string, pin bool, updated time.Time) store.DeviceAction {
				n++
				a := store.DeviceAction{ID: fmt.Sprintf("act-%02d", n), TenantID: tenant, BatchID: "batch", DeviceID: device, Action: kind,
					Reason: "lost", RequestedBy: "admin", State: state, CreatedAt: updated, UpdatedAt: updated}
				if pin {
					a.SealedPIN = []byte("sealed " + a.ID)
				}
				return a
			}
			devices := []store.Device{
				mac("erased", "corporate", at, left),
				mac("at-lock", "corporate", at, left),
				mac("unlocked", "corporate", at.Add(time.Hour), left),
				mac("own", "personal", at, left),
				mac("enrolled", "corporate", at, time.Time{}),
			}
			devices[4].State = store.DeviceEnrolled
			acts := []store.DeviceAction{
				action("erased", "lock", store.ActionDone, true, at),
				action("erased", "wipe", store.ActionDone, true, at),  // act-02: kept
				action("at-lock", "lock", store.ActionDone, true, at), // act-03: kept
				action("at-lock", "lock", store.ActionQueued, true, at.Add(time.Minute)),
				action("at-lock", "lock", store.ActionDone, false, at),
				action("unlocked", "lock", store.ActionDone, true, at),
				action("own", "wipe", store.ActionDone, true, at),
				action("enrolled", "wipe", store.ActionDone, true, at),
			}
			if err := db.Tx(ctx, func(q store.Queries) error {
				if err := q.Tenants().Create(ctx, store.Tenant{ID: tenant, Kind: store.TenantProvider, Name: "Tenant", Slug: "tenant-1",
					CreatedAt: at, UpdatedAt: at}); err != nil {
					return err
				}
				for _, d := range devices {
					if err := q.Devices().Create(ctx, d); err != nil {
						return err
					}
				}
				return q.Actions().Create(ctx, acts)
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			kept, err := db.Read().DepartedPINs().List(ctx, tenant, store.DepartedPINFilter{})
			if err != nil {
				t.Fatal(err)
			}
			want := []store.DepartedPIN{
				{ID: "act-02", TenantID: tenant, DeviceID: "erased", Action: "wipe", SealedPIN: []byte("sealed act-02"),
					SentAt: at, KeptAt: left, ExpiresAt: left.Add(365 * 24 * time.Hour)},
				{ID: "act-03", TenantID: tenant, DeviceID: "at-lock", Action: "lock", SealedPIN: []byte("sealed act-03"),
					SentAt: at, KeptAt: left, ExpiresAt: left.Add(365 * 24 * time.Hour)},
			}
			if !reflect.DeepEqual(kept, want) {
				t.Errorf("kept by the migration:\n%+v\nwant\n%+v", kept, want)
			}
		})
	}
}

// TestAccountIndexesLeavePersonalDevices: migration 29 drops the account
// index of every user channel on a personally owned device and keeps those
// on the organisation's.
func TestAccountIndexesLeavePersonalDevices(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			db := openUnmigrated(t, engine)
			if err := sqlstore.MigrateTo(ctx, db, 28); err != nil {
				t.Fatal(err)
			}
			const tenant = "tenant-1"
			at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
			if err := db.Tx(ctx, func(q store.Queries) error {
				if err := q.Tenants().Create(ctx, store.Tenant{ID: tenant, Kind: store.TenantProvider, Name: "Tenant", Slug: "tenant-1",
					CreatedAt: at, UpdatedAt: at}); err != nil {
					return err
				}
				for id, ownership := range map[string]string{"own": "personal", "byod": "user_enrolled", "work": "corporate"} {
					if err := q.Devices().Create(ctx, store.Device{ID: id, TenantID: tenant, Ownership: ownership, Platform: "macos",
						State: store.DeviceEnrolled, EnrolledAt: at, CreatedAt: at, UpdatedAt: at}); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for _, device := range []string{"own", "byod", "work"} {
				if err := sqlstore.Exec(ctx, db, `INSERT INTO apple_user_channels (id, tenant_id, device_id, user_index, account_index, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $6)`, "uc-"+device, tenant, device, []byte("user "+device), []byte("account "+device), at.UnixMicro()); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			for device, want := range map[string][]byte{"own": nil, "byod": nil, "work": []byte("account work")} {
				uc, err := db.Read().AppleUserChannels().Find(ctx, tenant, device, []byte("user "+device))
				if err != nil || !reflect.DeepEqual(uc.AccountIndex, want) {
					t.Errorf("%s: account index %q (%v), want %q", device, uc.AccountIndex, err, want)
				}
			}
		})
	}
}

// TestUnmanagedPeopleMigrationCountsFromTheLastDeparture: a person whose
// devices on record have all left counts as unmanaged from the last of
// their departures; one with a device still managed, or none on record,
// is not marked.
func TestUnmanagedPeopleMigrationCountsFromTheLastDeparture(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			db := openUnmigrated(t, engine)
			if err := sqlstore.MigrateTo(ctx, db, 30); err != nil {
				t.Fatal(err)
			}
			const tenant = "tenant-1"
			at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
			left, lastLeft := at.Add(24*time.Hour), at.Add(72*time.Hour)
			if err := db.Tx(ctx, func(q store.Queries) error {
				if err := q.Tenants().Create(ctx, store.Tenant{ID: tenant, Kind: store.TenantProvider, Name: "Tenant", Slug: "tenant-1",
					CreatedAt: at, UpdatedAt: at}); err != nil {
					return err
				}
				for _, person := range []string{"gone", "managed", "never"} {
					if err := q.Subjects().Create(ctx, store.Subject{ID: person, TenantID: tenant, Pseudonym: person, Locale: "en",
						State: store.SubjectActive, CreatedAt: at, UpdatedAt: at}); err != nil {
						return err
					}
				}
				for id, d := range map[string]struct {
					person  string
					leftAt  time.Time
					retired bool
				}{"a": {"gone", left, true}, "b": {"gone", lastLeft, true}, "c": {"managed", left, true}, "d": {"managed", time.Time{}, false}} {
					dev := store.Device{ID: id, TenantID: tenant, SubjectID: d.person, Ownership: "personal", Platform: "ios",
						State: store.DeviceEnrolled, EnrolledAt: at, CreatedAt: at, UpdatedAt: at}
					if d.retired {
						dev.State, dev.DeprovisionedAt = store.DeviceRetired, d.leftAt
					}
					if err := q.Devices().Create(ctx, dev); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			for person, want := range map[string]bool{"gone": true, "managed": false, "never": false} {
				// Unmanaged just after the last departure, not just before it.
				after, err := db.Read().Subjects().IsUnmanaged(ctx, tenant, person, lastLeft.Add(time.Microsecond), lastLeft)
				if err != nil {
					t.Fatal(err)
				}
				before, err := db.Read().Subjects().IsUnmanaged(ctx, tenant, person, lastLeft, lastLeft)
				if err != nil || after != want || before {
					t.Errorf("%s: unmanaged after its last departure %v, before %v (%v); want %v, false", person, after, before, err, want)
				}
			}
		})
	}
}
