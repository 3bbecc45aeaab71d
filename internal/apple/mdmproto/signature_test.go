package mdmproto

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestVerifyMdmSignature(t *testing.T) {
	pki := newTestPKI(t)
	rsaKey, ecKey := newRSAKey(t), newECKey(t)
	rsaLeaf := pki.leaf(t, rsaKey, x509.ExtKeyUsageClientAuth)
	ecLeaf := pki.leaf(t, ecKey, x509.ExtKeyUsageClientAuth)
	body := tokenUpdateDevice

	// Devices include the chain up to, not including, the root.
	withChain, err := signCMS(body, rsaLeaf, rsaKey, []*x509.Certificate{pki.intermediate}, true)
	if err != nil {
		t.Fatal(err)
	}
	header := base64.StdEncoding.EncodeToString(withChain)
	signer, err := VerifyMdmSignature(header, body, pki.roots, testNow)
	if err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	if !signer.Equal(rsaLeaf) {
		t.Error("returned certificate is not the signer")
	}

	// SignMdmMessage (the simulator's helper) carries only the leaf, so the
	// verifier needs the intermediate among its roots.
	ecHeader, err := SignMdmMessage(body, ecLeaf, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	withIntermediate := x509.NewCertPool()
	withIntermediate.AddCert(pki.intermediate)
	if signer, err := VerifyMdmSignature(ecHeader, body, withIntermediate, testNow); err != nil || !signer.Equal(ecLeaf) {
		t.Fatalf("SignMdmMessage output rejected: %v", err)
	}

	changed := append([]byte(nil), body...)
	changed[len(changed)-20] ^= 1
	otherPKI := newTestPKI(t)
	serverOnlyKey := newECKey(t)
	serverOnly, _ := SignMdmMessage(body, pki.leaf(t, serverOnlyKey, x509.ExtKeyUsageServerAuth), serverOnlyKey)
	foreignCMS, _ := signCMS(body, rsaLeaf, rsaKey, nil, false)
	tests := []struct {
		name   string
		header string
		body   []byte
		roots  *x509.CertPool
		now    time.Time
		want   error
	}{
		{"missing header", "", body, pki.roots, testNow, ErrSignatureMissing},
		{"blank header", "  ", body, pki.roots, testNow, ErrSignatureMissing},
		{"not base64", "%%%not-base64%%%", body, pki.roots, testNow, ErrSignatureMalformed},
		{"base64 of garbage", base64.StdEncoding.EncodeToString([]byte("not a cms structure")), body, pki.roots, testNow, ErrSignatureMalformed},
		{"oversized header", string(make([]byte, MaxSignatureHeaderBytes+1)), body, pki.roots, testNow, ErrSignatureMalformed},
		{"body changed", header, changed, pki.roots, testNow, ErrSignatureInvalid},
		{"empty body", header, nil, pki.roots, testNow, ErrSignatureInvalid},
		{"unknown root", header, body, otherPKI.roots, testNow, ErrSignerUntrusted},
		{"no roots", header, body, nil, testNow, ErrSignerUntrusted},
		{"expired signer", header, body, pki.roots, testNow.Add(48 * time.Hour), ErrSignerUntrusted},
		{"not yet valid signer", header, body, pki.roots, testNow.Add(-48 * time.Hour), ErrSignerUntrusted},
		{"server-auth certificate", serverOnly, body, withIntermediate, testNow, ErrSignerUntrusted},
		// An attached-content CMS is judged against the body received, not its own content.
		{"attached content, other body", base64.StdEncoding.EncodeToString(foreignCMS), changed, pki.roots, testNow, ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signer, err := VerifyMdmSignature(tt.header, tt.body, tt.roots, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if signer != nil {
				t.Error("signer returned with an error")
			}
		})
	}
}

func TestSignMdmMessageNeedsSigner(t *testing.T) {
	if _, err := SignMdmMessage([]byte("x"), nil, nil); err == nil {
		t.Fatal("signing without certificate and key succeeded")
	}
}

func TestChainCacheSkipsOnlyTheChainWalk(t *testing.T) {
	pki := newTestPKI(t)
	key := newECKey(t)
	leaf := pki.leaf(t, key, x509.ExtKeyUsageClientAuth)
	body := tokenUpdateDevice
	der, err := signCMS(body, leaf, key, []*x509.Certificate{pki.intermediate}, true)
	if err != nil {
		t.Fatal(err)
	}
	header := base64.StdEncoding.EncodeToString(der)
	cache := &ChainCache{}
	if _, err := VerifyMdmSignatureCached(header, body, pki.roots, testNow, cache); err != nil {
		t.Fatal(err)
	}
	// Cached: a body changed after signing still fails.
	if _, err := VerifyMdmSignatureCached(header, append([]byte(nil), append(body, ' ')...), pki.roots, testNow, cache); !errors.Is(err, ErrSignatureInvalid) {
		t.Errorf("changed body with a cached signer: %v", err)
	}
	// Cached: past the certificate's expiry the chain is walked again, and fails.
	if _, err := VerifyMdmSignatureCached(header, body, pki.roots, leaf.NotAfter.Add(time.Hour), cache); !errors.Is(err, ErrSignerUntrusted) {
		t.Errorf("expired signer with a cache: %v", err)
	}
	// Another PKI's signer is never served from this cache.
	other := newTestPKI(t)
	okey := newECKey(t)
	oleaf := other.leaf(t, okey, x509.ExtKeyUsageClientAuth)
	oder, _ := signCMS(body, oleaf, okey, []*x509.Certificate{other.intermediate}, true)
	if _, err := VerifyMdmSignatureCached(base64.StdEncoding.EncodeToString(oder), body, pki.roots, testNow, cache); !errors.Is(err, ErrSignerUntrusted) {
		t.Errorf("a foreign signer: %v", err)
	}
}

// TestChainCacheForgetsExpiredCertificates: renewals leave expired
// certificates behind; the cache forgets them as it fills, and keeps the
// valid ones.
func TestChainCacheForgetsExpiredCertificates(t *testing.T) {
	var cache ChainCache
	count := func() (n int) {
		cache.m.Range(func(any, any) bool { n++; return true })
		return n
	}
	for i := range chainCacheSweepEvery - 1 {
		cache.remember(&x509.Certificate{Raw: []byte(fmt.Sprint("old ", i)), NotAfter: testNow.Add(-time.Hour)}, testNow.Add(-2*time.Hour))
	}
	valid := &x509.Certificate{Raw: []byte("renewed"), NotAfter: testNow.Add(time.Hour)}
	cache.remember(valid, testNow)
	if n := count(); n != 1 || !cache.valid(valid, testNow) {
		t.Errorf("after a sweep: %d certificates remembered, the renewed one valid: %v; want only it", n, cache.valid(valid, testNow))
	}
}
