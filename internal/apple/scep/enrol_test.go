package scep

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"

	"github.com/steward-mdm/steward/internal/store"
)

func TestEnrolIssuesDeviceCertificate(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	keys := map[string]crypto.Signer{"RSA 2048": rsaKey(t, 2048), "EC P-256": ecKey(t, elliptic.P256()), "EC P-384": ecKey(t, elliptic.P384())}
	for name, key := range keys {
		t.Run(name, func(t *testing.T) {
			d := newDevice(t, key)
			enrolment := "enrol-" + name
			body := d.request(t, ra, scep.PKCSReq, subject("device-1"), e.challenge(tenantA, enrolment))

			r := d.enrol(t, e.url(tenantA), ca, body)
			if r.status != scep.SUCCESS || r.cert == nil {
				t.Fatalf("status %s, failInfo %s; want SUCCESS with a certificate", r.status, r.failInfo)
			}
			checkDeviceCert(t, r.cert, e.cas[tenantA], key.Public(), time.Now())
			got := e.lastIssued()
			if got.tenantID != tenantA || got.enrolmentID != enrolment || got.renewal || got.renews != nil || !got.cert.Equal(r.cert) {
				t.Errorf("OnIssued got tenant %q enrolment %q renewal %v renews %v; want tenant-a, %s, false, nil, the sent cert",
					got.tenantID, got.enrolmentID, got.renewal, got.renews != nil, enrolment)
			}
		})
	}
}

func ecKey(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// checkDeviceCert asserts the profile of a device identity certificate: by
// the issuing CA, which the tenant CA issued.
func checkDeviceCert(t *testing.T, cert *x509.Certificate, ca *CA, pub crypto.PublicKey, now time.Time) {
	t.Helper()
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not chain to the tenant's anchors for clientAuth: %v", err)
	}
	if err := cert.CheckSignatureFrom(ca.issuer.cert); err != nil {
		t.Errorf("certificate is not signed by the issuing CA: %v", err)
	}
	if err := ca.issuer.cert.CheckSignatureFrom(ca.cert); err != nil {
		t.Errorf("the issuing CA is not issued by the tenant CA: %v", err)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(cert.UnknownExtKeyUsage) > 0 {
		t.Errorf("EKU = %v, want clientAuth only", cert.ExtKeyUsage)
	}
	// RFC 5480 section 3: keyEncipherment only for keys that can encrypt.
	wantUsage := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok {
		wantUsage |= x509.KeyUsageKeyEncipherment
	}
	if cert.KeyUsage != wantUsage {
		t.Errorf("key usage = %b, want %b", cert.KeyUsage, wantUsage)
	}
	if cert.IsCA {
		t.Error("device certificate is a CA")
	}
	if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(cert.PublicKey) {
		t.Error("certificate is not for the requested key")
	}
	if cert.NotAfter.After(now.Add(DefaultValidity)) || cert.NotAfter.Before(now.Add(DefaultValidity-time.Hour)) {
		t.Errorf("NotAfter %v, want about %v after now", cert.NotAfter, DefaultValidity)
	}
	if cert.SerialNumber.BitLen() < 100 {
		t.Errorf("serial has %d bits; want a random 128-bit serial", cert.SerialNumber.BitLen())
	}
	if len(cert.SubjectKeyId) == 0 || !bytes.Equal(cert.AuthorityKeyId, ca.issuer.cert.SubjectKeyId) {
		t.Error("want a subject key ID and the issuing CA's key ID as authority key ID")
	}
}

func TestEnrolWithGET(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	d := newDevice(t, rsaKey(t, 2048))
	body := d.request(t, ra, scep.PKCSReq, subject("device-get"), e.challenge(tenantA, "enrol-get"))

	q := url.Values{"operation": {"PKIOperation"}, "message": {base64.StdEncoding.EncodeToString(body)}}
	resp, err := http.Get(e.url(tenantA) + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-pki-message" {
		t.Fatalf("HTTP %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if r := d.readReply(t, ca, data); r.status != scep.SUCCESS {
		t.Fatalf("status %s failInfo %s", r.status, r.failInfo)
	}
}

func TestEnrolRefusals(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	rsa2048 := rsaKey(t, 2048)

	used := e.challenge(tenantA, "enrol-used")
	first := newDevice(t, rsa2048)
	if r := first.enrol(t, e.url(tenantA), ca, first.request(t, ra, scep.PKCSReq, subject("first"), used)); r.status != scep.SUCCESS {
		t.Fatalf("first use of a challenge: %s", r.status)
	}
	expired := e.challenge(tenantA, "enrol-expired")

	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	withSAN := func(cn string, edit func(*x509.CertificateRequest)) x509.CertificateRequest {
		s := subject(cn)
		edit(&s)
		return s
	}
	tests := []struct {
		name       string
		key        crypto.Signer
		csr        x509.CertificateRequest
		challenge  string
		clockAhead time.Duration
		want       scep.FailInfo
		reason     string // part of the reason OnRefused is told
	}{
		{"unknown challenge", rsa2048, subject("d"), "not-a-challenge", 0, scep.BadRequest, "challenge"},
		{"no challenge", rsa2048, subject("d"), "", 0, scep.BadRequest, "challenge"},
		{"reused challenge", rsa2048, subject("d"), used, 0, scep.BadRequest, "challenge"},
		{"expired challenge", rsa2048, subject("d"), expired, 2 * time.Hour, scep.BadRequest, "challenge"},
		{"other tenant's challenge", rsa2048, subject("d"), e.challenge(tenantB, "enrol-b"), 0, scep.BadRequest, "challenge"},
		{"RSA 1024", rsaKey(t, 1024), subject("d"), e.challenge(tenantA, "x"), 0, scep.BadRequest, "RSA key of 1024 bits"},
		{"EC P-224", p224, subject("d"), e.challenge(tenantA, "x"), 0, scep.BadRequest, "curve"},
		{"no CN", rsa2048, subject(""), e.challenge(tenantA, "x"), 0, scep.BadRequest, "common name is required"},
		{"wildcard CN", rsa2048, subject("*.example.org"), e.challenge(tenantA, "x"), 0, scep.BadRequest, "wildcard"},
		{"CN over 64", rsa2048, subject(string(bytes.Repeat([]byte("a"), 65))), e.challenge(tenantA, "x"), 0, scep.BadRequest, "64"},
		{"SAN IP", rsa2048, withSAN("d", func(c *x509.CertificateRequest) { c.IPAddresses = []net.IP{net.IPv4(10, 0, 0, 1)} }), e.challenge(tenantA, "x"), 0, scep.BadRequest, "subject alternative names"},
		{"SAN email", rsa2048, withSAN("d", func(c *x509.CertificateRequest) { c.EmailAddresses = []string{"a@example.org"} }), e.challenge(tenantA, "x"), 0, scep.BadRequest, "subject alternative names"},
		{"SAN URI", rsa2048, withSAN("d", func(c *x509.CertificateRequest) { c.URIs = []*url.URL{{Scheme: "https", Host: "example.org"}} }), e.challenge(tenantA, "x"), 0, scep.BadRequest, "subject alternative names"},
		{"SAN DNS", rsa2048, withSAN("d", func(c *x509.CertificateRequest) { c.DNSNames = []string{"device.example.org"} }), e.challenge(tenantA, "x"), 0, scep.BadRequest, "subject alternative names"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.offset.Store(int64(tc.clockAhead))
			defer e.offset.Store(0)
			before, refusedBefore := e.issuedCount(), len(e.refusals)
			d := newDevice(t, tc.key)
			r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, tc.csr, tc.challenge))
			if r.status != scep.FAILURE || r.failInfo != tc.want {
				t.Fatalf("status %s failInfo %s, want FAILURE %s", r.status, r.failInfo, tc.want)
			}
			if e.issuedCount() != before {
				t.Error("OnIssued ran for a refused request")
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			if len(e.refusals) != refusedBefore+1 || !strings.Contains(e.refusals[len(e.refusals)-1].Reason, tc.reason) {
				t.Errorf("OnRefused was not told a reason containing %q", tc.reason)
			}
		})
	}
}

func TestOtherTenantsChallengeSurvives(t *testing.T) {
	e := newTestEnv(t)
	challenge := e.challenge(tenantB, "enrol-b")
	d := newDevice(t, rsaKey(t, 2048))
	caA, caB := e.cas[tenantA].Certificate(), e.cas[tenantB].Certificate()
	if r := d.enrol(t, e.url(tenantA), caA, d.request(t, e.raCert(tenantA), scep.PKCSReq, subject("d"), challenge)); r.status != scep.FAILURE {
		t.Fatal("tenant A accepted tenant B's challenge")
	}
	r := d.enrol(t, e.url(tenantB), caB, d.request(t, e.raCert(tenantB), scep.PKCSReq, subject("d"), challenge))
	if r.status != scep.SUCCESS {
		t.Fatalf("tenant B's challenge was burnt by a request to tenant A: %s", r.failInfo)
	}
	checkDeviceCert(t, r.cert, e.cas[tenantB], d.csrKey.Public(), time.Now())
}

func TestRequestEncryptedToAnotherCA(t *testing.T) {
	e := newTestEnv(t)
	d := newDevice(t, rsaKey(t, 2048))
	body := d.request(t, e.cas[tenantB].Certificate(), scep.PKCSReq, subject("d"), e.challenge(tenantA, "x"))
	r := d.enrol(t, e.url(tenantA), e.cas[tenantA].Certificate(), body)
	if r.status != scep.FAILURE || r.failInfo != scep.BadMessageCheck {
		t.Fatalf("status %s failInfo %s, want FAILURE badMessageCheck", r.status, r.failInfo)
	}
}

func TestOneChallengeTwoConcurrentRequests(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	challenge := e.challenge(tenantA, "enrol-race")
	const racers = 4
	devices := make([]*device, racers)
	bodies := make([][]byte, racers)
	for i := range racers {
		devices[i] = newDevice(t, rsaKey(t, 2048))
		bodies[i] = devices[i].request(t, ra, scep.PKCSReq, subject("racer"), challenge)
	}
	replies := make([][]byte, racers)
	codes := make([]int, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { codes[i], replies[i] = postPKIConcurrent(e.url(tenantA), bodies[i]) })
	}
	wg.Wait()
	successes := 0
	for i := range racers {
		if codes[i] != http.StatusOK {
			t.Fatalf("racer %d: HTTP %d: %s", i, codes[i], replies[i])
		}
		r := devices[i].readReply(t, ca, replies[i])
		switch {
		case r.status == scep.SUCCESS:
			successes++
		case r.status != scep.FAILURE || r.failInfo != scep.BadRequest:
			t.Errorf("racer %d: status %s failInfo %s", i, r.status, r.failInfo)
		}
	}
	if successes != 1 || e.issuedCount() != 1 {
		t.Fatalf("%d successes and %d issued certificates for one challenge, want exactly 1", successes, e.issuedCount())
	}
}

// postPKIConcurrent is postPKI for goroutines, which must not call t.Fatal.
func postPKIConcurrent(url string, body []byte) (int, []byte) {
	resp, err := http.Post(url+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, []byte(err.Error())
	}
	return resp.StatusCode, data
}

// TestResentRequestGetsTheSameCertificate: a client that lost the reply
// sends the same PKCSReq again and gets the certificate issued the first
// time, not a refusal for a spent challenge; after an hour it is refused.
func TestResentRequestGetsTheSameCertificate(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	d := newDevice(t, rsaKey(t, 2048))
	req := d.request(t, ra, scep.PKCSReq, subject("resending"), e.challenge(tenantA, "enrol-resend"))
	first := d.enrol(t, e.url(tenantA), ca, req)
	again := d.enrol(t, e.url(tenantA), ca, req)
	if first.status != scep.SUCCESS || again.status != scep.SUCCESS {
		t.Fatalf("first %s, resend %s %s; want both SUCCESS", first.status, again.status, again.failInfo)
	}
	if first.cert.SerialNumber.Cmp(again.cert.SerialNumber) != 0 || e.issuedCount() != 1 {
		t.Errorf("the resend was issued a second certificate (%d issued)", e.issuedCount())
	}
	e.offset.Store(int64(resendWindow + time.Minute))
	defer e.offset.Store(0)
	if late := d.enrol(t, e.url(tenantA), ca, req); late.status != scep.FAILURE || late.failInfo != scep.BadRequest {
		t.Errorf("a resend after the window: %s %s, want FAILURE badRequest", late.status, late.failInfo)
	}
}

// TestIssuedSubjectIsOnlyTheCommonName: a device names itself by the
// common name it is told to use and chooses nothing else about its
// identity: the other attributes of its request's subject, standard or
// not, are not issued, to an enrolment or to a renewal.
func TestIssuedSubjectIsOnlyTheCommonName(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	csrSubject := func(cn string) x509.CertificateRequest {
		return x509.CertificateRequest{Subject: pkix.Name{
			CommonName: cn, Organization: []string{"Another Org"}, OrganizationalUnit: []string{"Admins"},
			Country: []string{"GB"}, Province: []string{"Kent"}, Locality: []string{"Dover"},
			StreetAddress: []string{"1 Cliff Road"}, PostalCode: []string{"CT16 1AA"}, SerialNumber: "0042",
			ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "admin@example.com"}, // emailAddress
				{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, Value: "root"},         // UID
			},
		}}
	}
	checkSubject := func(t *testing.T, what string, cert *x509.Certificate, cn string) {
		t.Helper()
		var rdns pkix.RDNSequence
		if rest, err := asn1.Unmarshal(cert.RawSubject, &rdns); err != nil || len(rest) > 0 {
			t.Fatalf("%s: subject does not parse: %v", what, err)
		}
		oidCN := asn1.ObjectIdentifier{2, 5, 4, 3}
		if len(rdns) != 1 || len(rdns[0]) != 1 || !rdns[0][0].Type.Equal(oidCN) || rdns[0][0].Value != cn {
			t.Errorf("%s: issued subject %q, want only CN=%s", what, cert.Subject.String(), cn)
		}
	}

	key := rsaKey(t, 2048)
	d := newDevice(t, key)
	enrolled := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, csrSubject("device-s"), e.challenge(tenantA, "enrol-s")))
	if enrolled.status != scep.SUCCESS {
		t.Fatalf("enrolment: %s %s", enrolled.status, enrolled.failInfo)
	}
	checkSubject(t, "enrolment", enrolled.cert, "device-s")

	renew := renewer(t, enrolled.cert, key)
	renewed := renew.enrol(t, e.url(tenantA), ca, renew.request(t, ra, scep.RenewalReq, csrSubject("device-s"), ""))
	if renewed.status != scep.SUCCESS {
		t.Fatalf("renewal: %s %s", renewed.status, renewed.failInfo)
	}
	checkSubject(t, "renewal", renewed.cert, "device-s")
}

// TestECSignedRequestSpendsNothing: a CertRep is encrypted to the
// certificate that signed the request, and envelopes need RSA. A request
// signed with an EC key is refused with badAlg before anything is issued,
// so its challenge is still good for a request the device can read.
func TestECSignedRequestSpendsNothing(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	ecSigner := ecKey(t, elliptic.P256())
	ecSigned := &device{csrKey: rsaKey(t, 2048), signerCert: selfSigned(t, ecSigner), signerKey: ecSigner}
	challenge := e.challenge(tenantA, "enrol-ec-signer")

	r := ecSigned.enrol(t, e.url(tenantA), ca, ecSigned.request(t, ra, scep.PKCSReq, subject("d"), challenge))
	if r.status != scep.FAILURE || r.failInfo != scep.BadAlg {
		t.Fatalf("EC-signed PKCSReq: %s %s, want FAILURE badAlg", r.status, r.failInfo)
	}
	if e.issuedCount() != 0 {
		t.Fatal("OnIssued ran for a request whose reply cannot be encrypted")
	}
	d := newDevice(t, rsaKey(t, 2048))
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, subject("d"), challenge)); r.status != scep.SUCCESS {
		t.Fatalf("the challenge after the refused request: %s %s", r.status, r.failInfo)
	}
}

// TestCertRepNonces: a CertRep returns the request's sender nonce as its
// recipient nonce and brings a fresh sender nonce of its own (RFC 8894
// section 3.2.1.5), on success and failure alike.
func TestCertRepNonces(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	d := newDevice(t, rsaKey(t, 2048))
	for _, tc := range []struct {
		name      string
		challenge string
		want      scep.PKIStatus
	}{{"success", e.challenge(tenantA, "enrol-nonce"), scep.SUCCESS}, {"failure", "no-such-challenge", scep.FAILURE}} {
		t.Run(tc.name, func(t *testing.T) {
			req := d.request(t, ra, scep.PKCSReq, subject("d"), tc.challenge)
			sent, err := scep.ParsePKIMessage(req)
			if err != nil {
				t.Fatal(err)
			}
			code, body := postPKI(t, e.url(tenantA), req)
			if code != http.StatusOK {
				t.Fatalf("HTTP %d", code)
			}
			if r := d.readReply(t, ca, body); r.status != tc.want {
				t.Fatalf("status %s, want %s", r.status, tc.want)
			}
			p7, err := pkcs7.Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			var senderNonce, recipientNonce []byte
			if p7.UnmarshalSignedAttribute(oidSenderNonce, &senderNonce) != nil || p7.UnmarshalSignedAttribute(oidRecipientNonce, &recipientNonce) != nil {
				t.Fatal("the CertRep lacks a nonce")
			}
			if !bytes.Equal(recipientNonce, sent.SenderNonce) {
				t.Error("the recipient nonce is not the request's sender nonce")
			}
			if len(senderNonce) != 16 || bytes.Equal(senderNonce, sent.SenderNonce) {
				t.Error("the sender nonce is not the server's own 16 bytes")
			}
		})
	}
}

// TestReplyFailureSpendsNothing: the CertRep is made before the issuance
// is written, so a reply that cannot be made leaves the challenge unspent
// and nothing recorded.
func TestReplyFailureSpendsNothing(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	challenge := e.challenge(tenantA, "enrol-reply")
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject("d").Subject}, ecKey(t, elliptic.P256()))
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{
		Store:             e.store,
		TenantFromRequest: func(*http.Request) string { return tenantA },
		CA:                func(context.Context, string) (*CA, error) { return e.cas[tenantA], nil },
		OnIssued:          func(context.Context, store.Queries, Issuance) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	var issued *x509.Certificate
	failing := func(*x509.Certificate) ([]byte, error) { return nil, errors.New("the reply cannot be encrypted") }
	_, err = srv.issue(ctx, e.cas[tenantA], csr, failing, func(q store.Queries, cert *x509.Certificate) (Issuance, error) {
		issued = cert
		granted, err := consumeChallenge(ctx, q.Settings(), tenantA, challenge, time.Now())
		return Issuance{TenantID: tenantA, EnrolmentID: granted.EnrolmentID, Certificate: cert}, err
	})
	if err == nil {
		t.Fatal("the issuance succeeded without a reply")
	}
	if _, err := readChallenge(ctx, e.settings, tenantA, challenge, time.Now()); err != nil {
		t.Errorf("the challenge was spent: %v", err)
	}
	if issued != nil {
		if _, err := e.settings.Get(ctx, issuedSettingKey(tenantA, issued.SerialNumber)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the certificate was recorded as current: %v", err)
		}
	}
}
