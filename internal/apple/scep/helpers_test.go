package scep

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
)

type issuance struct {
	tenantID, enrolmentID string
	cert                  *x509.Certificate
	renewal               bool
	renews                *x509.Certificate
}

// testEnv is a real SQLite store, two tenant CAs and the server on an
// httptest loopback listener.
type testEnv struct {
	t        *testing.T
	store    store.Store
	settings store.SettingStore
	sealer   secrets.Sealer
	cas      map[string]*CA
	srv      *httptest.Server
	offset   atomic.Int64 // server clock minus wall clock, in nanoseconds
	hookErr  atomic.Pointer[error]
	// hold, when set, stops the next issuance inside its transaction
	// (race).
	hold atomic.Pointer[issuanceHold]

	mu       sync.Mutex
	issued   []issuance
	refusals []Refused
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	return newTestEnvOn(t, storetest.OpenSQLite(t))
}

// newTestEnvOn is newTestEnv on st, for tests run on each engine.
func newTestEnvOn(t *testing.T, st store.Store) *testEnv {
	t.Helper()
	ctx := context.Background()
	sealer := newSealer(t)
	e := &testEnv{t: t, store: st, settings: st.Read().Settings(), sealer: sealer, cas: map[string]*CA{}}
	for _, tenant := range []string{tenantA, tenantB} {
		ca, err := LoadOrCreateCA(ctx, e.settings, sealer, tenant, "Tenant "+tenant, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.cas[tenant] = ca
	}
	server, err := NewServer(Config{
		Store:             st,
		TenantFromRequest: func(r *http.Request) string { return r.PathValue("tenant") },
		CA: func(_ context.Context, tenantID string) (*CA, error) {
			if ca, ok := e.cas[tenantID]; ok {
				return ca, nil
			}
			return nil, ErrUnknownTenant
		},
		OnIssued: func(_ context.Context, _ store.Queries, iss Issuance) error {
			if p := e.hookErr.Load(); p != nil {
				return *p
			}
			if h := e.hold.Swap(nil); h != nil {
				close(h.entered)
				<-h.release
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			e.issued = append(e.issued, issuance{iss.TenantID, iss.EnrolmentID, iss.Certificate, iss.Renewal, iss.Renews})
			return nil
		},
		OnRefused: func(_ context.Context, refused Refused) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.refusals = append(e.refusals, refused)
		},
		Now: e.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scep/{tenant}", server.Handler())
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *testEnv) url(tenant string) string { return e.srv.URL + "/scep/" + tenant }

// now is the server's clock.
func (e *testEnv) now() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }

func (e *testEnv) challenge(tenant, enrolment string) string {
	e.t.Helper()
	c, err := IssueChallenge(context.Background(), e.settings, tenant, enrolment, 0, e.now(), time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// raCert is the certificate of the tenant's current RA, the one GetCACert
// lists first, to which devices encrypt their requests.
func (e *testEnv) raCert(tenant string) *x509.Certificate {
	e.t.Helper()
	ra, err := e.cas[tenant].currentRA(context.Background(), e.now())
	if err != nil {
		e.t.Fatal(err)
	}
	return ra.cert
}

func (e *testEnv) issuedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.issued)
}

func (e *testEnv) lastIssued() issuance {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.issued) == 0 {
		e.t.Fatal("no certificate was issued")
	}
	return e.issued[len(e.issued)-1]
}

// device is a SCEP client: a key for the CSR and the certificate and key
// that sign the PKIMessage (self-signed for PKCSReq, the current device
// certificate for RenewalReq).
type device struct {
	csrKey     crypto.Signer
	signerCert *x509.Certificate
	signerKey  crypto.Signer
}

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newDevice returns a device whose self-signed certificate uses the CSR key,
// as Apple devices and scepclient do.
func newDevice(t testing.TB, csrKey crypto.Signer) *device {
	t.Helper()
	signerKey := csrKey
	if _, ok := csrKey.Public().(*rsa.PublicKey); !ok {
		// CertReps are encrypted to the signer, which only works for RSA.
		signerKey = rsaKey(t, 2048)
	}
	return &device{csrKey: csrKey, signerCert: selfSigned(t, signerKey), signerKey: signerKey}
}

// selfSigned is the temporary certificate a SCEP client signs its PKCSReq
// with.
func selfSigned(t testing.TB, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "SCEP temporary signer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// csr signs csrTmpl, with challenge, by the device's CSR key.
func (d *device) csr(t testing.TB, csrTmpl x509.CertificateRequest, challenge string) []byte {
	t.Helper()
	der, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: csrTmpl, ChallengePassword: challenge,
	}, d.csrKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// request builds a PKIMessage encrypted to recipient with smallstep/scep's
// client-side helpers.
func (d *device) request(t testing.TB, recipient *x509.Certificate, msgType scep.MessageType, csrTmpl x509.CertificateRequest, challenge string) []byte {
	t.Helper()
	return d.requestToAll(t, []*x509.Certificate{recipient}, msgType, csrTmpl, challenge)
}

// requestToAll is request encrypted to each of recipients, as scepclient
// encrypts to every certificate of GetCACert.
func (d *device) requestToAll(t testing.TB, recipients []*x509.Certificate, msgType scep.MessageType, csrTmpl x509.CertificateRequest,
	challenge string) []byte {
	t.Helper()
	csrDER := d.csr(t, csrTmpl, challenge)
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := scep.NewCSRRequest(csr, &scep.PKIMessage{
		MessageType: msgType,
		Recipients:  recipients,
		SignerKey:   d.signerKey,
		SignerCert:  d.signerCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	return msg.Raw
}

// requestInTransaction is request with the transaction ID tid rather than
// the one smallstep/scep derives from the CSR's key.
func (d *device) requestInTransaction(t testing.TB, recipient *x509.Certificate, msgType scep.MessageType, csrTmpl x509.CertificateRequest,
	challenge string, tid scep.TransactionID) []byte {
	t.Helper()
	csrDER := d.csr(t, csrTmpl, challenge)
	envelope, err := pkcs7.Encrypt(csrDER, []*x509.Certificate{recipient})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := pkcs7.NewSignedData(envelope)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	if err := sd.AddSigner(d.signerCert, d.signerKey, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oidTransactionID, Value: tid},
		{Type: oidMessageType, Value: msgType},
		{Type: oidSenderNonce, Value: scep.SenderNonce(nonce)},
	}}); err != nil {
		t.Fatal(err)
	}
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// transactionID is the transaction of a request built by request.
func transactionID(t testing.TB, body []byte) scep.TransactionID {
	t.Helper()
	msg, err := scep.ParsePKIMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	return msg.TransactionID
}

func subject(cn string) x509.CertificateRequest {
	return x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: []string{"Steward test"}}}
}

// reply is a verified, decrypted CertRep.
type reply struct {
	status   scep.PKIStatus
	failInfo scep.FailInfo
	cert     *x509.Certificate
	certs    []*x509.Certificate // all of its certs-only content, cert first
}

func postPKI(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// enrol posts a request and returns the CertRep, verified against ca and
// decrypted with the device's signer key as a real client would.
func (d *device) enrol(t *testing.T, url string, ca *x509.Certificate, body []byte) reply {
	t.Helper()
	status, data := postPKI(t, url, body)
	if status != http.StatusOK {
		t.Fatalf("PKIOperation: HTTP %d: %s", status, data)
	}
	return d.readReply(t, ca, data)
}

func (d *device) readReply(t *testing.T, ca *x509.Certificate, data []byte) reply {
	t.Helper()
	msg, err := scep.ParsePKIMessage(data)
	if err != nil {
		t.Fatalf("CertRep signature does not verify: %v", err)
	}
	// As a client checks it against GetCACert: signed by the RA the CA issued.
	p7, err := pkcs7.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if signer := p7.GetOnlySigner(); signer == nil || signer.Subject.CommonName != raCN || signer.CheckSignatureFrom(ca) != nil {
		t.Fatalf("CertRep is not signed by an RA of the CA %s", ca.Subject.CommonName)
	}
	if msg.MessageType != scep.CertRep {
		t.Fatalf("reply type %s, want CertRep", msg.MessageType)
	}
	r := reply{status: msg.PKIStatus}
	switch msg.PKIStatus {
	case scep.SUCCESS:
		if err := msg.DecryptPKIEnvelope(d.signerCert, d.signerKey); err != nil {
			t.Fatalf("decrypting CertRep: %v", err)
		}
		r.cert = msg.CertRepMessage.Certificate
		r.certs = d.certsOnly(t, p7)
	case scep.FAILURE:
		r.failInfo = msg.FailInfo // read from the signed failInfo attribute
	}
	return r
}

// certsOnly opens a CertRep SUCCESS's envelope and returns the
// certificates in it.
func (d *device) certsOnly(t *testing.T, certRep *pkcs7.PKCS7) []*x509.Certificate {
	t.Helper()
	envelope, err := pkcs7.Parse(certRep.Content)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := envelope.Decrypt(d.signerCert, d.signerKey)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := scep.CACerts(plain)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func newSealer(t testing.TB) secrets.Sealer {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := secrets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return sealer
}
