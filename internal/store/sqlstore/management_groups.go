package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type groupStore struct{ q *queries }

const groupColumns = `id, tenant_id, name, description, kind, rule, created_by, created_at, updated_at`

// groupSelect reads groups with their member count (scanGroup's last column).
const groupSelect = `SELECT g.id, g.tenant_id, g.name, g.description, g.kind, g.rule, g.created_by, g.created_at,
	g.updated_at, (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) FROM device_groups g`

func scanGroup(s scanner) (store.Group, error) {
	var g store.Group
	var created, updated int64
	err := s.Scan(&g.ID, &g.TenantID, &g.Name, &g.Description, &g.Kind, &g.Rule, &g.CreatedBy, &created, &updated,
		&g.Members)
	g.Rule = nonEmpty(g.Rule)
	g.CreatedAt, g.UpdatedAt = fromMicros(created), fromMicros(updated)
	return g, err
}

func (s groupStore) Create(ctx context.Context, g store.Group) error {
	return s.q.insert(ctx, "creating group", `INSERT INTO device_groups (`+groupColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, g.ID, g.TenantID, g.Name, g.Description, g.Kind, blob(g.Rule),
		g.CreatedBy, micros(g.CreatedAt), micros(g.UpdatedAt))
}

func (s groupStore) Get(ctx context.Context, tenantID, id string) (store.Group, error) {
	g, err := scanGroup(s.q.x.QueryRowContext(ctx, groupSelect+` WHERE g.tenant_id = $1 AND g.id = $2`, tenantID, id))
	return g, mapErr("reading group", err)
}

func (s groupStore) List(ctx context.Context, tenantID string, p store.Page) ([]store.Group, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, groupSelect+` WHERE g.tenant_id = $1 AND g.id > $2 ORDER BY g.id LIMIT $3`,
		tenantID, after, limit)
	return collect(rows, err, "listing groups", scanGroup)
}

func (s groupStore) Dynamic(ctx context.Context, tenantID string) ([]store.Group, error) {
	rows, err := s.q.x.QueryContext(ctx, groupSelect+` WHERE g.tenant_id = $1 AND g.kind = $2 ORDER BY g.id`,
		tenantID, store.GroupDynamic)
	return collect(rows, err, "listing dynamic groups", scanGroup)
}

// Update returns ErrConflict when another group of the tenant has g.Name and
// ErrNotFound when the group is not the tenant's.
func (s groupStore) Update(ctx context.Context, g store.Group) error {
	if err := s.q.nameTaken(ctx, "updating group", "device_groups", g.TenantID, g.ID, g.Name); err != nil {
		return err
	}
	return s.q.execOne(ctx, "updating group", `UPDATE device_groups SET name = $3, description = $4, rule = $5,
		updated_at = $6 WHERE tenant_id = $1 AND id = $2`,
		g.TenantID, g.ID, g.Name, g.Description, blob(g.Rule), micros(g.UpdatedAt))
}

// Delete removes the group and every row that targets it, atomically;
// ErrNotFound when the group is not the tenant's. Role scopes naming the
// group stay: a role limited to a group that is gone grants nothing, where
// dropping the scope would widen it to the whole tenant.
func (s groupStore) Delete(ctx context.Context, tenantID, id string) error {
	return s.q.inWriteTx(ctx, func(q *queries) error {
		if err := q.execOne(ctx, "deleting group", `DELETE FROM device_groups WHERE tenant_id = $1 AND id = $2`,
			tenantID, id); err != nil {
			return err
		}
		for _, table := range []string{"group_members", "profile_assignments", "app_assignments"} {
			if _, err := q.exec(ctx, "deleting group from "+table, `DELETE FROM `+table+`
				WHERE tenant_id = $1 AND group_id = $2`, tenantID, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddMembers returns ErrNotFound when the group is not the tenant's. The
// returned IDs are sorted.
func (s groupStore) AddMembers(ctx context.Context, tenantID, groupID string, deviceIDs []string, at time.Time) ([]string, error) {
	ids := uniqueSorted(deviceIDs)
	var added []string
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		added = nil
		if err := q.requireRow(ctx, "adding group members", "device_groups", tenantID, groupID); err != nil {
			return err
		}
		return forChunks(ids, func(chunk []string) error {
			marks, args := placeholders(chunk, 4)
			// Selecting from devices skips IDs that are not the tenant's
			// devices; ON CONFLICT skips existing members.
			got, err := q.stringList(ctx, "adding group members", `INSERT INTO group_members (tenant_id, group_id, device_id, added_at)
				SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), d.id, CAST($3 AS BIGINT) FROM devices d
				WHERE d.tenant_id = $1 AND d.id IN (`+marks+`)
				ON CONFLICT DO NOTHING RETURNING device_id`, append([]any{tenantID, groupID, micros(at)}, args...)...)
			added = append(added, got...)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(added)
	return added, nil
}

// RemoveMembers returns ErrNotFound when the group is not the tenant's. The
// returned IDs are sorted.
func (s groupStore) RemoveMembers(ctx context.Context, tenantID, groupID string, deviceIDs []string) ([]string, error) {
	ids := uniqueSorted(deviceIDs)
	var removed []string
	err := s.q.inWriteTx(ctx, func(q *queries) error {
		removed = nil
		if err := q.requireRow(ctx, "removing group members", "device_groups", tenantID, groupID); err != nil {
			return err
		}
		return forChunks(ids, func(chunk []string) error {
			marks, args := placeholders(chunk, 3)
			got, err := q.stringList(ctx, "removing group members", `DELETE FROM group_members
				WHERE tenant_id = $1 AND group_id = $2 AND device_id IN (`+marks+`) RETURNING device_id`,
				append([]any{tenantID, groupID}, args...)...)
			removed = append(removed, got...)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(removed)
	return removed, nil
}

// Members lists nothing (no error) for a group that is not the tenant's.
func (s groupStore) Members(ctx context.Context, tenantID, groupID string, p store.Page) ([]string, error) {
	after, limit := pageArgs(p)
	return s.q.stringList(ctx, "listing group members", `SELECT device_id FROM group_members
		WHERE tenant_id = $1 AND group_id = $2 AND device_id > $3 ORDER BY device_id LIMIT $4`,
		tenantID, groupID, after, limit)
}

func (s groupStore) MemberClasses(ctx context.Context, tenantID, groupID string) (map[string]int, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT d.ownership, COUNT(*) FROM group_members m
		JOIN devices d ON d.tenant_id = m.tenant_id AND d.id = m.device_id
		WHERE m.tenant_id = $1 AND m.group_id = $2 GROUP BY d.ownership`, tenantID, groupID)
	return ownershipCounts(rows, err, "counting group members")
}

func (s groupStore) HiddenMemberClasses(ctx context.Context, tenantID, groupID, field string) (map[string]int, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT d.ownership, COUNT(*) FROM group_members m
		JOIN devices d ON d.tenant_id = m.tenant_id AND d.id = m.device_id
		JOIN inventory_values v ON v.tenant_id = m.tenant_id AND v.device_id = m.device_id AND v.field = $3
		WHERE m.tenant_id = $1 AND m.group_id = $2 AND v.hidden = 1 GROUP BY d.ownership`, tenantID, groupID, field)
	return ownershipCounts(rows, err, "counting group members with a hidden value")
}

// ownershipCounts reads rows of (ownership, count) into a map.
func ownershipCounts(rows *sql.Rows, err error, what string) (map[string]int, error) {
	type class struct {
		ownership string
		members   int
	}
	classes, err := collect(rows, err, what, func(r scanner) (class, error) {
		var c class
		err := r.Scan(&c.ownership, &c.members)
		return c, err
	})
	out := make(map[string]int, len(classes))
	for _, c := range classes {
		out[c.ownership] = c.members
	}
	return out, err
}

func (s groupStore) AllMembers(ctx context.Context, tenantID, groupID string) ([]string, error) {
	return s.q.stringList(ctx, "listing group members", `SELECT device_id FROM group_members
		WHERE tenant_id = $1 AND group_id = $2 ORDER BY device_id`, tenantID, groupID)
}

// GroupsOf returns the group IDs sorted.
func (s groupStore) GroupsOf(ctx context.Context, tenantID, deviceID string) ([]string, error) {
	return s.q.stringList(ctx, "listing groups of device", `SELECT group_id FROM group_members
		WHERE tenant_id = $1 AND device_id = $2 ORDER BY group_id`, tenantID, deviceID)
}

// InAny is false for an empty groupIDs.
func (s groupStore) InAny(ctx context.Context, tenantID, deviceID string, groupIDs []string) (bool, error) {
	found := false
	err := forChunks(uniqueSorted(groupIDs), func(chunk []string) error {
		if found {
			return nil
		}
		marks, args := placeholders(chunk, 3)
		n, err := s.q.count(ctx, "checking group membership", `SELECT COUNT(*) FROM group_members
			WHERE tenant_id = $1 AND device_id = $2 AND group_id IN (`+marks+`)`,
			append([]any{tenantID, deviceID}, args...)...)
		found = n > 0
		return err
	})
	return found, err
}
