package secrets_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/steward-mdm/steward/internal/secrets"
)

// TestFromKMS plugs a Tink AEAD, the interface Tink's cloud KMS clients
// return, in as the master key.
func TestFromKMS(t *testing.T) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	s := secrets.FromKMS(a, "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/steward")
	sealed, err := s.Seal([]byte("tenant keyset"), []byte("tenant-1"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := s.Open(sealed, []byte("tenant-1")); err != nil || !bytes.Equal(pt, []byte("tenant keyset")) {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := s.Open(sealed, []byte("tenant-2")); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("opened with other associated data: %v", err)
	}
	if s.KeyID() == secrets.FromKMS(a, "other-key").KeyID() {
		t.Error("two key URIs share a key ID")
	}
}
