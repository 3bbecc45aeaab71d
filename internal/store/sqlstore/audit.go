package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type auditStore struct{ q *queries }

const auditColumns = `tenant_id, seq, time, actor_type, actor_id, action, target_type, target_id, outcome,
	source_ip, request_id, reason, details, prev_hash, hash`

// scanChunk is how many entries Scan reads per query, so no read connection
// (or SQLite read snapshot) is held while the callback runs.
const scanChunk = 1000

func scanEntry(s scanner) (store.AuditEntry, error) {
	var e store.AuditEntry
	var at int64
	var details sql.NullString
	err := s.Scan(&e.TenantID, &e.Seq, &at, &e.ActorType, &e.ActorID, &e.Action, &e.TargetType, &e.TargetID,
		&e.Outcome, &e.SourceIP, &e.RequestID, &e.Reason, &details, &e.PrevHash, &e.Hash)
	e.Time = fromMicros(at)
	if details.Valid && details.String != "" {
		e.Details = json.RawMessage(details.String)
	}
	e.PrevHash, e.Hash = nonEmpty(e.PrevHash), nonEmpty(e.Hash)
	return e, err
}

// Head locks the head row inside a PostgreSQL transaction. The row is
// created first when absent, because a lock cannot be taken on a missing
// row and two nodes would otherwise both start the chain at Seq 1. Every
// audited transaction of the tenant waits on this lock until it commits, so
// creating, locking and reading the row is one statement.
func (s auditStore) Head(ctx context.Context, tenantID string) (store.AuditHead, error) {
	query := `SELECT tenant_id, seq, hash, base_seq, base_hash FROM audit_heads WHERE tenant_id = $1`
	if s.q.inTx && s.q.db.dialect.name == "postgres" {
		query = `INSERT INTO audit_heads (tenant_id, seq, base_seq) VALUES ($1, 0, 0)
			ON CONFLICT (tenant_id) DO UPDATE SET seq = audit_heads.seq
			RETURNING tenant_id, seq, hash, base_seq, base_hash`
	}
	var h store.AuditHead
	err := s.q.x.QueryRowContext(ctx, query, tenantID).Scan(&h.TenantID, &h.Seq, &h.Hash, &h.BaseSeq, &h.BaseHash)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && h.Seq == 0 && h.BaseSeq == 0) {
		return store.AuditHead{}, nil
	}
	h.Hash, h.BaseHash = nonEmpty(h.Hash), nonEmpty(h.BaseHash)
	return h, mapErr("reading audit head", err)
}

func (s auditStore) putHead(ctx context.Context, h store.AuditHead) error {
	_, err := s.q.exec(ctx, "storing audit head", `INSERT INTO audit_heads (tenant_id, seq, hash, base_seq, base_hash)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET
		seq = excluded.seq, hash = excluded.hash, base_seq = excluded.base_seq, base_hash = excluded.base_hash`,
		h.TenantID, h.Seq, blob(h.Hash), h.BaseSeq, blob(h.BaseHash))
	return err
}

const insertAuditEntry = `INSERT INTO audit_entries (` + auditColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`

func auditEntryArgs(e store.AuditEntry) []any {
	var details any
	if len(e.Details) > 0 {
		details = string(e.Details)
	}
	return []any{e.TenantID, e.Seq, micros(e.Time), string(e.ActorType), e.ActorID, e.Action, e.TargetType, e.TargetID,
		e.Outcome, e.SourceIP, e.RequestID, e.Reason, details, blob(e.PrevHash), blob(e.Hash)}
}

func (s auditStore) Append(ctx context.Context, head store.AuditHead, entries []store.AuditEntry) error {
	for i, e := range entries {
		if e.TenantID != head.TenantID {
			return fmt.Errorf("sqlstore: appending audit entries: entry %d is for another tenant than the head", i)
		}
	}
	if len(entries) == 1 && s.q.inTx && s.q.db.dialect.name == "postgres" {
		return s.appendOne(ctx, head, entries[0])
	}
	for _, e := range entries {
		if err := s.q.insert(ctx, "appending audit entry "+strconv.FormatInt(e.Seq, 10), insertAuditEntry, auditEntryArgs(e)...); err != nil {
			return err
		}
	}
	return s.putHead(ctx, head)
}

// appendOne stores one entry and the head it leads to in one statement:
// on PostgreSQL the head stays locked from Head until commit, and each
// statement in between is a round trip every other audited transaction
// of the tenant waits for. (Head created the row in this transaction.)
func (s auditStore) appendOne(ctx context.Context, head store.AuditHead, e store.AuditEntry) error {
	n, err := s.q.exec(ctx, "appending audit entry "+strconv.FormatInt(e.Seq, 10), `WITH entry AS (`+insertAuditEntry+`
		ON CONFLICT DO NOTHING RETURNING 1)
		UPDATE audit_heads SET seq = $16, hash = $17, base_seq = $18, base_hash = $19
		WHERE tenant_id = $1 AND EXISTS (SELECT 1 FROM entry)`,
		append(auditEntryArgs(e), head.Seq, blob(head.Hash), head.BaseSeq, blob(head.BaseHash))...)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: appending audit entry %d: %w", e.Seq, store.ErrConflict)
	}
	return nil
}

// actionPrefixEnd bounds a prefix range: in byte order (SQLite BINARY,
// PostgreSQL COLLATE "C") every string starting with p sorts below p+U+10FFFF.
const actionPrefixEnd = "\U0010FFFF"

func (s auditStore) List(ctx context.Context, tenantID string, f store.AuditFilter) ([]store.AuditEntry, error) {
	var where strings.Builder
	args := []any{tenantID}
	add := func(cond string, v any) {
		args = append(args, v)
		where.WriteString(" AND " + strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.ActorType != "" {
		add("actor_type = ?", string(f.ActorType))
	}
	if f.ActorID != "" {
		add("actor_id = ?", f.ActorID)
	}
	if prefix, ok := strings.CutSuffix(f.Action, "*"); ok {
		if prefix != "" {
			add("action >= ?", prefix)
			add("action < ?", prefix+actionPrefixEnd)
		}
	} else if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.TargetType != "" {
		add("target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		add("target_id = ?", f.TargetID)
	}
	if !f.Since.IsZero() {
		add("time >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", micros(f.Until))
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		add("seq < ?", f.BeforeSeq)
	}
	order := "ASC"
	if f.Descending {
		order = "DESC"
	}
	_, limit := pageArgs(store.Page{Limit: f.Limit})
	args = append(args, limit)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_entries WHERE tenant_id = $1`+
		where.String()+` ORDER BY seq `+order+` LIMIT $`+strconv.Itoa(len(args)), args...)
	return collect(rows, err, "listing audit entries", scanEntry)
}

func (s auditStore) Scan(ctx context.Context, tenantID string, afterSeq int64, fn func(store.AuditEntry) error) error {
	for {
		rows, err := s.q.x.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_entries
			WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, tenantID, afterSeq, scanChunk)
		chunk, err := collect(rows, err, "scanning audit entries", scanEntry)
		if err != nil {
			return err
		}
		for _, e := range chunk {
			if err := fn(e); err != nil {
				return err
			}
			afterSeq = e.Seq
		}
		if len(chunk) < scanChunk {
			return nil
		}
	}
}

func (s auditStore) Tenants(ctx context.Context) ([]string, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT tenant_id FROM audit_heads
		WHERE seq > 0 OR base_seq > 0 ORDER BY tenant_id`)
	return collect(rows, err, "listing audited tenants", func(s scanner) (string, error) {
		var id string
		return id, s.Scan(&id)
	})
}

func (s auditStore) AddCheckpoint(ctx context.Context, c store.Checkpoint) error {
	return s.q.insert(ctx, "adding audit checkpoint", `INSERT INTO audit_checkpoints
		(tenant_id, seq, hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6)`,
		c.TenantID, c.Seq, blob(c.Hash), micros(c.Time), c.KeyID, blob(c.Signature))
}

func (s auditStore) Checkpoints(ctx context.Context, tenantID string) ([]store.Checkpoint, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT tenant_id, seq, hash, time, key_id, signature
		FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq`, tenantID)
	return collect(rows, err, "listing audit checkpoints", func(s scanner) (store.Checkpoint, error) {
		var c store.Checkpoint
		var at int64
		err := s.Scan(&c.TenantID, &c.Seq, &c.Hash, &at, &c.KeyID, &c.Signature)
		c.Time, c.Hash, c.Signature = fromMicros(at), nonEmpty(c.Hash), nonEmpty(c.Signature)
		return c, err
	})
}

func (s auditStore) LastSeqBefore(ctx context.Context, tenantID string, t time.Time) (int64, error) {
	var seq sql.NullInt64
	err := s.q.x.QueryRowContext(ctx, `SELECT MAX(seq) FROM audit_entries WHERE tenant_id = $1 AND time < $2`,
		tenantID, micros(t)).Scan(&seq)
	return seq.Int64, mapErr("finding audit entry before time", err)
}

// DeleteThrough keeps the checkpoint at the new base itself: it anchors the
// first remaining entry for verification.
func (s auditStore) DeleteThrough(ctx context.Context, head store.AuditHead, seq int64) (int, error) {
	n, err := s.q.exec(ctx, "deleting archived audit entries", `DELETE FROM audit_entries
		WHERE tenant_id = $1 AND seq <= $2`, head.TenantID, seq)
	if err != nil {
		return 0, err
	}
	if _, err := s.q.exec(ctx, "deleting archived audit checkpoints", `DELETE FROM audit_checkpoints
		WHERE tenant_id = $1 AND seq < $2`, head.TenantID, head.BaseSeq); err != nil {
		return 0, err
	}
	return n, s.putHead(ctx, head)
}
