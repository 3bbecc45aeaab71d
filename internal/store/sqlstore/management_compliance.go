package sqlstore

import (
	"context"
	"strconv"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type complianceStore struct{ q *queries }

const policyColumns = `id, tenant_id, name, platform, ownership, group_id, rules, ladder, enabled, created_by, updated_by, created_at, updated_at`

func scanPolicy(s scanner) (store.CompliancePolicy, error) {
	var p store.CompliancePolicy
	var created, updated int64
	err := s.Scan(&p.ID, &p.TenantID, &p.Name, &p.Platform, &p.Ownership, &p.GroupID, &p.Rules, &p.Ladder, &p.Enabled, &p.CreatedBy,
		&p.UpdatedBy, &created, &updated)
	p.Rules, p.Ladder = nonEmpty(p.Rules), nonEmpty(p.Ladder)
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return p, err
}

// CreatePolicy returns ErrConflict when the tenant has a policy of that name.
func (s complianceStore) CreatePolicy(ctx context.Context, p store.CompliancePolicy) error {
	return s.q.insert(ctx, "creating compliance policy", `INSERT INTO compliance_policies (`+policyColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		p.ID, p.TenantID, p.Name, p.Platform, p.Ownership, p.GroupID, notEmptyBlob(p.Rules), notEmptyBlob(p.Ladder), boolInt(p.Enabled),
		p.CreatedBy, p.UpdatedBy, micros(p.CreatedAt), micros(p.UpdatedAt))
}

func (s complianceStore) GetPolicy(ctx context.Context, tenantID, id string) (store.CompliancePolicy, error) {
	p, err := scanPolicy(s.q.x.QueryRowContext(ctx, `SELECT `+policyColumns+` FROM compliance_policies
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return p, mapErr("reading compliance policy", err)
}

func (s complianceStore) ListPolicies(ctx context.Context, tenantID string, pg store.Page) ([]store.CompliancePolicy, error) {
	after, limit := pageArgs(pg)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+policyColumns+` FROM compliance_policies
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing compliance policies", scanPolicy)
}

// UpdatePolicy returns ErrConflict when another policy of the tenant has
// p.Name and ErrNotFound when the policy is not the tenant's.
func (s complianceStore) UpdatePolicy(ctx context.Context, p store.CompliancePolicy) error {
	if err := s.q.nameTaken(ctx, "updating compliance policy", "compliance_policies", p.TenantID, p.ID, p.Name); err != nil {
		return err
	}
	return s.q.execOne(ctx, "updating compliance policy", `UPDATE compliance_policies SET name = $3, platform = $4,
		ownership = $5, rules = $6, ladder = $7, enabled = $8, updated_at = $9, updated_by = $10, group_id = $11
		WHERE tenant_id = $1 AND id = $2`,
		p.TenantID, p.ID, p.Name, p.Platform, p.Ownership, notEmptyBlob(p.Rules), notEmptyBlob(p.Ladder), boolInt(p.Enabled),
		micros(p.UpdatedAt), p.UpdatedBy, p.GroupID)
}

func (s complianceStore) DeletePolicy(ctx context.Context, tenantID, id string) error {
	return s.q.inWriteTx(ctx, func(q *queries) error {
		if err := q.execOne(ctx, "deleting compliance policy", `DELETE FROM compliance_policies
			WHERE tenant_id = $1 AND id = $2`, tenantID, id); err != nil {
			return err
		}
		_, err := q.exec(ctx, "deleting compliance standings", `DELETE FROM device_compliance
			WHERE tenant_id = $1 AND policy_id = $2`, tenantID, id)
		return err
	})
}

const standingColumns = `tenant_id, device_id, policy_id, state, violations, since, steps, evaluated_at, next_step_at`

func scanStanding(s scanner) (store.DeviceCompliance, error) {
	var c store.DeviceCompliance
	var since, evaluated, next int64
	err := s.Scan(&c.TenantID, &c.DeviceID, &c.PolicyID, &c.State, &c.Violations, &since, &c.Steps, &evaluated, &next)
	c.Violations = nonEmpty(c.Violations)
	c.Since, c.EvaluatedAt, c.NextStepAt = fromMicros(since), fromMicros(evaluated), fromMicros(next)
	return c, err
}

// PutStanding returns ErrNotFound when the device or the policy is not the
// tenant's; the checks and the upsert are one statement.
func (s complianceStore) PutStanding(ctx context.Context, c store.DeviceCompliance) error {
	return s.q.execOne(ctx, "storing compliance standing", `INSERT INTO device_compliance (`+standingColumns+`)
		SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), `+s.q.blobParam(5)+`, CAST($6 AS BIGINT),
			CAST($7 AS INTEGER), CAST($8 AS BIGINT), CAST($9 AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2)
		AND EXISTS (SELECT 1 FROM compliance_policies WHERE tenant_id = $1 AND id = $3)
		ON CONFLICT (device_id, policy_id) DO UPDATE SET state = excluded.state, violations = excluded.violations,
			since = excluded.since, steps = excluded.steps, evaluated_at = excluded.evaluated_at,
			next_step_at = excluded.next_step_at
		WHERE device_compliance.tenant_id = excluded.tenant_id`,
		c.TenantID, c.DeviceID, c.PolicyID, c.State, blob(c.Violations), micros(c.Since), c.Steps, micros(c.EvaluatedAt),
		micros(c.NextStepAt))
}

// Standings returns the device's standings by policy ID.
func (s complianceStore) Standings(ctx context.Context, tenantID, deviceID string) ([]store.DeviceCompliance, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+standingColumns+` FROM device_compliance
		WHERE tenant_id = $1 AND device_id = $2 ORDER BY policy_id`, tenantID, deviceID)
	return collect(rows, err, "listing compliance standings", scanStanding)
}

// ForPolicy returns the standings by device ID.
func (s complianceStore) ForPolicy(ctx context.Context, tenantID, policyID string) ([]store.DeviceCompliance, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+standingColumns+` FROM device_compliance
		WHERE tenant_id = $1 AND policy_id = $2 ORDER BY device_id`, tenantID, policyID)
	return collect(rows, err, "listing policy standings", scanStanding)
}

func (s complianceStore) DeleteStanding(ctx context.Context, tenantID, deviceID, policyID string) error {
	return s.q.execOne(ctx, "deleting compliance standing", `DELETE FROM device_compliance
		WHERE tenant_id = $1 AND device_id = $2 AND policy_id = $3`, tenantID, deviceID, policyID)
}

// DueSteps returns the most overdue first (by NextStepAt, then device and
// policy ID). limit <= 0 means 100; it is capped at 1000.
func (s complianceStore) DueSteps(ctx context.Context, now time.Time, limit int) ([]store.DeviceCompliance, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+standingColumns+` FROM device_compliance
		WHERE next_step_at > 0 AND next_step_at <= $1 ORDER BY next_step_at, device_id, policy_id LIMIT $2`,
		micros(now), limitOf(limit))
	return collect(rows, err, "listing due compliance steps", scanStanding)
}

const eventColumns = `id, tenant_id, device_id, policy_id, state, violations, action, at, expires_at`

func scanEvent(s scanner) (store.ComplianceEvent, error) {
	var e store.ComplianceEvent
	var at, expires int64
	err := s.Scan(&e.ID, &e.TenantID, &e.DeviceID, &e.PolicyID, &e.State, &e.Violations, &e.Action, &at, &expires)
	e.Violations = nonEmpty(e.Violations)
	e.At, e.ExpiresAt = fromMicros(at), fromMicros(expires)
	return e, err
}

func (s complianceStore) AppendEvent(ctx context.Context, e store.ComplianceEvent) error {
	return s.q.insert(ctx, "recording compliance event", `INSERT INTO compliance_events (`+eventColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, e.ID, e.TenantID, e.DeviceID, e.PolicyID, e.State, blob(e.Violations),
		e.Action, micros(e.At), micros(e.ExpiresAt))
}

// History pages newest first: Page.After is the ID of the last (oldest)
// event of the previous page.
func (s complianceStore) History(ctx context.Context, tenantID, deviceID string, p store.Page) ([]store.ComplianceEvent, error) {
	after, limit := pageArgs(p)
	query := `SELECT ` + eventColumns + ` FROM compliance_events WHERE tenant_id = $1 AND device_id = $2`
	args := []any{tenantID, deviceID}
	if after != "" {
		query += ` AND id < $3`
		args = append(args, after)
	}
	args = append(args, limit)
	rows, err := s.q.x.QueryContext(ctx, query+` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	return collect(rows, err, "listing compliance history", scanEvent)
}

// PurgeHistory counts the deleted events per tenant under the category
// "compliance_history". limit <= 0 means the purge default.
func (s complianceStore) PurgeHistory(ctx context.Context, cutoff time.Time, limit int) ([]store.PurgeCount, error) {
	return s.q.purgeByID(ctx, "compliance_events", "compliance_history", `expires_at < $1`, micros(cutoff), limit)
}
