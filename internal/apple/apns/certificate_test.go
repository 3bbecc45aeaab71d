package apns

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

func TestParsePushCertificateAccepts(t *testing.T) {
	ca := newTestCA(t)
	rsaCert := ca.issue(t, pushCertSpec{})
	ecCert := ca.issue(t, pushCertSpec{key: newECKey(t)})
	const password = "correct horse battery staple"
	p12, err := pkcs12.Modern.Encode(rsaCert.key, rsaCert.cert, []*x509.Certificate{ca.cert}, password)
	if err != nil {
		t.Fatalf("encode PKCS#12: %v", err)
	}
	// Some exports put the CA certificate first.
	caFirst, err := pkcs12.Modern.Encode(rsaCert.key, ca.cert, []*x509.Certificate{rsaCert.cert}, password)
	if err != nil {
		t.Fatalf("encode PKCS#12: %v", err)
	}

	cases := []struct {
		name     string
		data     []byte
		password string
		want     issued
		chain    int
	}{
		{"PEM cert then PKCS#1 key", join(certPEM(rsaCert.cert), keyPEM(t, rsaCert.key, "pkcs1")), "", rsaCert, 0},
		{"PEM key first, PKCS#8, with CA", join(keyPEM(t, rsaCert.key, "pkcs8"), certPEM(ca.cert), certPEM(rsaCert.cert)), "", rsaCert, 1},
		{"PEM EC key (SEC 1)", join(certPEM(ecCert.cert), keyPEM(t, ecCert.key, "ec")), "", ecCert, 0},
		{"PEM EC key (PKCS#8)", join(keyPEM(t, ecCert.key, "pkcs8"), certPEM(ecCert.cert)), "", ecCert, 0},
		{"PKCS#12 modern", p12, password, rsaCert, 1},
		{"PKCS#12 with the CA first", caFirst, password, rsaCert, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pc := mustParse(t, tc.data, tc.password)
			if pc.Topic != testTopic {
				t.Errorf("Topic = %q, want %q", pc.Topic, testTopic)
			}
			if pc.CommonName != tc.want.cert.Subject.CommonName {
				t.Errorf("CommonName = %q", pc.CommonName)
			}
			if pc.Serial != "7e57c0de" {
				t.Errorf("Serial = %q, want 7e57c0de", pc.Serial)
			}
			if !pc.NotAfter.Equal(tc.want.cert.NotAfter) {
				t.Errorf("NotAfter = %v, want %v", pc.NotAfter, tc.want.cert.NotAfter)
			}
			if !bytes.Equal(pc.tls.Certificate[0], tc.want.cert.Raw) {
				t.Error("TLS leaf is not the push certificate")
			}
			if got := len(pc.tls.Certificate) - 1; got != tc.chain {
				t.Errorf("chain length = %d, want %d", got, tc.chain)
			}
			if !publicKeysEqual(tc.want.cert.PublicKey, pc.tls.PrivateKey.(crypto.Signer).Public()) {
				t.Error("TLS key does not belong to the leaf")
			}
		})
	}
}

func TestParsePushCertificateRefuses(t *testing.T) {
	ca := newTestCA(t)
	good := ca.issue(t, pushCertSpec{})
	other := newRSAKey(t)
	const password = "s3cret-p12-passphrase"
	p12, err := pkcs12.Modern.Encode(good.key, good.cert, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(i issued) []byte { return join(certPEM(i.cert), keyPEM(t, i.key, "pkcs8")) }
	goodKeyPEM := keyPEM(t, good.key, "pkcs1")

	cases := []struct {
		name     string
		data     []byte
		password string
		want     error
	}{
		{"empty", []byte("  \n"), "", ErrEmptyCertificate},
		{"too large", bytes.Repeat([]byte{'x'}, MaxCertificateSize+1), "", ErrCertificateTooLarge},
		{"garbage", []byte("not a certificate at all"), "", ErrUnreadable},
		{"wrong PKCS#12 password", p12, "Tr0ub4dor&3-not-it", ErrWrongPassword},
		{"PEM without key", certPEM(good.cert), "", ErrNoPrivateKey},
		{"PEM without certificate", goodKeyPEM, "", ErrNoCertificate},
		{"mismatched key", join(certPEM(good.cert), keyPEM(t, other, "pkcs1")), "", ErrKeyMismatch},
		{"encrypted PKCS#8", join(certPEM(good.cert), []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")), "", ErrEncryptedKey},
		{"wrong topic", pemOf(ca.issue(t, pushCertSpec{topic: "com.example.app"})), "", ErrNotPushTopic},
		{"bare prefix topic", pemOf(ca.issue(t, pushCertSpec{topic: TopicPrefix})), "", ErrNotPushTopic},
		{"no UID", pemOf(ca.issue(t, pushCertSpec{topic: "-"})), "", ErrNotPushTopic},
		{"expired", pemOf(ca.issue(t, pushCertSpec{notBefore: time.Now().Add(-400 * 24 * time.Hour), notAfter: time.Now().Add(-time.Hour)})), "", ErrExpired},
		{"not yet valid", pemOf(ca.issue(t, pushCertSpec{notBefore: time.Now().Add(time.Hour)})), "", ErrNotYetValid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := ParsePushCertificate(tc.data, tc.password, time.Now())
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v (cert %v)", err, tc.want, pc)
			}
			msg := err.Error()
			if tc.password != "" && strings.Contains(msg, tc.password) {
				t.Errorf("error echoes the password: %q", msg)
			}
			if strings.Contains(msg, "PRIVATE KEY") || strings.Contains(msg, keyBody(goodKeyPEM)[:16]) {
				t.Errorf("error echoes key material: %q", msg)
			}
		})
	}
}

// TestParsePushCertificateUsesTheGivenTime: validity is judged at the
// caller's now, never the wall clock's.
func TestParsePushCertificateUsesTheGivenTime(t *testing.T) {
	ca := newTestCA(t)
	notBefore := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC) // long expired by the wall clock
	old := ca.issue(t, pushCertSpec{notBefore: notBefore, notAfter: notAfter})
	data := join(certPEM(old.cert), keyPEM(t, old.key, "pkcs8"))
	cases := []struct {
		now  time.Time
		want error
	}{
		{notBefore.Add(-time.Second), ErrNotYetValid},
		{notBefore, nil},
		{notAfter.Add(-time.Second), nil},
		{notAfter, ErrExpired},
		{time.Now(), ErrExpired},
	}
	for _, tc := range cases {
		pc, err := ParsePushCertificate(data, "", tc.now)
		if !errors.Is(err, tc.want) || (err == nil) != (pc != nil && pc.Topic == testTopic) {
			t.Errorf("at %v: %v, %v; want %v", tc.now, pc, err, tc.want)
		}
	}
}

func TestStatusAndExpiresWithin(t *testing.T) {
	notAfter := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	pc := &PushCertificate{Topic: testTopic, NotAfter: notAfter}
	cases := []struct {
		now      time.Time
		days     int
		warning  bool
		within7d bool
	}{
		{notAfter.Add(-90 * 24 * time.Hour), 90, false, false},
		{notAfter.Add(-30*24*time.Hour - time.Second), 30, false, false},
		{notAfter.Add(-30 * 24 * time.Hour), 30, true, false},
		{notAfter.Add(-7 * 24 * time.Hour), 7, true, true},
		{notAfter.Add(-time.Hour), 0, true, true},
		{notAfter.Add(time.Hour), -1, true, true},
	}
	for _, tc := range cases {
		st := pc.Status(tc.now)
		if st.DaysLeft != tc.days || st.Warning != tc.warning || st.Topic != testTopic || !st.NotAfter.Equal(notAfter) {
			t.Errorf("Status(%v) = %+v, want days %d warning %v", tc.now, st, tc.days, tc.warning)
		}
		if got := pc.ExpiresWithin(7*24*time.Hour, tc.now); got != tc.within7d {
			t.Errorf("ExpiresWithin(7d, %v) = %v, want %v", tc.now, got, tc.within7d)
		}
	}
}

func FuzzParsePushCertificate(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), "")
	f.Add([]byte{0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x03}, "pw")
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		pc, err := ParsePushCertificate(data, password, time.Now())
		if (pc == nil) == (err == nil) {
			t.Fatalf("want exactly one of certificate and error, got %v, %v", pc, err)
		}
	})
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// keyBody returns the base64 body of a PEM block.
func keyBody(p []byte) string {
	lines := strings.Split(strings.TrimSpace(string(p)), "\n")
	return strings.Join(lines[1:len(lines)-1], "")
}
