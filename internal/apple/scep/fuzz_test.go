package scep

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// FuzzPKCSReq fuzzes what a device puts inside a PKCSReq: the CSR bytes,
// or, when there are none, the challenge of a well-formed CSR. Each input
// is wrapped in a freshly signed request, encrypted to the tenant's RA, so
// that decryption, CSR parsing, checkCSR, the challenge lookup and, for the
// live challenges of the seeds, issuance all run. The server must answer
// with a CertRep and issue only for a live challenge, to the CSR's key.
func FuzzPKCSReq(f *testing.F) {
	ctx := context.Background()
	srv, ca, settings := fuzzServer(f, func(_ context.Context, _ store.Queries, iss Issuance) error {
		if !strings.HasPrefix(iss.EnrolmentID, "enrol-fuzz-") || iss.Renewal {
			return errors.New("issued for no challenge of the fuzz store")
		}
		return nil
	})
	ra, err := ca.currentRA(ctx, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	signer := newDevice(f, rsaKey(f, 2048))
	csrKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	makeCSR := func(tmpl x509.CertificateRequest, challenge string) ([]byte, error) {
		return x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{CertificateRequest: tmpl, ChallengePassword: challenge}, csrKey)
	}
	seedCSR := func(tmpl x509.CertificateRequest, challenge string) []byte {
		der, err := makeCSR(tmpl, challenge)
		if err != nil {
			f.Fatal(err)
		}
		return der
	}
	live := func(n string) string {
		c, err := IssueChallenge(ctx, settings, tenantA, "enrol-fuzz-"+n, 0, time.Now(), 24*time.Hour)
		if err != nil {
			f.Fatal(err)
		}
		return c
	}
	f.Add([]byte(nil), live("1"))
	f.Add([]byte(nil), "no-such-challenge")
	f.Add([]byte(nil), "")
	f.Add(seedCSR(subject("fuzz"), live("2")), "")
	f.Add(seedCSR(subject("fuzz"), "no-such-challenge"), "")
	f.Add(seedCSR(subject(""), live("3")), "")
	withSAN := subject("fuzz")
	withSAN.IPAddresses = []net.IP{net.IPv4(10, 0, 0, 1)}
	f.Add(seedCSR(withSAN, live("4")), "")
	f.Add([]byte("not a CSR"), "")
	f.Add([]byte{0x30, 0x80, 0x00, 0x00}, "")

	f.Fuzz(func(t *testing.T, csrDER []byte, challenge string) {
		if len(csrDER) == 0 {
			if csrDER, err = makeCSR(subject("fuzz"), challenge); err != nil {
				t.Skip() // a challenge no client could encode
			}
		}
		// Only the bytes are sent; the key names the transaction.
		msg, err := scep.NewCSRRequest(&x509.CertificateRequest{Raw: csrDER, PublicKey: csrKey.Public()}, &scep.PKIMessage{
			MessageType: scep.PKCSReq, Recipients: []*x509.Certificate{ra.cert}, SignerKey: signer.signerKey, SignerCert: signer.signerCert})
		if err != nil {
			t.Skip() // not something a client could send
		}
		reply, err := srv.pkiOperation(ctx, ca, msg.Raw)
		if err != nil {
			t.Fatalf("a signed PKCSReq got no CertRep: %v", err)
		}
		rep, err := scep.ParsePKIMessage(reply)
		if err != nil {
			t.Fatalf("the CertRep does not verify: %v", err)
		}
		if rep.PKIStatus != scep.SUCCESS {
			return
		}
		issued := decryptCertRep(t, reply, signer)
		csr, err := x509.ParseCertificateRequest(csrDER)
		if err != nil || checkCSR(csr) != nil {
			t.Fatalf("a certificate was issued for a CSR Steward must refuse: %v", err)
		}
		if !issued.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
			t.Fatal("the certificate is not for the CSR's key")
		}
	})
}

func decryptCertRep(t *testing.T, reply []byte, d *device) *x509.Certificate {
	t.Helper()
	p7, err := pkcs7.Parse(reply)
	if err != nil {
		t.Fatal(err)
	}
	certs := d.certsOnly(t, p7)
	if len(certs) == 0 {
		t.Fatal("a CertRep SUCCESS without a certificate")
	}
	return certs[0]
}

// FuzzReadMessage fuzzes how a PKIOperation message is read: the base64
// "message" parameter of a GET (raw query text, so that escaping and the
// '+' that became ' ' are exercised) or a POST body. A message read is the
// decoded bytes, never empty and never over maxMessageBytes.
func FuzzReadMessage(f *testing.F) {
	d := newDevice(f, rsaKey(f, 2048))
	ca := selfSigned(f, rsaKey(f, 2048))
	pkcsReq := d.request(f, ca, scep.PKCSReq, subject("fuzz"), "challenge")
	encoded := base64.StdEncoding.EncodeToString(pkcsReq)
	f.Add(true, encoded, []byte(nil))
	f.Add(true, url.QueryEscape(encoded), []byte(nil))
	f.Add(true, strings.ReplaceAll(encoded, "+", " "), []byte(nil))
	f.Add(true, "%%", []byte(nil))
	f.Add(true, "", []byte(nil))
	f.Add(true, "AAAA&message=BBBB", []byte(nil))
	f.Add(true, strings.Repeat("A", base64.StdEncoding.EncodedLen(maxMessageBytes)+4), []byte(nil))
	f.Add(false, "", pkcsReq)
	f.Add(false, "", []byte{})
	f.Add(false, "", make([]byte, maxMessageBytes+1))

	f.Fuzz(func(t *testing.T, get bool, message string, body []byte) {
		r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/scep/t", RawQuery: "operation=PKIOperation"},
			Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
		if get {
			r.Method, r.URL.RawQuery = http.MethodGet, "operation=PKIOperation&message="+message
		}
		der, err := readMessage(httptest.NewRecorder(), r)
		if err != nil {
			return
		}
		if len(der) > maxMessageBytes {
			t.Fatalf("read %d bytes, over the %d limit", len(der), maxMessageBytes)
		}
		if !get {
			if !bytes.Equal(der, body) || len(der) == 0 {
				t.Fatal("a POST message is not its body")
			}
			return
		}
		param := strings.ReplaceAll(r.URL.Query().Get("message"), " ", "+")
		if want, err := base64.StdEncoding.DecodeString(param); err != nil || !bytes.Equal(der, want) || len(der) == 0 {
			t.Fatal("a GET message is not its decoded parameter")
		}
	})
}

// fuzzServer is a SCEP server for tenantA on a fresh SQLite store, with its
// CA and settings, binding what it issues with onIssued.
func fuzzServer(f *testing.F, onIssued func(context.Context, store.Queries, Issuance) error) (*Server, *CA, store.SettingStore) {
	st := storetest.OpenSQLite(f)
	settings := st.Read().Settings()
	ca, err := LoadOrCreateCA(context.Background(), settings, newSealer(f), tenantA, "Fuzz", time.Now())
	if err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(Config{
		Store:             st,
		TenantFromRequest: func(*http.Request) string { return tenantA },
		CA:                func(context.Context, string) (*CA, error) { return ca, nil },
		OnIssued:          onIssued,
	})
	if err != nil {
		f.Fatal(err)
	}
	return srv, ca, settings
}
