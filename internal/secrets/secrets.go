// Package secrets seals server-side secrets (TOTP seeds, the audit signing
// key) under the master key with AES-256-GCM. The master key never touches
// the database, so a stolen database dump holds no usable secret.
//
// The master key comes from STEWARD_MASTER_KEY (base64 of 32 bytes) or a
// file; every node sharing a PostgreSQL database must be given the same key.
package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the master key length: AES-256.
const KeySize = 32

const sealVersion byte = 1

// ErrOpen means a sealed value could not be opened: wrong master key,
// corrupted bytes, or a value moved to a place it was not sealed for.
var ErrOpen = errors.New("secrets: cannot open sealed value (wrong master key, corrupted, or bound to other data)")

// Sealer encrypts and authenticates small secrets. associatedData binds the
// ciphertext to its place (for example "totp:" + admin ID), so a sealed value
// copied to another row fails to open.
type Sealer interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
	// KeyID identifies the master key without revealing it.
	KeyID() string
}

type gcmSealer struct {
	aead  cipher.AEAD
	keyID [4]byte
}

// NewSealer returns a Sealer for a 32-byte master key.
func NewSealer(key []byte) (Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets: master key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &gcmSealer{aead: aead}
	sum := sha256.Sum256(append([]byte("steward-master-key-id:"), key...))
	copy(s.keyID[:], sum[:4])
	return s, nil
}

// Format: version(1) | keyID(4) | nonce(12) | ciphertext+tag.
func (s *gcmSealer) Seal(plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, 1+4+s.aead.NonceSize(), 1+4+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:5], s.keyID[:])
	if _, err := rand.Read(out[5 : 5+s.aead.NonceSize()]); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out[5:5+s.aead.NonceSize()], plaintext, s.header(out[:5], ad)), nil
}

func (s *gcmSealer) Open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+4+n+s.aead.Overhead() || sealed[0] != sealVersion || !bytes.Equal(sealed[1:5], s.keyID[:]) {
		return nil, ErrOpen
	}
	pt, err := s.aead.Open(nil, sealed[5:5+n], sealed[5+n:], s.header(sealed[:5], ad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// header authenticates the version and key ID along with the caller's data.
func (s *gcmSealer) header(prefix, ad []byte) []byte {
	h := make([]byte, 0, len(prefix)+len(ad))
	return append(append(h, prefix...), ad...)
}

func (s *gcmSealer) KeyID() string { return fmt.Sprintf("%x", s.keyID) }

// LoadMasterKey reads the key from envValue (base64) when set, else from
// path; when neither exists and create is true it generates a key at path
// with mode 0600. It refuses a key file others can read.
func LoadMasterKey(envValue, path string, create bool) ([]byte, error) {
	if envValue != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(envValue))
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("secrets: STEWARD_MASTER_KEY must be base64 of %d bytes", KeySize)
		}
		return key, nil
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		return createKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets: reading master key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets: master key file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("secrets: master key file %s must hold base64 of %d bytes", path, KeySize)
	}
	return key, nil
}

func createKeyFile(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("secrets: creating master key: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		return nil, err
	}
	return key, f.Sync()
}
