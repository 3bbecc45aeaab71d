package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type keyStore struct{ q *queries }

const keysetColumns = `tenant_id, aead_keyset, index_keyset, master_key_id, created_at, rotated_at`

func scanKeyset(s scanner) (store.TenantKeyset, error) {
	var k store.TenantKeyset
	var created, rotated int64
	err := s.Scan(&k.TenantID, &k.AEADKeyset, &k.IndexKeyset, &k.MasterKeyID, &created, &rotated)
	k.CreatedAt, k.RotatedAt = fromMicros(created), fromMicros(rotated)
	return k, err
}

const dataKeyColumns = `id, tenant_id, owner, subject_id, wrapped, created_at, destroyed_at, destroyed_for`

func scanDataKey(s scanner) (store.DataKey, error) {
	var k store.DataKey
	var created, destroyed int64
	err := s.Scan(&k.ID, &k.TenantID, &k.Owner, &k.SubjectID, &k.Wrapped, &created, &destroyed, &k.DestroyedFor)
	k.Wrapped = nonEmpty(k.Wrapped)
	k.CreatedAt, k.DestroyedAt = fromMicros(created), fromMicros(destroyed)
	return k, err
}

func (s keyStore) GetKeyset(ctx context.Context, tenantID string) (store.TenantKeyset, error) {
	k, err := scanKeyset(s.q.x.QueryRowContext(ctx, `SELECT `+keysetColumns+` FROM tenant_keysets
		WHERE tenant_id = $1`, tenantID))
	return k, mapErr("reading tenant keyset", err)
}

func (s keyStore) CreateKeyset(ctx context.Context, k store.TenantKeyset) (bool, error) {
	n, err := s.q.exec(ctx, "creating tenant keyset", `INSERT INTO tenant_keysets (`+keysetColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		k.TenantID, k.AEADKeyset, k.IndexKeyset, k.MasterKeyID, micros(k.CreatedAt), micros(k.RotatedAt))
	return n == 1, err
}

// SwapKeyset is one conditional UPDATE: of two rotations racing, the one
// that wrote first keeps its keyset.
func (s keyStore) SwapKeyset(ctx context.Context, old []byte, k store.TenantKeyset) (bool, error) {
	n, err := s.q.exec(ctx, "swapping tenant keyset", `UPDATE tenant_keysets SET aead_keyset = $3,
		index_keyset = $4, master_key_id = $5, rotated_at = $6 WHERE tenant_id = $1 AND aead_keyset = $2`,
		k.TenantID, old, k.AEADKeyset, k.IndexKeyset, k.MasterKeyID, micros(k.RotatedAt))
	return n == 1, err
}

// ListKeysets spans every tenant: master-key rotation rewraps them all.
func (s keyStore) ListKeysets(ctx context.Context, p store.Page) ([]store.TenantKeyset, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+keysetColumns+` FROM tenant_keysets
		WHERE tenant_id > $1 ORDER BY tenant_id LIMIT $2`, after, limit)
	return collect(rows, err, "listing tenant keysets", scanKeyset)
}

// CreateDataKey relies on the partial unique index (one live key per owner).
func (s keyStore) CreateDataKey(ctx context.Context, k store.DataKey) (bool, error) {
	if len(k.Wrapped) == 0 || !k.DestroyedAt.IsZero() {
		return false, errors.New("sqlstore: creating data key: a new key needs key material and no destruction time")
	}
	n, err := s.q.exec(ctx, "creating data key", `INSERT INTO data_keys (id, tenant_id, owner, subject_id, wrapped, created_at, destroyed_at)
		VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT DO NOTHING`,
		k.ID, k.TenantID, k.Owner, k.SubjectID, k.Wrapped, micros(k.CreatedAt))
	return n == 1, err
}

func (s keyStore) GetDataKey(ctx context.Context, tenantID, id string) (store.DataKey, error) {
	k, err := scanDataKey(s.q.x.QueryRowContext(ctx, `SELECT `+dataKeyColumns+` FROM data_keys
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return k, mapErr("reading data key", err)
}

func (s keyStore) DataKeyByOwner(ctx context.Context, tenantID, owner string) (store.DataKey, error) {
	k, err := scanDataKey(s.q.x.QueryRowContext(ctx, `SELECT `+dataKeyColumns+` FROM data_keys
		WHERE tenant_id = $1 AND owner = $2
		ORDER BY CASE WHEN destroyed_at = 0 THEN 0 ELSE 1 END, destroyed_at DESC, id DESC LIMIT 1`, tenantID, owner))
	return k, mapErr("reading data key by owner", err)
}

func (s keyStore) ListDataKeys(ctx context.Context, tenantID string, p store.Page) ([]store.DataKey, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+dataKeyColumns+` FROM data_keys
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing data keys", scanDataKey)
}

// Rewrap touches live keys only: a destroyed key must stay without material.
func (s keyStore) Rewrap(ctx context.Context, tenantID, id string, wrapped []byte) error {
	if len(wrapped) == 0 {
		return errors.New("sqlstore: rewrapping data key: no key material")
	}
	return s.q.execOne(ctx, "rewrapping data key", `UPDATE data_keys SET wrapped = $3
		WHERE tenant_id = $1 AND id = $2 AND destroyed_at = 0`, tenantID, id, wrapped)
}

func (s keyStore) SetKeySubject(ctx context.Context, tenantID, id, subjectID string) error {
	return s.q.execOne(ctx, "setting data key subject", `UPDATE data_keys SET subject_id = $3
		WHERE tenant_id = $1 AND id = $2`, tenantID, id, subjectID)
}

// Destroy is idempotent and keeps the first destruction time, and its
// reason unless a departure comes after an erasure.
func (s keyStore) Destroy(ctx context.Context, tenantID, id string, at time.Time, why string) error {
	if at.IsZero() {
		return errors.New("sqlstore: destroying data key: destruction time is required")
	}
	return s.q.execOne(ctx, "destroying data key", `UPDATE data_keys SET wrapped = NULL,
		destroyed_for = CASE WHEN destroyed_at = 0 OR $4 = '`+store.KeyDestroyedForDeparture+`' THEN $4 ELSE destroyed_for END,
		destroyed_at = CASE WHEN destroyed_at = 0 THEN $3 ELSE destroyed_at END
		WHERE tenant_id = $1 AND id = $2`, tenantID, id, micros(at), why)
}

type privacySettingsStore struct{ q *queries }

func (s privacySettingsStore) Get(ctx context.Context, tenantID string) ([]byte, int64, error) {
	var doc string
	var version int64
	err := s.q.x.QueryRowContext(ctx, `SELECT doc, version FROM privacy_settings WHERE tenant_id = $1`,
		tenantID).Scan(&doc, &version)
	if err != nil {
		return nil, 0, mapErr("reading privacy settings", err)
	}
	return []byte(doc), version, nil
}

// Put is a compare-and-set on the version, so of two admins editing the
// same settings the second is told to reload.
func (s privacySettingsStore) Put(ctx context.Context, tenantID string, doc []byte, expected int64, at time.Time) error {
	if !json.Valid(doc) {
		return errors.New("sqlstore: storing privacy settings: document is not valid JSON")
	}
	var n int
	var err error
	if expected == 0 {
		n, err = s.q.exec(ctx, "storing privacy settings", `INSERT INTO privacy_settings (tenant_id, doc, version, updated_at)
			VALUES ($1, $2, 1, $3) ON CONFLICT DO NOTHING`, tenantID, string(doc), micros(at))
	} else {
		n, err = s.q.exec(ctx, "storing privacy settings", `UPDATE privacy_settings SET doc = $2, version = $4,
			updated_at = $5 WHERE tenant_id = $1 AND version = $3`, tenantID, string(doc), expected, expected+1, micros(at))
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: storing privacy settings: version %d is no longer current: %w", expected, store.ErrConflict)
	}
	return nil
}
