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

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// enrolled returns a device of tenant that holds a fresh certificate.
func (e *testEnv) enrolled(t *testing.T, tenant, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	ca := e.cas[tenant].Certificate()
	ra := e.raCert(tenant)
	key := rsaKey(t, 2048)
	d := newDevice(t, key)
	r := d.enrol(t, e.url(tenant), ca, d.request(t, ra, scep.PKCSReq, subject(cn), e.challenge(tenant, "enrol-"+cn)))
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
	ra := e.raCert(tenantA)
	oldCert, oldKey := e.enrolled(t, tenantA, "device-r")

	d := renewer(t, oldCert, oldKey)
	r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.RenewalReq, subject("device-r"), ""))
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
	if r := again.enrol(t, e.url(tenantA), ca, again.request(t, ra, scep.RenewalReq, subject("device-r"), "")); r.status != scep.FAILURE || r.failInfo != scep.BadMessageCheck {
		t.Errorf("second renewal with the old certificate: %s %s, want FAILURE badMessageCheck", r.status, r.failInfo)
	}
	// The new one can.
	next := renewer(t, r.cert, d.csrKey.(*rsa.PrivateKey))
	if r := next.enrol(t, e.url(tenantA), ca, next.request(t, ra, scep.RenewalReq, subject("device-r"), "")); r.status != scep.SUCCESS {
		t.Errorf("renewal with the renewed certificate: %s %s", r.status, r.failInfo)
	}
}

func TestRenewalRefusals(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
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
			r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.RenewalReq, subject(tc.cn), ""))
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
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.RenewalReq, subject("device-c"), "")); r.status != scep.SUCCESS {
		t.Fatalf("renewal after refused attempts: %s %s", r.status, r.failInfo)
	}
}

func TestOnIssuedErrorFailsIssuance(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	current, currentKey := e.enrolled(t, tenantA, "device-h")
	hookErr := errors.New("enrolment store unavailable")
	e.hookErr.Store(&hookErr)

	d := newDevice(t, rsaKey(t, 2048))
	challenge := e.challenge(tenantA, "x")
	if code, _ := postPKI(t, e.url(tenantA), d.request(t, ra, scep.PKCSReq, subject("d"), challenge)); code != http.StatusInternalServerError {
		t.Errorf("PKCSReq with a failing hook: HTTP %d, want 500", code)
	}
	renew := renewer(t, current, currentKey)
	if code, _ := postPKI(t, e.url(tenantA), renew.request(t, ra, scep.RenewalReq, subject("device-h"), "")); code != http.StatusInternalServerError {
		t.Errorf("RenewalReq with a failing hook: HTTP %d, want 500", code)
	}

	// Once the hook works again the devices can still enrol and renew: the
	// failed attempts spent neither the challenge nor the claim.
	e.hookErr.Store(nil)
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, subject("d"), challenge)); r.status != scep.SUCCESS {
		t.Fatalf("enrolment after the hook recovered: %s %s", r.status, r.failInfo)
	}
	if r := renew.enrol(t, e.url(tenantA), ca, renew.request(t, ra, scep.RenewalReq, subject("device-h"), "")); r.status != scep.SUCCESS {
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
	ra := e.raCert(tenantA)
	key := ecKey(t, elliptic.P256())
	d := newDevice(t, key) // enrols with an RSA signer, for an EC certificate
	enrolled := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, subject("device-ec"), e.challenge(tenantA, "enrol-ec")))
	if enrolled.status != scep.SUCCESS {
		t.Fatalf("enrolling: %s %s", enrolled.status, enrolled.failInfo)
	}

	renew := &device{csrKey: ecKey(t, elliptic.P256()), signerCert: enrolled.cert, signerKey: key}
	for range 2 {
		r := renew.enrol(t, e.url(tenantA), ca, renew.request(t, ra, scep.RenewalReq, subject("device-ec"), ""))
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

// TestResentRenewalGetsTheSameCertificate: a device that lost the reply to
// its RenewalReq sends it again (RFC 8894 section 3.3.1), signed by the
// certificate the first sending renewed, and gets the certificate issued
// then, with no second issuance, rather than a refusal for a spent claim.
// The same transaction with another key or another signer, or after the
// window, is refused.
func TestResentRenewalGetsTheSameCertificate(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newTestEnvOn(t, st)
		ca := e.cas[tenantA].Certificate()
		ra := e.raCert(tenantA)
		oldCert, oldKey := e.enrolled(t, tenantA, "device-r")
		// Another certificate of the same name, no longer current.
		otherCert, otherKey := e.enrolled(t, tenantA, "device-r")
		if err := ReleaseCertificate(context.Background(), e.settings, tenantA, otherCert.SerialNumber); err != nil {
			t.Fatal(err)
		}

		d := renewer(t, oldCert, oldKey)
		req := d.request(t, ra, scep.RenewalReq, subject("device-r"), "")
		tid := transactionID(t, req)
		first := d.enrol(t, e.url(tenantA), ca, req)
		if first.status != scep.SUCCESS {
			t.Fatalf("renewal: %s %s", first.status, first.failInfo)
		}
		issued := e.issuedCount()

		// The same message again, and the request built again (new nonce,
		// new envelope) for the same key.
		for name, body := range map[string][]byte{
			"the same message":  req,
			"a rebuilt message": d.request(t, ra, scep.RenewalReq, subject("device-r"), ""),
		} {
			again := d.enrol(t, e.url(tenantA), ca, body)
			if again.status != scep.SUCCESS {
				t.Fatalf("%s resent: %s %s, want SUCCESS", name, again.status, again.failInfo)
			}
			if !again.cert.Equal(first.cert) {
				t.Errorf("%s resent got another certificate than the first sending", name)
			}
			if len(again.certs) != 2 || !again.certs[1].Equal(e.cas[tenantA].issuer.cert) {
				t.Errorf("%s resent: the reply does not carry the issuing CA", name)
			}
		}
		if e.issuedCount() != issued {
			t.Errorf("the resends were issued again (OnIssued ran %d more times)", e.issuedCount()-issued)
		}

		refused := map[string]*device{
			"another key, same transaction":    {csrKey: rsaKey(t, 2048), signerCert: oldCert, signerKey: oldKey},
			"another signer, same transaction": {csrKey: d.csrKey, signerCert: otherCert, signerKey: otherKey},
		}
		for name, r := range refused {
			body := r.requestInTransaction(t, ra, scep.RenewalReq, subject("device-r"), "", tid)
			if got := r.enrol(t, e.url(tenantA), ca, body); got.status != scep.FAILURE || got.failInfo != scep.BadMessageCheck {
				t.Errorf("%s: %s failInfo %q, want FAILURE badMessageCheck", name, got.status, string(got.failInfo))
			}
		}
		body := d.requestInTransaction(t, ra, scep.RenewalReq, subject("device-r"), "", "another-transaction")
		if got := d.enrol(t, e.url(tenantA), ca, body); got.status != scep.FAILURE || got.failInfo != scep.BadMessageCheck {
			t.Errorf("same key and signer, another transaction: %s failInfo %q, want FAILURE badMessageCheck", got.status, string(got.failInfo))
		}
		// The resend rebuilt by hand in the same transaction is accepted,
		// so the refusals above are for what differs.
		if got := d.enrol(t, e.url(tenantA), ca, d.requestInTransaction(t, ra, scep.RenewalReq, subject("device-r"), "", tid)); got.status != scep.SUCCESS || !got.cert.Equal(first.cert) {
			t.Errorf("the resend built by hand: %s %s, want SUCCESS with the first certificate", got.status, got.failInfo)
		}

		e.offset.Store(int64(resendWindow + time.Minute))
		if late := d.enrol(t, e.url(tenantA), ca, req); late.status != scep.FAILURE || late.failInfo != scep.BadMessageCheck {
			t.Errorf("a resend after the window: %s failInfo %q, want FAILURE badMessageCheck", late.status, string(late.failInfo))
		}
		// The two enrolments' resend records and the renewal's go.
		if n, err := PurgeExpiredChallenges(context.Background(), st, e.now()); err != nil || n != 3 {
			t.Errorf("purging after the window: %d, %v; want the 3 resend records", n, err)
		}
		if _, err := e.settings.Get(context.Background(), renewedSettingKey(tenantA, oldCert.SerialNumber)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the renewal's resend record survived the purge: %v", err)
		}
		e.offset.Store(0)
		if e.issuedCount() != issued {
			t.Errorf("a refused resend was issued a certificate (OnIssued ran %d more times)", e.issuedCount()-issued)
		}

		// The resends left the renewed certificate's own renewal alone.
		next := renewer(t, first.cert, d.csrKey.(*rsa.PrivateKey))
		if r := next.enrol(t, e.url(tenantA), ca, next.request(t, ra, scep.RenewalReq, subject("device-r"), "")); r.status != scep.SUCCESS {
			t.Errorf("renewing the renewed certificate: %s %s", r.status, r.failInfo)
		}
	})
}
