package payloads

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
	"time"

	"howett.net/plist"
	"software.sslmate.com/src/go-pkcs12"
)

// TestCustomProfileCarriedCertificates: an uploaded profile, plain or
// signed, carries the certificates of its root, pkcs1 and pem payloads (DER
// or PEM), and the certificate and chain of each PKCS#12 identity whose
// password it holds, in a pkcs12 payload or an Exchange account; an
// identity whose password the device asks its user for is left out.
func TestCustomProfileCarriedCertificates(t *testing.T) {
	hour := time.Now().Add(time.Hour)
	root, _ := newIdentity(t, time.Now().Add(-time.Hour), hour)
	inPKCS1, _ := newIdentity(t, time.Now().Add(-time.Hour), hour)
	firstPEM, _ := newIdentity(t, time.Now().Add(-time.Hour), hour)
	secondPEM, _ := newIdentity(t, time.Now().Add(-time.Hour), hour)
	chainCA, _ := newIdentity(t, time.Now().Add(-time.Hour), hour)
	identity, identityKey := newIdentity(t, time.Now().Add(-time.Hour), hour)
	exchange, exchangeKey := newIdentity(t, time.Now().Add(-time.Hour), hour)
	prompted, promptedKey := newIdentity(t, time.Now().Add(-time.Hour), hour)
	p12 := func(cert *x509.Certificate, key any, chain []*x509.Certificate, password string) []byte {
		t.Helper()
		data, err := pkcs12.Modern.Encode(key, cert, chain, password)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	pemOf := func(certs ...*x509.Certificate) []byte {
		var b bytes.Buffer
		for _, c := range certs {
			_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		return b.Bytes()
	}
	plain := customProfile(t, plist.XMLFormat,
		payloadDict("com.apple.security.root", "com.example.custom.root", "5C0F7B1E-0000-4000-8000-000000000001", "PayloadContent", root.Raw),
		payloadDict("com.apple.security.pkcs1", "com.example.custom.pkcs1", "5C0F7B1E-0000-4000-8000-000000000002", "PayloadContent", pemOf(inPKCS1)),
		payloadDict("com.apple.security.pem", "com.example.custom.pem", "5C0F7B1E-0000-4000-8000-000000000003", "PayloadContent", pemOf(firstPEM, secondPEM)),
		payloadDict("com.apple.security.pkcs12", "com.example.custom.p12", "5C0F7B1E-0000-4000-8000-000000000004",
			"PayloadContent", p12(identity, identityKey, []*x509.Certificate{chainCA}, "p12-pass"), "Password", "p12-pass"),
		payloadDict("com.apple.security.pkcs12", "com.example.custom.prompted", "5C0F7B1E-0000-4000-8000-000000000005",
			"PayloadContent", p12(prompted, promptedKey, nil, "asked-on-the-device")),
		payloadDict("com.apple.eas.account", "com.example.custom.eas", "5C0F7B1E-0000-4000-8000-000000000006", "EmailAddress", "user@example.com",
			"Host", "mail.example.com", "Certificate", p12(exchange, exchangeKey, nil, "eas-pass"), "CertificatePassword", "eas-pass"),
		restrictionsPayload,
	)
	want := []*x509.Certificate{root, inPKCS1, firstPEM, secondPEM, identity, chainCA, exchange}
	for name, profile := range map[string][]byte{"plain": plain, "signed": sign(t, plain, false)} {
		got, err := CarriedCertificates(profile)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.EqualFunc(got, want, func(a, b *x509.Certificate) bool { return a.Equal(b) }) {
			t.Errorf("%s: got %d certificates, want %d in payload order", name, len(got), len(want))
		}
	}
	if _, err := CarriedCertificates([]byte("not a profile")); err == nil {
		t.Error("an unreadable profile gave no error")
	}
}

// TestDefinitionCarriedCertificates: a built profile carries its PKCS#12
// identities and their chains, expired or not (the device keeps an expired
// one), and nothing while its secrets are withheld.
func TestDefinitionCarriedCertificates(t *testing.T) {
	ca, _ := newIdentity(t, time.Now().Add(-48*time.Hour), time.Now().Add(time.Hour))
	expired, key := newIdentity(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	data, err := pkcs12.Modern.Encode(key, expired, []*x509.Certificate{ca}, "p12-pass")
	if err != nil {
		t.Fatal(err)
	}
	def := Definition{Name: "VPN identity", Identifier: "com.example.vpn", Payloads: []Payload{
		{Type: KindPasscode, Passcode: &Passcode{}},
		{Type: KindPKCS12, PKCS12: &PKCS12{Data: NewSecretData(data), Password: NewSecret("p12-pass")}},
	}}
	got := def.CarriedCertificates()
	if len(got) != 2 || !got[0].Equal(expired) || !got[1].Equal(ca) {
		t.Errorf("got %d certificates, want the expired identity and its CA", len(got))
	}
	if withheld := def.Redacted().CarriedCertificates(); len(withheld) != 0 {
		t.Errorf("withheld secrets gave %d certificates", len(withheld))
	}
}
