package scep

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
)

// Keys smallstep's client helpers cannot put in a SCEP message are checked
// here directly; the HTTP tests cover RSA and EC end to end.
func TestCheckPublicKey(t *testing.T) {
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  any
		ok   bool
	}{
		{"RSA 2048", rsaKey(t, 2048).Public(), true},
		{"RSA 1024", rsaKey(t, 1024).Public(), false},
		{"EC P-256", p256.Public(), true},
		{"EC P-384", p384.Public(), true},
		{"EC P-521", p521.Public(), false},
		{"Ed25519", edPub, false},
		{"nil", nil, false},
	}
	for _, tc := range tests {
		err := checkPublicKey(tc.pub)
		var refused *RefusalError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s refused: %v", tc.name, err)
		case !tc.ok && (!errors.As(err, &refused) || refused.FailInfo != failBadRequest):
			t.Errorf("%s: got %v, want a badRequest refusal", tc.name, err)
		}
	}
}
