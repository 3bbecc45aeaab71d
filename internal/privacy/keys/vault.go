// Package keys is Steward's key vault: envelope encryption in three layers.
//
//	master key (file, environment or KMS; never in the database)
//	  └─ wraps each tenant's keysets (Tink: AES-256-GCM for wrapping, HMAC-SHA256 PRF for blind indexes)
//	       └─ wraps one data key per owner: a person, or a device
//	            └─ encrypts personal field values (AES-256-GCM)
//
// Erasing an owner destroys their data key. The vault tables are never
// written to backups, so every copy of that owner's data, in the database
// and in every backup, becomes unreadable at once.
package keys

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/subtle"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

var (
	// ErrKeyDestroyed means the owner was erased: the data is gone by design.
	ErrKeyDestroyed = errors.New("keys: the data key was destroyed (the data was erased)")
	// ErrKeyMissing means no key exists for this ciphertext here, e.g. a
	// backup restored on an installation whose vault never held the key.
	ErrKeyMissing = errors.New("keys: no data key for this value in the vault")
	// ErrCorrupt means the ciphertext fails authentication: altered, or moved
	// to a row it was not written for.
	ErrCorrupt = errors.New("keys: ciphertext failed authentication (corrupted or moved)")
)

// Vault encrypts and decrypts personal values. It is safe for concurrent use
// and shared by every request; tenant keysets are cached briefly.
type Vault struct {
	master secrets.Sealer
	now    func() time.Time

	mu      sync.Mutex
	tenants map[string]*tenantKeys
}

type tenantKeys struct {
	wrap     tink.AEAD
	index    *prf.Set
	loadedAt time.Time
}

// cacheTTL bounds how long a node keeps a rotated-away keyset.
const cacheTTL = time.Minute

// New returns a vault whose tenant keysets are wrapped by master.
func New(master secrets.Sealer) *Vault {
	return &Vault{master: master, now: time.Now, tenants: map[string]*tenantKeys{}}
}

// masterAEAD adapts the master Sealer to the interface Tink expects.
type masterAEAD struct{ s secrets.Sealer }

func (m masterAEAD) Encrypt(pt, ad []byte) ([]byte, error) { return m.s.Seal(pt, ad) }
func (m masterAEAD) Decrypt(ct, ad []byte) ([]byte, error) { return m.s.Open(ct, ad) }

func keysetAD(tenantID, purpose string) []byte {
	return []byte("steward/tenant-keyset/v1|" + tenantID + "|" + purpose)
}

func writeKeyset(h *keyset.Handle, master secrets.Sealer, tenantID, purpose string) ([]byte, error) {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), masterAEAD{master}, keysetAD(tenantID, purpose)); err != nil {
		return nil, fmt.Errorf("keys: encrypting %s keyset: %w", purpose, err)
	}
	return buf.Bytes(), nil
}

func readKeyset(b []byte, master secrets.Sealer, tenantID, purpose string) (*keyset.Handle, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(b)), masterAEAD{master}, keysetAD(tenantID, purpose))
	if err != nil {
		return nil, fmt.Errorf("keys: the tenant's %s keyset does not open with this master key: %w", purpose, err)
	}
	return h, nil
}

// NewTenantKeyset generates fresh keysets for a tenant.
func (v *Vault) NewTenantKeyset(tenantID string, now time.Time) (store.TenantKeyset, error) {
	wrapH, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return store.TenantKeyset{}, err
	}
	indexH, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return store.TenantKeyset{}, err
	}
	k := store.TenantKeyset{TenantID: tenantID, MasterKeyID: v.master.KeyID(), CreatedAt: now, RotatedAt: now}
	if k.AEADKeyset, err = writeKeyset(wrapH, v.master, tenantID, "aead"); err != nil {
		return k, err
	}
	k.IndexKeyset, err = writeKeyset(indexH, v.master, tenantID, "index")
	return k, err
}

// tenant returns the tenant's keys, creating the keysets on first use.
func (v *Vault) tenant(ctx context.Context, q store.Queries, tenantID string) (*tenantKeys, error) {
	v.mu.Lock()
	tk, ok := v.tenants[tenantID]
	v.mu.Unlock()
	if ok && v.now().Sub(tk.loadedAt) < cacheTTL {
		return tk, nil
	}
	k, err := q.Keys().GetKeyset(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) {
		if k, err = v.NewTenantKeyset(tenantID, v.now().UTC()); err != nil {
			return nil, err
		}
		created, err := q.Keys().CreateKeyset(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("keys: storing tenant keyset: %w", err)
		}
		if !created { // another node won the race: use theirs
			if k, err = q.Keys().GetKeyset(ctx, tenantID); err != nil {
				return nil, err
			}
		}
	} else if err != nil {
		return nil, fmt.Errorf("keys: reading tenant keyset: %w", err)
	}
	return v.load(k)
}

func (v *Vault) load(k store.TenantKeyset) (*tenantKeys, error) {
	wrapH, err := readKeyset(k.AEADKeyset, v.master, k.TenantID, "aead")
	if err != nil {
		return nil, err
	}
	indexH, err := readKeyset(k.IndexKeyset, v.master, k.TenantID, "index")
	if err != nil {
		return nil, err
	}
	wrap, err := aead.New(wrapH)
	if err != nil {
		return nil, err
	}
	index, err := prf.NewPRFSet(indexH)
	if err != nil {
		return nil, err
	}
	tk := &tenantKeys{wrap: wrap, index: index, loadedAt: v.now()}
	v.mu.Lock()
	v.tenants[k.TenantID] = tk
	v.mu.Unlock()
	return tk, nil
}

// Forget drops a cached tenant so the next use reloads it; after the
// tenant's deletion, its keys leave memory too.
func (v *Vault) Forget(tenantID string) {
	v.mu.Lock()
	delete(v.tenants, tenantID)
	v.mu.Unlock()
}

func dataKeyAD(k store.DataKey) []byte {
	return []byte("steward/data-key/v1|" + k.TenantID + "|" + k.ID + "|" + k.Owner)
}

// SubjectOwner and DeviceOwner name a data key's owner.
func SubjectOwner(id string) string { return "subject:" + id }
func DeviceOwner(id string) string  { return "device:" + id }

// DeviceSecretsOwner names the key of the credentials a device hands the
// organisation to keep (a Mac's Bootstrap Token, an UnlockToken). They are
// about the device, not its person: the key has no subject, outlives a
// person's erasure, and is destroyed when the device leaves or its record
// starts over.
func DeviceSecretsOwner(id string) string { return "device-secrets:" + id }

// EnsureDataKey returns the ID of owner's data key, creating it. subjectID
// is the person the key's data is about ("" for an unassigned device).
func (v *Vault) EnsureDataKey(ctx context.Context, q store.Queries, tenantID, owner, subjectID string) (string, error) {
	k, err := v.ensureDataKey(ctx, q, tenantID, owner, subjectID)
	return k.ID, err
}

func (v *Vault) ensureDataKey(ctx context.Context, q store.Queries, tenantID, owner, subjectID string) (store.DataKey, error) {
	k, err := q.Keys().DataKeyByOwner(ctx, tenantID, owner)
	if err == nil && k.DestroyedAt.IsZero() {
		if k.SubjectID != subjectID {
			if err := q.Keys().SetKeySubject(ctx, tenantID, k.ID, subjectID); err != nil {
				return store.DataKey{}, err
			}
		}
		return k, nil
	}
	// No key, or only a destroyed one (the owner's earlier data was erased):
	// new data gets a new key.
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.DataKey{}, err
	}
	tk, err := v.tenant(ctx, q, tenantID)
	if err != nil {
		return store.DataKey{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return store.DataKey{}, err
	}
	k = store.DataKey{ID: store.NewID(), TenantID: tenantID, Owner: owner, SubjectID: subjectID, CreatedAt: v.now().UTC()}
	if k.Wrapped, err = tk.wrap.Encrypt(raw, dataKeyAD(k)); err != nil {
		return store.DataKey{}, err
	}
	created, err := q.Keys().CreateDataKey(ctx, k)
	if err != nil {
		return store.DataKey{}, err
	}
	if !created {
		return q.Keys().DataKeyByOwner(ctx, tenantID, owner)
	}
	return k, nil
}

// FieldContext binds a ciphertext to its place: tenant, data key, the row it
// belongs to (a device or a person) and the catalogue field.
type FieldContext struct {
	TenantID string
	KeyID    string
	Row      string
	Field    string
}

func (f FieldContext) ad() []byte {
	return []byte("steward/field/v1|" + f.TenantID + "|" + f.KeyID + "|" + f.Row + "|" + f.Field)
}

// DataKeys unwraps data keys for one operation; reuse it for the values of
// one request so each key is unwrapped once.
type DataKeys struct {
	v    *Vault
	q    store.Queries
	ctx  context.Context
	keys map[string]*dataKey
	errs map[string]error
}

// dataKey is an unwrapped data key: the AEAD for values and a MAC key,
// derived from it, for digests that die with it.
type dataKey struct {
	aead   *subtle.AESGCM
	macKey []byte
}

// Session returns a DataKeys bound to q.
func (v *Vault) Session(ctx context.Context, q store.Queries) *DataKeys {
	return &DataKeys{v: v, q: q, ctx: ctx, keys: map[string]*dataKey{}, errs: map[string]error{}}
}

func (d *DataKeys) key(tenantID, keyID string) (*dataKey, error) {
	if c, ok := d.keys[keyID]; ok {
		return c, nil
	}
	if err, ok := d.errs[keyID]; ok {
		return nil, err
	}
	c, err := d.unwrap(tenantID, keyID)
	if err != nil {
		d.errs[keyID] = err
		return nil, err
	}
	d.keys[keyID] = c
	return c, nil
}

// EnsureDataKey is Vault.EnsureDataKey that also keeps the key, unwrapped,
// for this session: the row it has just read need not be read again.
func (d *DataKeys) EnsureDataKey(tenantID, owner, subjectID string) (string, error) {
	k, err := d.v.ensureDataKey(d.ctx, d.q, tenantID, owner, subjectID)
	if err != nil {
		return "", err
	}
	if _, ok := d.keys[k.ID]; !ok {
		c, err := d.open(k)
		if err != nil {
			return "", err
		}
		d.keys[k.ID] = c
	}
	return k.ID, nil
}

func (d *DataKeys) unwrap(tenantID, keyID string) (*dataKey, error) {
	k, err := d.q.Keys().GetDataKey(d.ctx, tenantID, keyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrKeyMissing
	}
	if err != nil {
		return nil, err
	}
	return d.open(k)
}

// open unwraps a data key row read in this session's transaction.
func (d *DataKeys) open(k store.DataKey) (*dataKey, error) {
	if !k.DestroyedAt.IsZero() || k.Wrapped == nil {
		return nil, ErrKeyDestroyed
	}
	tk, err := d.v.tenant(d.ctx, d.q, k.TenantID)
	if err != nil {
		return nil, err
	}
	raw, err := tk.wrap.Decrypt(k.Wrapped, dataKeyAD(k))
	if err != nil {
		// A rotation on another node may be newer than our cache: reload once.
		d.v.Forget(k.TenantID)
		if tk, err = d.v.tenant(d.ctx, d.q, k.TenantID); err != nil {
			return nil, err
		}
		if raw, err = tk.wrap.Decrypt(k.Wrapped, dataKeyAD(k)); err != nil {
			return nil, fmt.Errorf("keys: data key %s does not unwrap: %w", k.ID, ErrCorrupt)
		}
	}
	c, err := subtle.NewAESGCM(raw)
	if err != nil {
		return nil, err
	}
	mac, err := hkdf.Key(sha256.New, raw, nil, "steward/value-digest/v1", 32)
	if err != nil {
		return nil, err
	}
	return &dataKey{aead: c, macKey: mac}, nil
}

// Encrypt seals plaintext for f.
func (d *DataKeys) Encrypt(f FieldContext, plaintext []byte) ([]byte, error) {
	c, err := d.key(f.TenantID, f.KeyID)
	if err != nil {
		return nil, err
	}
	return c.aead.Encrypt(plaintext, f.ad())
}

// Decrypt opens a ciphertext written for f; ErrKeyDestroyed, ErrKeyMissing
// or ErrCorrupt say why it cannot, never garbage.
func (d *DataKeys) Decrypt(f FieldContext, ciphertext []byte) ([]byte, error) {
	c, err := d.key(f.TenantID, f.KeyID)
	if err != nil {
		return nil, err
	}
	pt, err := c.aead.Decrypt(ciphertext, f.ad())
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// BlindIndex returns a keyed index of a normalised searchable value: equal
// values give equal indexes within a tenant and field, and nothing else can
// be learned without the tenant's index key.
func (v *Vault) BlindIndex(ctx context.Context, q store.Queries, tenantID, field, normalised string) ([]byte, error) {
	tk, err := v.tenant(ctx, q, tenantID)
	if err != nil {
		return nil, err
	}
	return tk.index.ComputePrimaryPRF([]byte("steward/index/v1|"+field+"|"+normalised), 32)
}

// Digest returns a digest of a personal value keyed by its data key, so
// the gate can tell an unchanged value without decrypting the stored one;
// destroying the key makes the digest as useless as the ciphertext.
func (d *DataKeys) Digest(f FieldContext, value []byte) ([]byte, error) {
	c, err := d.key(f.TenantID, f.KeyID)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, c.macKey)
	m.Write(f.ad())
	m.Write([]byte{0})
	m.Write(value)
	return m.Sum(nil)[:16], nil
}

// Destroy crypto-shreds a data key, for why (store.DataKey.DestroyedFor).
func (v *Vault) Destroy(ctx context.Context, q store.Queries, tenantID, keyID, why string) error {
	return q.Keys().Destroy(ctx, tenantID, keyID, v.now().UTC(), why)
}

// SetClock replaces the clock (tests).
func (v *Vault) SetClock(now func() time.Time) { v.now = now }
