package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpenRoundTripAndTamper(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := s.Seal([]byte("totp secret"), []byte("totp:admin-1"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := s.Open(ct, []byte("totp:admin-1"))
	if err != nil || string(pt) != "totp secret" {
		t.Fatalf("open: %q %v", pt, err)
	}
	// Bound to its associated data: a secret moved to another admin fails.
	if _, err := s.Open(ct, []byte("totp:admin-2")); !errors.Is(err, ErrOpen) {
		t.Fatalf("wrong AD: %v", err)
	}
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 1
		if _, err := s.Open(bad, []byte("totp:admin-1")); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, KeySize))
	if _, err := other.Open(ct, []byte("totp:admin-1")); err == nil {
		t.Fatal("another key opened the secret")
	}
	if _, err := s.Open(nil, nil); err == nil {
		t.Fatal("empty ciphertext opened")
	}
}

func TestLoadMasterKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "master.key")
	k1, err := LoadMasterKey("", path, true)
	if err != nil || len(k1) != KeySize {
		t.Fatalf("create: %v", err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode().Perm())
	}
	k2, err := LoadMasterKey("", path, false)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: %v", err)
	}
	_ = os.Chmod(path, 0o644)
	if _, err := LoadMasterKey("", path, false); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}
	env := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, KeySize))
	if k, err := LoadMasterKey(env, path, false); err != nil || k[0] != 1 {
		t.Fatalf("env key: %v", err)
	}
	if _, err := LoadMasterKey("c2hvcnQ=", path, false); err == nil {
		t.Fatal("a short env key was accepted")
	}
	if _, err := LoadMasterKey("", filepath.Join(dir, "missing"), false); err == nil {
		t.Fatal("a missing key file was accepted")
	}
}
