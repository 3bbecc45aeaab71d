package sqlstore

import (
	"context"
	"fmt"

	"github.com/steward-mdm/steward/internal/store"
)

type roleStore struct{ q *queries }

const roleColumns = `id, tenant_id, name, description, permissions, built_in, created_at`

func scanRole(s scanner) (store.Role, error) {
	var r store.Role
	var perms string
	var created int64
	if err := s.Scan(&r.ID, &r.TenantID, &r.Name, &r.Description, &perms, &r.BuiltIn, &created); err != nil {
		return r, err
	}
	var err error
	r.Permissions, err = decodeStrings(perms)
	r.CreatedAt = fromMicros(created)
	return r, err
}

func (s roleStore) Create(ctx context.Context, r store.Role) error {
	perms, err := encodeStrings(r.Permissions)
	if err != nil {
		return fmt.Errorf("sqlstore: encoding permissions: %w", err)
	}
	return s.q.insert(ctx, "creating role", `INSERT INTO roles (`+roleColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		r.ID, r.TenantID, r.Name, r.Description, perms, boolInt(r.BuiltIn), micros(r.CreatedAt))
}

func (s roleStore) Get(ctx context.Context, tenantID, id string) (store.Role, error) {
	r, err := scanRole(s.q.x.QueryRowContext(ctx, `SELECT `+roleColumns+` FROM roles
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return r, mapErr("reading role", err)
}

func (s roleStore) List(ctx context.Context, tenantID string) ([]store.Role, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+roleColumns+` FROM roles WHERE tenant_id = $1 ORDER BY id`, tenantID)
	return collect(rows, err, "listing roles", scanRole)
}

func (s roleStore) Update(ctx context.Context, r store.Role) error {
	perms, err := encodeStrings(r.Permissions)
	if err != nil {
		return fmt.Errorf("sqlstore: encoding permissions: %w", err)
	}
	return s.q.execOne(ctx, "updating role", `UPDATE roles SET name = $3, description = $4, permissions = $5
		WHERE tenant_id = $1 AND id = $2`, r.TenantID, r.ID, r.Name, r.Description, perms)
}

func (s roleStore) Delete(ctx context.Context, tenantID, id string) error {
	n, err := s.q.count(ctx, "checking role use", `SELECT COUNT(*) FROM assignments WHERE role_id = $2
		AND EXISTS (SELECT 1 FROM roles WHERE tenant_id = $1 AND id = $2)`, tenantID, id)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("sqlstore: deleting role: %d assignments use it: %w", n, store.ErrConflict)
	}
	return s.q.execOne(ctx, "deleting role", `DELETE FROM roles WHERE tenant_id = $1 AND id = $2`, tenantID, id)
}

type assignmentStore struct{ q *queries }

const assignmentColumns = `id, admin_id, tenant_id, role_id, created_at`

func scanAssignment(s scanner) (store.Assignment, error) {
	var a store.Assignment
	var created int64
	err := s.Scan(&a.ID, &a.AdminID, &a.TenantID, &a.RoleID, &created)
	a.CreatedAt = fromMicros(created)
	return a, err
}

// Create writes the assignment and its group scope together; a scope group
// that is not a group of a.TenantID is ErrNotFound, checked before any write.
func (s assignmentStore) Create(ctx context.Context, a store.Assignment) error {
	groups := uniqueSorted(a.Groups)
	return s.q.inWriteTx(ctx, func(q *queries) error {
		if err := q.requireGroups(ctx, "creating assignment", a.TenantID, groups); err != nil {
			return err
		}
		if err := q.insert(ctx, "creating assignment", `INSERT INTO assignments (`+assignmentColumns+`)
			VALUES ($1, $2, $3, $4, $5)`, a.ID, a.AdminID, a.TenantID, a.RoleID, micros(a.CreatedAt)); err != nil {
			return err
		}
		if len(groups) == 0 {
			return nil
		}
		rows := make([][]any, len(groups))
		for i, g := range groups {
			rows[i] = []any{a.ID, a.TenantID, g}
		}
		return q.insertAll(ctx, "scoping assignment", `INSERT INTO assignment_scopes (assignment_id, tenant_id, group_id) VALUES `, rows)
	})
}

func (s assignmentStore) Get(ctx context.Context, tenantID, id string) (store.Assignment, error) {
	a, err := scanAssignment(s.q.x.QueryRowContext(ctx, `SELECT `+assignmentColumns+` FROM assignments
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return a, mapErr("reading assignment", err)
	}
	list, err := s.withScopes(ctx, []store.Assignment{a})
	if err != nil {
		return a, err
	}
	return list[0], nil
}

func (s assignmentStore) Delete(ctx context.Context, tenantID, id string) error {
	// assignment_scopes rows go with it (ON DELETE CASCADE).
	return s.q.execOne(ctx, "deleting assignment", `DELETE FROM assignments WHERE tenant_id = $1 AND id = $2`,
		tenantID, id)
}

func (s assignmentStore) ListForAdmin(ctx context.Context, adminID string) ([]store.Assignment, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+assignmentColumns+` FROM assignments
		WHERE admin_id = $1 ORDER BY id`, adminID)
	list, err := collect(rows, err, "listing assignments of admin", scanAssignment)
	if err != nil {
		return nil, err
	}
	return s.withScopes(ctx, list)
}

func (s assignmentStore) ListForTenant(ctx context.Context, tenantID string, p store.Page) ([]store.Assignment, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+assignmentColumns+` FROM assignments
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	list, err := collect(rows, err, "listing assignments of tenant", scanAssignment)
	if err != nil {
		return nil, err
	}
	return s.withScopes(ctx, list)
}

// withScopes fills Groups (sorted) of every assignment in list.
func (s assignmentStore) withScopes(ctx context.Context, list []store.Assignment) ([]store.Assignment, error) {
	if len(list) == 0 {
		return list, nil
	}
	index := make(map[string]int, len(list))
	ids := make([]string, len(list))
	for i, a := range list {
		index[a.ID], ids[i] = i, a.ID
	}
	err := forChunks(ids, func(chunk []string) error {
		marks, args := placeholders(chunk, 1)
		rows, err := s.q.x.QueryContext(ctx, `SELECT assignment_id, group_id FROM assignment_scopes
			WHERE assignment_id IN (`+marks+`) ORDER BY assignment_id, group_id`, args...)
		pairs, err := collect(rows, err, "reading assignment scopes", scanPair)
		for _, p := range pairs {
			i := index[p[0]]
			list[i].Groups = append(list[i].Groups, p[1])
		}
		return err
	})
	return list, err
}

func (s assignmentStore) CountForRole(ctx context.Context, tenantID, roleID string) (int, error) {
	return s.q.count(ctx, "counting role assignments", `SELECT COUNT(*) FROM assignments
		WHERE tenant_id = $1 AND role_id = $2`, tenantID, roleID)
}
