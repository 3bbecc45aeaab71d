package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// RotationResult says what a rotation re-wrapped.
type RotationResult struct {
	TenantID   string `json:"tenant_id,omitempty"`
	Keysets    int    `json:"keysets"`
	DataKeys   int    `json:"data_keys"`
	NewKeyID   uint32 `json:"new_primary_key_id,omitempty"`
	RetiredIDs int    `json:"retired_keys,omitempty"`
	// Skipped says why a run over every tenant left this one as it was.
	Skipped string `json:"skipped,omitempty"`
}

// RotateTenant adds a fresh primary key to the tenant's wrapping keyset,
// re-wraps every live data key under it and deletes keys older than the
// previous primary, all in q's transaction: personal values are not
// re-encrypted. The blind-index
// key is not rotated (indexes would have to be recomputed from plaintext).
func (v *Vault) RotateTenant(ctx context.Context, q store.Queries, tenantID string, progress func(done int)) (RotationResult, error) {
	res := RotationResult{TenantID: tenantID}
	if _, err := v.tenant(ctx, q, tenantID); err != nil { // creates the keyset if the tenant never had one
		return res, err
	}
	k, err := q.Keys().GetKeyset(ctx, tenantID)
	if err != nil {
		return res, err
	}
	// A second rotation inside cacheTTL of the first would delete the key
	// another node may still hold as its cached primary, and a data key it
	// wraps with it after this scan would never unwrap.
	if k.RotatedAt.After(k.CreatedAt) {
		if next := k.RotatedAt.Add(RotationSpacing); v.now().Before(next) {
			skew := ""
			if k.RotatedAt.After(v.now()) {
				skew = " (that is later than this host's clock: check the clocks of the hosts that rotate keys)"
			}
			return res, fmt.Errorf("%w: tenant %s's keys were rotated at %s%s; rotate them again from %s, once no node holds the keyset it cached",
				ErrRotatedRecently, tenantID, k.RotatedAt.UTC().Format(time.RFC3339), skew, next.UTC().Format(time.RFC3339))
		}
	}
	old := k.AEADKeyset
	oldH, err := readKeyset(k.AEADKeyset, v.master, tenantID, "aead")
	if err != nil {
		return res, err
	}
	oldWrap, err := aead.New(oldH)
	if err != nil {
		return res, err
	}
	mgr := keyset.NewManagerFromHandle(oldH)
	newID, err := mgr.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return res, err
	}
	if err := mgr.SetPrimary(newID); err != nil {
		return res, err
	}
	// The previous primary stays in the keyset: another node may still
	// wrap a new data key with it from its cache (up to cacheTTL) or commit
	// one after this scan. The next rotation re-wraps those and only then
	// deletes it; keys older than the previous primary go now.
	previous := oldH.KeysetInfo().GetPrimaryKeyId()
	retired := 0
	for _, info := range oldH.KeysetInfo().GetKeyInfo() {
		if id := info.GetKeyId(); id != previous {
			if err := mgr.Disable(id); err != nil {
				return res, err
			}
			if err := mgr.Delete(id); err != nil {
				return res, err
			}
			retired++
		}
	}
	newH, err := mgr.Handle()
	if err != nil {
		return res, err
	}
	newWrap, err := aead.New(newH)
	if err != nil {
		return res, err
	}
	page := store.Page{Limit: 500}
	for {
		batch, err := q.Keys().ListDataKeys(ctx, tenantID, page)
		if err != nil {
			return res, err
		}
		for _, dk := range batch {
			if dk.Wrapped == nil {
				continue
			}
			raw, err := oldWrap.Decrypt(dk.Wrapped, dataKeyAD(dk))
			if err != nil {
				// On PostgreSQL a rotation that committed after this one
				// read the keyset shows in the data keys read since.
				if cur, err := q.Keys().GetKeyset(ctx, tenantID); err == nil && !bytes.Equal(cur.AEADKeyset, old) {
					return res, v.changedMeanwhile(cur, previous)
				}
				return res, fmt.Errorf("keys: data key %s does not unwrap; rotation stopped, nothing changed: %w", dk.ID, ErrCorrupt)
			}
			wrapped, err := newWrap.Encrypt(raw, dataKeyAD(dk))
			if err != nil {
				return res, err
			}
			if err := q.Keys().Rewrap(ctx, tenantID, dk.ID, wrapped); err != nil {
				return res, err
			}
			res.DataKeys++
		}
		if progress != nil {
			progress(res.DataKeys)
		}
		if len(batch) < page.Limit {
			break
		}
		page.After = batch[len(batch)-1].ID
	}
	if k.AEADKeyset, err = writeKeyset(newH, v.master, tenantID, "aead"); err != nil {
		return res, err
	}
	// MasterKeyID below says both keysets are under the current master key:
	// a master-key rotation skips this keyset from now on.
	indexH, err := readKeyset(k.IndexKeyset, v.master, tenantID, "index")
	if err != nil {
		return res, err
	}
	if k.IndexKeyset, err = writeKeyset(indexH, v.master, tenantID, "index"); err != nil {
		return res, err
	}
	k.RotatedAt = v.now().UTC()
	k.MasterKeyID = v.master.KeyID()
	if swapped, err := q.Keys().SwapKeyset(ctx, old, k); err != nil {
		return res, err
	} else if !swapped {
		// Writing over it would orphan the data keys it re-wrapped: this
		// transaction rolls back instead.
		cur, err := q.Keys().GetKeyset(ctx, tenantID)
		if err != nil {
			return res, err
		}
		return res, v.changedMeanwhile(cur, previous)
	}
	v.Forget(tenantID)
	res.Keysets, res.NewKeyID, res.RetiredIDs = 1, newID, retired
	return res, nil
}

// RotationSpacing is the least time between two rotations of a tenant's
// keys: twice cacheTTL, so that every node has dropped the keyset it
// cached before the rotation after next deletes that keyset's primary.
const RotationSpacing = 2 * cacheTTL

// ErrRotatedRecently refuses a tenant rotation less than RotationSpacing
// after the last.
var ErrRotatedRecently = errors.New("keys: rotated too recently")

// ErrOvertaken: another rotation of the tenant's keys committed first;
// this one changed nothing, and need not be repeated.
var ErrOvertaken = fmt.Errorf("keys: rotated by another run meanwhile: %w", store.ErrConflict)

// changedMeanwhile explains a keyset that changed while a rotation ran:
// another rotation (its primary key is not the one the rotation read,
// primary), or a master-key rotation re-sealing the same keys, after which
// the rotation is simply run again.
func (v *Vault) changedMeanwhile(cur store.TenantKeyset, primary uint32) error {
	h, err := readKeyset(cur.AEADKeyset, v.master, cur.TenantID, "aead")
	switch {
	case err != nil:
		// Most likely re-sealed under a master key this host lacks.
		return fmt.Errorf("keys: tenant %s's keyset changed meanwhile and does not open with this host's master key(s); "+
			"nothing changed, run the rotation again with the current keys: %w", cur.TenantID, store.ErrConflict)
	case h.KeysetInfo().GetPrimaryKeyId() == primary:
		return fmt.Errorf("keys: tenant %s's keyset was re-sealed meanwhile (a master-key rotation); nothing changed, run the rotation again: %w",
			cur.TenantID, store.ErrConflict)
	}
	return fmt.Errorf("tenant %s: %w; this one changed nothing and need not be repeated", cur.TenantID, ErrOvertaken)
}

// MasterResealJob re-encrypts every tenant keyset that is not yet under
// the vault's master key; from is the keyring that can still open the old
// ones (the new key first, then the previous). Data keys are untouched.
// A keyset a tenant rotation replaced meanwhile is left as that wrote it.
func (v *Vault) MasterResealJob(from secrets.Sealer) store.ResealJob {
	return store.ResealJob{What: "tenant keysets", Page: func(ctx context.Context, q store.Queries, after string, limit int) (store.ResealPage, error) {
		var res store.ResealPage
		page, err := q.Keys().ListKeysets(ctx, store.Page{After: after, Limit: limit})
		if err != nil {
			return res, err
		}
		for _, k := range page {
			if k.MasterKeyID == v.master.KeyID() {
				continue
			}
			res.Found++
			old := k.AEADKeyset
			wrapH, err := readKeyset(k.AEADKeyset, from, k.TenantID, "aead")
			if err != nil {
				return res, err
			}
			indexH, err := readKeyset(k.IndexKeyset, from, k.TenantID, "index")
			if err != nil {
				return res, err
			}
			if k.AEADKeyset, err = writeKeyset(wrapH, v.master, k.TenantID, "aead"); err != nil {
				return res, err
			}
			if k.IndexKeyset, err = writeKeyset(indexH, v.master, k.TenantID, "index"); err != nil {
				return res, err
			}
			k.MasterKeyID = v.master.KeyID() // RotatedAt stays the keys' own rotation time
			swapped, err := q.Keys().SwapKeyset(ctx, old, k)
			if err != nil {
				return res, err
			}
			if swapped {
				v.Forget(k.TenantID)
				res.Written++
			}
		}
		if len(page) == limit {
			res.Next = page[len(page)-1].TenantID
		}
		return res, nil
	}}
}
