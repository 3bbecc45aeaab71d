package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// signingKeySetting is the Settings key of the sealed signing key seed.
const signingKeySetting = "audit.signing_key"

// signingKeyAD binds the sealed seed to its purpose: the same ciphertext
// copied into another setting does not open there.
var signingKeyAD = []byte("audit-signing-key")

// Signer signs checkpoints with the install's ed25519 audit key.
type Signer struct {
	priv  ed25519.PrivateKey
	pub   ed25519.PublicKey
	keyID string
}

// LoadOrCreateSigner opens the install's signing key, creating it on first
// start. Several nodes may start at once: PutIfAbsent lets one win and the
// others load the winner's key, so every node signs with the same key.
func LoadOrCreateSigner(ctx context.Context, st store.Store, sealer secrets.Sealer) (*Signer, error) {
	var sealed []byte
	// One Tx reads back what it or the winner wrote; the retry covers an
	// engine whose snapshot predates the winner's commit.
	for attempt := 0; attempt < 3 && sealed == nil; attempt++ {
		err := st.Tx(ctx, func(q store.Queries) error {
			var err error
			sealed, err = loadOrStoreSealedKey(ctx, q.Settings(), sealer)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if sealed == nil {
		return nil, errors.New("audit: signing key was neither found nor stored; retry the start")
	}
	seed, err := sealer.Open(sealed, signingKeyAD)
	if err != nil {
		return nil, fmt.Errorf("audit: opening signing key (is this node given the same master key as the others?): %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: stored signing key has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return newSigner(seed), nil
}

// loadOrStoreSealedKey returns the sealed seed, storing a new one if there is
// none; nil without error when another node's key is not visible yet.
func loadOrStoreSealedKey(ctx context.Context, settings store.SettingStore, sealer secrets.Sealer) ([]byte, error) {
	sealed, err := settings.Get(ctx, signingKeySetting)
	if err == nil {
		return sealed, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("audit: loading signing key: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("audit: generating signing key: %w", err)
	}
	fresh, err := sealer.Seal(seed, signingKeyAD)
	if err != nil {
		return nil, fmt.Errorf("audit: sealing signing key: %w", err)
	}
	stored, err := settings.PutIfAbsent(ctx, signingKeySetting, fresh)
	if err != nil {
		return nil, fmt.Errorf("audit: storing signing key: %w", err)
	}
	if stored {
		return fresh, nil
	}
	sealed, err = settings.Get(ctx, signingKeySetting)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: loading signing key: %w", err)
	}
	return sealed, nil
}

// NewSignerFromSeed builds a signer from a 32-byte ed25519 seed; for tests
// and tools that hold a key outside the store.
func NewSignerFromSeed(seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: ed25519 seed must be %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	return newSigner(seed), nil
}

func newSigner(seed []byte) *Signer {
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	return &Signer{priv: priv, pub: pub, keyID: KeyIDOf(pub)}
}

// PublicKey returns the key that verifies this signer's checkpoints.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.pub }

// KeyID names the key: hex of the first 8 bytes of SHA-256 of the raw key.
func (s *Signer) KeyID() string { return s.keyID }

// PublicKeyPEM returns the public key as a PKIX "PUBLIC KEY" PEM block, the
// form to hand to auditors.
func (s *Signer) PublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(s.pub)
	if err != nil {
		panic("audit: marshalling an ed25519 public key cannot fail: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// KeyIDOf returns the key ID of any ed25519 public key.
func KeyIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ParsePublicKeyPEM reads a PKIX "PUBLIC KEY" PEM block holding an ed25519 key.
func ParsePublicKeyPEM(b []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("audit: no PEM \"PUBLIC KEY\" block found")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: parsing public key: %w", err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit: public key is %T, want ed25519", key)
	}
	return pub, nil
}

// signCheckpoint fills in KeyID and Signature of c.
func (s *Signer) signCheckpoint(c store.Checkpoint) store.Checkpoint {
	c.KeyID = s.keyID
	c.Signature = ed25519.Sign(s.priv, CheckpointMessage(c))
	return c
}

// VerifyCheckpoint reports whether c carries a valid signature by pub.
func VerifyCheckpoint(pub ed25519.PublicKey, c store.Checkpoint) bool {
	if len(pub) != ed25519.PublicKeySize || len(c.Signature) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, CheckpointMessage(c), c.Signature)
}

// Domain separation: a document signature can never pass as a checkpoint
// signature, or the reverse.
const documentContext = "steward/signed-document/v1\n"

// SignDocument signs a document of the given kind (e.g. a deletion
// certificate) with the audit key; verify with VerifyDocument.
func (s *Signer) SignDocument(kind string, doc []byte) []byte {
	return ed25519.Sign(s.priv, documentMessage(kind, doc))
}

// VerifyDocument checks a SignDocument signature with the audit public key.
func VerifyDocument(pub ed25519.PublicKey, kind string, doc, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, documentMessage(kind, doc), sig)
}

func documentMessage(kind string, doc []byte) []byte {
	m := make([]byte, 0, len(documentContext)+len(kind)+1+len(doc))
	m = append(m, documentContext...)
	m = append(m, kind...)
	m = append(m, '\n')
	return append(m, doc...)
}

// ResealSigningKey re-seals the stored signing key under sealer's current
// master key (a master-key rotation). found says it was under another key,
// swapped that it is re-sealed now: a compare-and-swap, like every write
// of a rotation, so a key written meanwhile is left as it is.
func ResealSigningKey(ctx context.Context, q store.Queries, sealer secrets.Sealer) (found, swapped bool, err error) {
	sealed, err := q.Settings().Get(ctx, signingKeySetting)
	if errors.Is(err, store.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	if secrets.SealedBy(sealed) == sealer.KeyID() {
		return false, false, nil
	}
	seed, err := sealer.Open(sealed, signingKeyAD)
	if err != nil {
		return true, false, fmt.Errorf("audit: the signing key does not open with the current or previous master key: %w", err)
	}
	fresh, err := sealer.Seal(seed, signingKeyAD)
	if err != nil {
		return true, false, err
	}
	swapped, err = q.Settings().Swap(ctx, signingKeySetting, sealed, fresh)
	return true, swapped, err
}
