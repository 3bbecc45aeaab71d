package secrets

import (
	"crypto/sha256"
	"fmt"
)

// KMS is the master key held by a key management service: the key never
// leaves it, Steward only asks it to encrypt and decrypt small values (the
// tenant keysets). Tink's KMS clients (registry.KMSClient.GetAEAD for AWS
// KMS, Google Cloud KMS, HashiCorp Vault) return exactly this.
type KMS interface {
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

type kmsSealer struct {
	kms   KMS
	keyID string
}

// FromKMS returns a Sealer whose master key lives in a KMS; keyURI names the
// key (it is not secret) and gives the Sealer its key ID.
func FromKMS(kms KMS, keyURI string) Sealer {
	sum := sha256.Sum256([]byte("steward-kms-key:" + keyURI))
	return &kmsSealer{kms: kms, keyID: fmt.Sprintf("%x", sum[:4])}
}

func (k *kmsSealer) Seal(plaintext, ad []byte) ([]byte, error) {
	ct, err := k.kms.Encrypt(plaintext, ad)
	if err != nil {
		return nil, fmt.Errorf("secrets: the KMS refused to encrypt: %w", err)
	}
	return ct, nil
}

func (k *kmsSealer) Open(sealed, ad []byte) ([]byte, error) {
	pt, err := k.kms.Decrypt(sealed, ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

func (k *kmsSealer) KeyID() string { return k.keyID }
