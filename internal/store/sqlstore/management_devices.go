package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type managedDeviceStore struct{ q *queries }

// sortColumn is a device sort order's column and whether it holds integers
// (times as unix microseconds), which decides how the cursor Value is read.
type sortColumn struct {
	name    string
	integer bool
}

var deviceSortColumns = map[store.DeviceSort]sortColumn{
	store.SortByID:        {"id", false},
	store.SortByLastSeen:  {"last_seen_at", true},
	store.SortByEnrolled:  {"enrolled_at", true},
	store.SortByOSVersion: {"os_version_key", false},
	store.SortByModel:     {"model", false},
}

// deviceSearch builds a Search statement: the WHERE clause grows with its
// arguments, which are always bound, never spliced.
type deviceSearch struct {
	where []string
	args  []any
}

func (b *deviceSearch) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *deviceSearch) eq(column, value string) {
	if value != "" {
		b.where = append(b.where, column+" = "+b.arg(value))
	}
}

// likePrefix escapes LIKE's wildcards so that prefix matches literally.
func likePrefix(prefix string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(strings.ToLower(prefix)) + "%"
}

// Search returns an error (not ErrNotFound) for an unknown sort or a cursor
// whose Value does not fit the sort column. Devices are read in one
// statement that fetches one row more than the page to learn whether a
// next page exists.
func (s managedDeviceStore) Search(ctx context.Context, tenantID string, q store.DeviceQuery) (store.DevicePage, error) {
	if q.Scope != nil && len(q.Scope) == 0 {
		return store.DevicePage{}, nil // scoped to no group: nothing is visible
	}
	query, args, limit, err := searchStatement(tenantID, q)
	if err != nil {
		return store.DevicePage{}, err
	}
	rows, err := s.q.x.QueryContext(ctx, query, args...)
	found, err := collect(rows, err, "searching devices", scanSortedDevice)
	if err != nil {
		return store.DevicePage{}, err
	}
	var page store.DevicePage
	for i, f := range found[:min(limit, len(found))] {
		page.Devices = append(page.Devices, f.device)
		if i == limit-1 && len(found) > limit {
			page.Next = store.DeviceCursor{Value: f.sortValue, ID: f.device.ID}
		}
	}
	return page, nil
}

// searchStatement returns the SELECT for q with its arguments and the page
// size; the statement reads limit+1 rows, each followed by its sort value.
func searchStatement(tenantID string, q store.DeviceQuery) (string, []any, int, error) {
	sortBy := q.Sort
	if sortBy == "" {
		sortBy = store.SortByID
	}
	col, ok := deviceSortColumns[sortBy]
	if !ok {
		return "", nil, 0, fmt.Errorf("sqlstore: searching devices: unknown sort %q; use id, last_seen, enrolled, os_version or model", sortBy)
	}
	_, limit := pageArgs(store.Page{Limit: q.Limit})

	b := &deviceSearch{}
	b.where = append(b.where, "tenant_id = "+b.arg(tenantID))
	b.eq("platform", q.Platform)
	b.eq("ownership", q.Ownership)
	b.eq("state", q.State)
	b.eq("compliance", q.Compliance)
	if q.GroupID != "" {
		b.where = append(b.where, `EXISTS (SELECT 1 FROM group_members m WHERE m.tenant_id = $1
			AND m.device_id = devices.id AND m.group_id = `+b.arg(q.GroupID)+`)`)
	}
	if scope := uniqueSorted(q.Scope); scope != nil {
		marks := make([]string, len(scope))
		for i, g := range scope {
			marks[i] = b.arg(g)
		}
		b.where = append(b.where, `EXISTS (SELECT 1 FROM group_members m WHERE m.tenant_id = $1
			AND m.device_id = devices.id AND m.group_id IN (`+strings.Join(marks, ", ")+`))`)
	}
	if !q.LastSeenBefore.IsZero() {
		b.where = append(b.where, "last_seen_at < "+b.arg(micros(q.LastSeenBefore)))
	}
	if !q.LastSeenAfter.IsZero() {
		b.where = append(b.where, "last_seen_at > "+b.arg(micros(q.LastSeenAfter)))
	}
	if q.OSVersionMin != "" {
		b.where = append(b.where, "os_version_key >= "+b.arg(q.OSVersionMin))
	}
	if q.OSVersionMax != "" {
		b.where = append(b.where, "os_version_key <= "+b.arg(q.OSVersionMax))
	}
	if q.ModelPrefix != "" {
		b.where = append(b.where, `lower(model) LIKE `+b.arg(likePrefix(q.ModelPrefix))+` ESCAPE '\'`)
	}

	op, dir := ">", "ASC"
	if q.Descending {
		op, dir = "<", "DESC"
	}
	if q.After != (store.DeviceCursor{}) {
		if col.name == "id" {
			b.where = append(b.where, "id "+op+" "+b.arg(q.After.ID))
		} else {
			var value any = q.After.Value
			if col.integer {
				n, err := strconv.ParseInt(q.After.Value, 10, 64)
				if err != nil {
					return "", nil, 0, fmt.Errorf("sqlstore: searching devices: the cursor is not a %s position; restart from the first page", sortBy)
				}
				value = n
			}
			// A row comparison lets both engines walk the (tenant, column, id)
			// index from the cursor on.
			b.where = append(b.where, "("+col.name+", id) "+op+" ("+b.arg(value)+", "+b.arg(q.After.ID)+")")
		}
	}
	order := col.name + " " + dir
	if col.name != "id" {
		order += ", id " + dir
	}
	// The sort column is read once more, as text, to build the next cursor.
	query := `SELECT ` + deviceColumns + `, ` + col.name + ` FROM devices WHERE ` + strings.Join(b.where, " AND ") +
		` ORDER BY ` + order + ` LIMIT ` + b.arg(limit+1)
	return query, b.args, limit, nil
}

type sortedDevice struct {
	device    store.Device
	sortValue string
}

// scanSortedDevice reads a device followed by its sort column as text.
func scanSortedDevice(s scanner) (sortedDevice, error) {
	var v sortedDevice
	var err error
	v.device, err = scanDevice(extraColumn{s, &v.sortValue})
	return v, err
}

// extraColumn scans one more trailing column into dest than its caller asks.
type extraColumn struct {
	s    scanner
	dest any
}

func (e extraColumn) Scan(dest ...any) error { return e.s.Scan(append(dest, e.dest)...) }

func (s managedDeviceStore) SetProjection(ctx context.Context, p store.DeviceProjection) error {
	return s.q.execOne(ctx, "storing device projection", `UPDATE devices SET os_version = $3, os_version_key = $4, model = $5,
		facts = $6 WHERE tenant_id = $1 AND id = $2`, p.TenantID, p.DeviceID, p.OSVersion, p.OSVersionKey, p.Model, blob(p.Facts))
}

// Projections reads the tenant's projections in one statement; the tenant
// ID is not read back per row, which keeps 10,000 rows cheap to scan.
func (s managedDeviceStore) Projections(ctx context.Context, tenantID, state string) ([]store.DeviceProjection, error) {
	query := `SELECT id, os_version, os_version_key, model, facts FROM devices WHERE tenant_id = $1`
	args := []any{tenantID}
	if state != "" {
		query += ` AND state = $2`
		args = append(args, state)
	}
	rows, err := s.q.x.QueryContext(ctx, query+` ORDER BY id`, args...)
	return collect(rows, err, "reading device projections", func(sc scanner) (store.DeviceProjection, error) {
		p := store.DeviceProjection{TenantID: tenantID}
		err := sc.Scan(&p.DeviceID, &p.OSVersion, &p.OSVersionKey, &p.Model, &p.Facts)
		p.Facts = nonEmpty(p.Facts)
		return p, err
	})
}

func (s managedDeviceStore) SetCompliance(ctx context.Context, tenantID, deviceID, state string, at time.Time) error {
	return s.q.execOne(ctx, "storing device compliance", `UPDATE devices SET compliance = $3, compliance_at = $4
		WHERE tenant_id = $1 AND id = $2`, tenantID, deviceID, state, micros(at))
}

// Stale counts a device that never checked in (last seen 0) as seen before
// any cutoff. limit <= 0 means 100; it is capped at 1000.
func (s managedDeviceStore) Stale(ctx context.Context, tenantID string, cutoff, flaggedBefore time.Time, after store.StaleCursor, limit int) ([]store.Device, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE tenant_id = $1 AND state = $2 AND last_seen_at < $3 AND (stale_since = 0 OR stale_since < $5)
		AND (last_seen_at, id) > ($6, $7)
		ORDER BY last_seen_at, id LIMIT $4`,
		tenantID, store.DeviceEnrolled, micros(cutoff), limitOf(limit), micros(flaggedBefore), micros(after.LastSeenAt), after.ID)
	return collect(rows, err, "listing stale devices", scanDevice)
}

func (s managedDeviceStore) SetStaleSince(ctx context.Context, tenantID, deviceID string, at time.Time) error {
	return s.q.execOne(ctx, "marking device stale", `UPDATE devices SET stale_since = $3 WHERE tenant_id = $1 AND id = $2`,
		tenantID, deviceID, micros(at))
}
