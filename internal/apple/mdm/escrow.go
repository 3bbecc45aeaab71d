package mdm

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"

	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
)

// An escrowedToken is a credential a device hands Steward to keep: a Mac's
// Bootstrap Token (SetBootstrapToken) unlocks its SecureToken, an iPhone's
// or iPad's UnlockToken (TokenUpdate) clears its passcode. Each is
// encrypted in the privacy vault with its device's secrets key
// (keys.DeviceSecretsOwner), so that destroying the key (the device's
// departure, its record started over, the tenant's deletion) leaves every
// copy unreadable, backups included. The erasure of the device's person
// keeps it: the organisation's Mac still needs its Bootstrap Token.
//
// The format: vaultEscrow, then the ciphertext. The key is the device's
// one secrets key, found by its owner, so its ID is not stored: the value
// sits in the channel row every check-in reads, which is kept small.
// Tokens escrowed before were sealed under the master key alone, bound to
// legacyAD and the device's ID; such a value starts with the master
// sealer's version byte (1) or is a KMS's ciphertext, never with
// vaultEscrow's NUL and tag, which tell the two apart. It is still read,
// is moved into the vault at its next use (GetBootstrapToken,
// TokenUpdate), and until then a master-key rotation re-seals it
// (ResealJobs).
type escrowedToken struct {
	field    string // the vault field its ciphertext is bound to
	legacyAD string // a master-sealed one's associated data, before the device ID
}

var (
	bootstrapToken = escrowedToken{field: "apple.bootstrap_token", legacyAD: "bootstrap:"}
	unlockToken    = escrowedToken{field: "apple.unlock_token", legacyAD: "unlock:"}
)

const vaultEscrow = "\x00es\x02"

// inVault reports a token escrowed under its device's secrets key.
func inVault(escrowed []byte) bool { return bytes.HasPrefix(escrowed, []byte(vaultEscrow)) }

func (t escrowedToken) masterAD(deviceID string) []byte { return []byte(t.legacyAD + deviceID) }

func (t escrowedToken) in(tenantID, keyID, deviceID string) keys.FieldContext {
	return keys.FieldContext{TenantID: tenantID, KeyID: keyID, Row: deviceID, Field: t.field}
}

// escrow encrypts token, of kind t, with device d's secrets key.
func (s *Service) escrow(ctx context.Context, q store.Queries, d store.Device, t escrowedToken, token []byte) ([]byte, error) {
	dk := s.priv.Vault().Session(ctx, q)
	keyID, err := dk.EnsureDataKey(d.TenantID, keys.DeviceSecretsOwner(d.ID), "")
	if err != nil {
		return nil, err
	}
	ct, err := dk.Encrypt(t.in(d.TenantID, keyID, d.ID), token)
	if err != nil {
		return nil, err
	}
	return append([]byte(vaultEscrow), ct...), nil
}

// openEscrowed opens a token of kind t escrowed for a device, in either
// format; escrowGone tells a token erased with its key.
func (s *Service) openEscrowed(ctx context.Context, q store.Queries, tenantID, deviceID string, t escrowedToken, escrowed []byte) ([]byte, error) {
	ct, ok := bytes.CutPrefix(escrowed, []byte(vaultEscrow))
	if !ok {
		return s.sealer.Open(escrowed, t.masterAD(deviceID))
	}
	k, err := q.Keys().DataKeyByOwner(ctx, tenantID, keys.DeviceSecretsOwner(deviceID))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, keys.ErrKeyMissing
	case err != nil:
		return nil, err
	case !k.DestroyedAt.IsZero():
		return nil, keys.ErrKeyDestroyed
	}
	// A value under an earlier key of the device, destroyed since and
	// replaced (a backup's, restored), fails here as corrupt.
	return s.priv.Vault().Session(ctx, q).Decrypt(t.in(tenantID, k.ID, deviceID), ct)
}

// escrowedEquals reports whether escrowed, a token of kind t kept for a
// device (nil: none), opens to token. One that does not open (erased with
// its key, corrupt) is not token: keeping token then is keeping it anew.
func (s *Service) escrowedEquals(ctx context.Context, q store.Queries, tenantID, deviceID string, t escrowedToken, escrowed, token []byte) bool {
	if escrowed == nil {
		return false
	}
	kept, err := s.openEscrowed(ctx, q, tenantID, deviceID, t, escrowed)
	return err == nil && subtle.ConstantTimeCompare(kept, token) == 1
}

// escrowGone reports a token that can no longer be opened, by design: its
// key was destroyed (its device left, or its record started over), or
// never reached this vault (a restored backup's).
func escrowGone(err error) bool {
	return errors.Is(err, keys.ErrKeyDestroyed) || errors.Is(err, keys.ErrKeyMissing)
}

// forgetEscrowKey destroys device deviceID's secrets key, with its tokens
// in every copy, when the device leaves (why: store.KeyDestroyedForDeparture)
// or its record starts over for another device ("").
func (s *Service) forgetEscrowKey(ctx context.Context, q store.Queries, tenantID, deviceID, why string) error {
	k, err := q.Keys().DataKeyByOwner(ctx, tenantID, keys.DeviceSecretsOwner(deviceID))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !k.DestroyedAt.IsZero()) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.priv.Vault().Destroy(ctx, q, tenantID, k.ID, why)
}
