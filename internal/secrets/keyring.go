package secrets

import "fmt"

// keyring seals with its first key and opens with whichever key sealed the
// value, so a master key can be replaced while nodes still read values
// sealed under the previous one.
type keyring struct {
	primary Sealer
	all     []Sealer
}

// NewKeyring returns a Sealer over primary and any previous master keys.
func NewKeyring(primary []byte, previous ...[]byte) (Sealer, error) {
	p, err := NewSealer(primary)
	if err != nil {
		return nil, err
	}
	kr := &keyring{primary: p, all: []Sealer{p}}
	for i, key := range previous {
		s, err := NewSealer(key)
		if err != nil {
			return nil, fmt.Errorf("secrets: previous master key %d: %w", i+1, err)
		}
		kr.all = append(kr.all, s)
	}
	return kr, nil
}

func (k *keyring) Seal(plaintext, ad []byte) ([]byte, error) { return k.primary.Seal(plaintext, ad) }

func (k *keyring) Open(sealed, ad []byte) ([]byte, error) {
	for _, s := range k.all {
		if pt, err := s.Open(sealed, ad); err == nil {
			return pt, nil
		}
	}
	return nil, ErrOpen
}

func (k *keyring) KeyID() string { return k.primary.KeyID() }

// SealedBy reports the key ID a sealed value names (empty if malformed).
func SealedBy(sealed []byte) string {
	if len(sealed) < 5 || sealed[0] != sealVersion {
		return ""
	}
	return fmt.Sprintf("%x", sealed[1:5])
}

// Reseal opens sealed, bound to ad, with s (a keyring holding the key it was
// sealed under) and seals it again under s's current key.
func Reseal(s Sealer, sealed, ad []byte) ([]byte, error) {
	plain, err := s.Open(sealed, ad)
	if err != nil {
		return nil, err
	}
	return s.Seal(plain, ad)
}
