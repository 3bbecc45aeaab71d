package scep

import (
	"context"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/smallstep/scep"
)

// enrolled returns a device of tenant that holds a fresh certificate.
func (e *testEnv) enrolled(t *testing.T, tenant, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	ca := e.cas[tenant].Certificate()
	key := rsaKey(t, 2048)
	d := newDevice(t, key)
	r := d.enrol(t, e.url(tenant), ca, d.request(t, ca, scep.PKCSReq, subject(cn), e.challenge(tenant, "enrol-"+cn)))
	if r.status != scep.SUCCESS {
		t.Fatalf("enrolling %s: %s", cn, r.failInfo)
	}
	return r.cert, key
}

// renewer signs its RenewalReq with cert and key and asks for newKey.
func renewer(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey) *device {
	return &device{csrKey: rsaKey(t, 2048), signerCert: cert, signerKey: key}
}

func TestRenewal(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	oldCert, oldKey := e.enrolled(t, tenantA, "device-r")

	d := renewer(t, oldCert, oldKey)
	r := d.enrol(t, e.url(tenantA), ca, d.request(t, ca, scep.RenewalReq, subject("device-r"), ""))
	if r.status != scep.SUCCESS {
		t.Fatalf("renewal: %s %s", r.status, r.failInfo)
	}
	checkDeviceCert(t, r.cert, e.cas[tenantA], d.csrKey.Public(), time.Now())
	if r.cert.SerialNumber.Cmp(oldCert.SerialNumber) == 0 {
		t.Error("renewal reused the serial number")
	}
	got := e.lastIssued()
	if !got.renewal || got.enrolmentID != "enrol-device-r" || got.tenantID != tenantA {
		t.Errorf("OnIssued got renewal=%v enrolment %q tenant %q; want true, enrol-device-r, tenant-a", got.renewal, got.enrolmentID, got.tenantID)
	}
	// The hook is told which certificate signed the renewal, to check it is
	// the one the device uses.
	if got.renews == nil || !got.renews.Equal(oldCert) {
		t.Error("OnIssued was not told the certificate being renewed")
	}

	// The old certificate has been renewed: it cannot renew again.
	again := renewer(t, oldCert, oldKey)
	if r := again.enrol(t, e.url(tenantA), ca, again.request(t, ca, scep.RenewalReq, subject("device-r"), "")); r.status != scep.FAILURE || r.failInfo != scep.BadMessageCheck {
		t.Errorf("second renewal with the old certificate: %s %s, want FAILURE badMessageCheck", r.status, r.failInfo)
	}
	// The new one can.
	next := renewer(t, r.cert, d.csrKey.(*rsa.PrivateKey))
	if r := next.enrol(t, e.url(tenantA), ca, next.request(t, ca, scep.RenewalReq, subject("device-r"), "")); r.status != scep.SUCCESS {
		t.Errorf("renewal with the renewed certificate: %s %s", r.status, r.failInfo)
	}
}

func TestRenewalRefusals(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	foreignCert, foreignKey := e.enrolled(t, tenantB, "device-f")
	selfSigned := newDevice(t, rsaKey(t, 2048))
	released, releasedKey := e.enrolled(t, tenantA, "device-gone")
	if err := ReleaseCertificate(context.Background(), e.settings, tenantA, released.SerialNumber); err != nil {
		t.Fatal(err)
	}
	current, currentKey := e.enrolled(t, tenantA, "device-c")

	tests := []struct {
		name       string
		cert       *x509.Certificate
		key        *rsa.PrivateKey
		cn         string
		clockAhead time.Duration
		want       scep.FailInfo
	}{
		{"certificate of another tenant's CA", foreignCert, foreignKey, "device-f", 0, scep.BadMessageCheck},
		{"self-signed certificate", selfSigned.signerCert, selfSigned.signerKey.(*rsa.PrivateKey), "SCEP temporary signer", 0, scep.BadMessageCheck},
		{"released certificate", released, releasedKey, "device-gone", 0, scep.BadMessageCheck},
		{"expired certificate", current, currentKey, "device-c", DefaultValidity + time.Hour, scep.BadMessageCheck},
		{"changed subject", current, currentKey, "someone-else", 0, scep.BadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.offset.Store(int64(tc.clockAhead))
			defer e.offset.Store(0)
			before := e.issuedCount()
			d := renewer(t, tc.cert, tc.key)
			r := d.enrol(t, e.url(tenantA), ca, d.request(t, ca, scep.RenewalReq, subject(tc.cn), ""))
			if r.status != scep.FAILURE || r.failInfo != tc.want {
				t.Fatalf("status %s failInfo %s, want FAILURE %s", r.status, r.failInfo, tc.want)
			}
			if e.issuedCount() != before {
				t.Error("OnIssued ran for a refused renewal")
			}
		})
	}
	// None of the refusals used up the current certificate's renewal.
	d := renewer(t, current, currentKey)
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ca, scep.RenewalReq, subject("device-c"), "")); r.status != scep.SUCCESS {
		t.Fatalf("renewal after refused attempts: %s %s", r.status, r.failInfo)
	}
}

func TestOnIssuedErrorFailsIssuance(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	current, currentKey := e.enrolled(t, tenantA, "device-h")
	hookErr := errors.New("enrolment store unavailable")
	e.hookErr.Store(&hookErr)

	d := newDevice(t, rsaKey(t, 2048))
	challenge := e.challenge(tenantA, "x")
	if code, _ := postPKI(t, e.url(tenantA), d.request(t, ca, scep.PKCSReq, subject("d"), challenge)); code != http.StatusInternalServerError {
		t.Errorf("PKCSReq with a failing hook: HTTP %d, want 500", code)
	}
	renew := renewer(t, current, currentKey)
	if code, _ := postPKI(t, e.url(tenantA), renew.request(t, ca, scep.RenewalReq, subject("device-h"), "")); code != http.StatusInternalServerError {
		t.Errorf("RenewalReq with a failing hook: HTTP %d, want 500", code)
	}

	// Once the hook works again the devices can still enrol and renew: the
	// failed attempts spent neither the challenge nor the claim.
	e.hookErr.Store(nil)
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ca, scep.PKCSReq, subject("d"), challenge)); r.status != scep.SUCCESS {
		t.Fatalf("enrolment after the hook recovered: %s %s", r.status, r.failInfo)
	}
	if r := renew.enrol(t, e.url(tenantA), ca, renew.request(t, ca, scep.RenewalReq, subject("device-h"), "")); r.status != scep.SUCCESS {
		t.Fatalf("renewal after the hook recovered: %s %s", r.status, r.failInfo)
	}
}

// TestECRenewalSpendsNothing: a certificate with an EC key cannot be sent
// its renewal (the reply is encrypted to it, and envelopes need RSA). The
// RenewalReq it signs is refused with badAlg before the renewal is claimed:
// the certificate stays current, and asking again gets the same answer.
func TestECRenewalSpendsNothing(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	key := ecKey(t, elliptic.P256())
	d := newDevice(t, key) // enrols with an RSA signer, for an EC certificate
	enrolled := d.enrol(t, e.url(tenantA), ca, d.request(t, ca, scep.PKCSReq, subject("device-ec"), e.challenge(tenantA, "enrol-ec")))
	if enrolled.status != scep.SUCCESS {
		t.Fatalf("enrolling: %s %s", enrolled.status, enrolled.failInfo)
	}

	renew := &device{csrKey: ecKey(t, elliptic.P256()), signerCert: enrolled.cert, signerKey: key}
	for range 2 {
		r := renew.enrol(t, e.url(tenantA), ca, renew.request(t, ca, scep.RenewalReq, subject("device-ec"), ""))
		if r.status != scep.FAILURE || r.failInfo != scep.BadAlg {
			t.Fatalf("EC renewal: %s %s, want FAILURE badAlg", r.status, r.failInfo)
		}
	}
	if e.issuedCount() != 1 {
		t.Error("OnIssued ran for a renewal whose reply cannot be encrypted")
	}
	if _, err := e.settings.Get(context.Background(), issuedSettingKey(tenantA, enrolled.cert.SerialNumber)); err != nil {
		t.Errorf("the refused renewal spent the certificate's claim: %v", err)
	}
}
