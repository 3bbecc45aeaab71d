package scep

import (
	"context"
	"crypto/x509"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/scep"
)

// getCACert fetches GetCACert as a device does and returns its RA and CA.
func (e *testEnv) getCACert(t *testing.T, tenant string) (ra, ca *x509.Certificate) {
	t.Helper()
	resp, body := get(t, e.url(tenant)+"?operation=GetCACert")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-x509-ca-ra-cert" {
		t.Fatalf("GetCACert: HTTP %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	certs, err := scep.CACerts(body)
	if err != nil || len(certs) != 2 {
		t.Fatalf("GetCACert is not a certs-only CMS of the RA and the CA: %d certificates, %v", len(certs), err)
	}
	ra, ca = certs[0], certs[1]
	if !ca.IsCA || ra.IsCA || ra.KeyUsage&x509.KeyUsageKeyEncipherment == 0 || ra.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		t.Fatalf("GetCACert: want a non-CA RA for encipherment and signing, then the CA")
	}
	if err := ra.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("the RA was not issued by the CA: %v", err)
	}
	if now := time.Now(); now.Before(ra.NotBefore) || now.After(ra.NotAfter) {
		t.Fatalf("the RA is not valid now: %s to %s", ra.NotBefore, ra.NotAfter)
	}
	return ra, ca
}

// TestEnrolThroughRA: a request encrypted to the RA, alone or beside the CA
// as scepclient encrypts to every certificate of GetCACert, is answered.
// The CA key decrypts nothing, so a request encrypted to the CA alone is
// refused, and spends nothing.
func TestEnrolThroughRA(t *testing.T) {
	e := newTestEnv(t)
	ra, ca := e.getCACert(t, tenantA)
	for name, recipients := range map[string][]*x509.Certificate{"RA": {ra}, "RA and CA": {ra, ca}} {
		t.Run(name, func(t *testing.T) {
			d := newDevice(t, rsaKey(t, 2048))
			body := d.requestToAll(t, recipients, scep.PKCSReq, subject("device"), e.challenge(tenantA, "enrol-"+name))
			if r := d.enrol(t, e.url(tenantA), ca, body); r.status != scep.SUCCESS {
				t.Fatalf("status %s, failInfo %s", r.status, r.failInfo)
			}
		})
	}

	d := newDevice(t, rsaKey(t, 2048))
	challenge := e.challenge(tenantA, "enrol-ca")
	issued := e.issuedCount()
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ca, scep.PKCSReq, subject("device"), challenge)); r.status != scep.FAILURE || r.failInfo != scep.BadMessageCheck {
		t.Fatalf("request encrypted to the CA alone: %s failInfo %q, want FAILURE badMessageCheck", r.status, string(r.failInfo))
	}
	if e.issuedCount() != issued {
		t.Error("OnIssued ran for a request encrypted to the CA alone")
	}
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, subject("device"), challenge)); r.status != scep.SUCCESS {
		t.Fatalf("the challenge of the refused request, encrypted to the RA: %s %s", r.status, r.failInfo)
	}

	// Another tenant's RA opens nothing here.
	raB, _ := e.getCACert(t, tenantB)
	d = newDevice(t, rsaKey(t, 2048))
	body := d.request(t, raB, scep.PKCSReq, subject("device"), e.challenge(tenantA, "enrol-b"))
	if r := d.enrol(t, e.url(tenantA), ca, body); r.status != scep.FAILURE || r.failInfo != scep.BadMessageCheck {
		t.Fatalf("request encrypted to tenant B's RA: %s %s, want FAILURE badMessageCheck", r.status, r.failInfo)
	}
}

func TestRAGenerations(t *testing.T) {
	e := newTestEnv(t)
	first, ca := e.getCACert(t, tenantA)
	d := newDevice(t, rsaKey(t, 2048))
	enrolTo := func(recipient *x509.Certificate, enrolment string) reply {
		t.Helper()
		// The challenge outlives the clock's jumps below.
		challenge, err := issueChallenge(context.Background(), e.settings, challengeRecord{TenantID: tenantA, EnrolmentID: enrolment, Expires: time.Now().Add(3 * raPeriod)})
		if err != nil {
			t.Fatal(err)
		}
		return d.enrol(t, e.url(tenantA), ca, d.request(t, recipient, scep.PKCSReq, subject("device"), challenge))
	}

	// The next generation: a new RA, and the first still opens requests.
	e.offset.Store(int64(raPeriod))
	second, _ := e.getCACert(t, tenantA)
	if second.Equal(first) {
		t.Fatal("GetCACert serves the same RA a generation later")
	}
	if r := enrolTo(first, "enrol-previous"); r.status != scep.SUCCESS {
		t.Fatalf("request to the previous generation's RA: %s %s", r.status, r.failInfo)
	}
	if r := enrolTo(second, "enrol-current"); r.status != scep.SUCCESS {
		t.Fatalf("request to the current RA: %s %s", r.status, r.failInfo)
	}

	// Two generations on, the first RA is gone from the store.
	e.offset.Store(int64(2 * raPeriod))
	e.getCACert(t, tenantA)
	if _, err := e.settings.Get(context.Background(), raSettingKey(tenantA, raGeneration(time.Now()))); err == nil {
		t.Error("the RA of two generations ago is still stored")
	}
	if r := enrolTo(first, "enrol-stale"); r.status != scep.FAILURE || r.failInfo != scep.BadMessageCheck {
		t.Fatalf("request to an RA two generations old: %s %s, want FAILURE badMessageCheck", r.status, r.failInfo)
	}

	// A node whose clock has already turned made the next RA: this one,
	// still a generation behind, opens requests encrypted to it.
	e.offset.Store(0)
	other, err := LoadOrCreateCA(context.Background(), e.settings, e.sealer, tenantA, "Tenant "+tenantA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ahead, err := other.currentRA(context.Background(), time.Now().Add(raPeriod))
	if err != nil {
		t.Fatal(err)
	}
	if r := enrolTo(ahead.cert, "enrol-next"); r.status != scep.SUCCESS {
		t.Fatalf("request to the next generation's RA: %s %s", r.status, r.failInfo)
	}
}

// TestCertRepSignedByTheRAOfTheRequest: a device that fetched GetCACert
// just before the RA's turn sends its request just after, encrypted to the
// RA it was given. It verifies the CertRep against the certificates it
// fetched, as Apple devices and scepclient do, so the reply, a SUCCESS or
// a FAILURE made once the request is decrypted, is signed by that RA, not
// by the current one it never saw.
func TestCertRepSignedByTheRAOfTheRequest(t *testing.T) {
	e := newTestEnv(t)
	ra, ca := e.getCACert(t, tenantA)
	e.offset.Store(int64(raPeriod))
	if current, _ := e.getCACert(t, tenantA); current.Equal(ra) {
		t.Fatal("GetCACert serves the same RA a generation later")
	}
	// The challenge outlives the clock's jump.
	challenge, err := issueChallenge(context.Background(), e.settings, challengeRecord{TenantID: tenantA, EnrolmentID: "enrol-turn", Expires: time.Now().Add(3 * raPeriod)})
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, rsaKey(t, 2048))
	for _, tc := range []struct {
		name      string
		challenge string
		want      scep.PKIStatus
	}{{"success", challenge, scep.SUCCESS}, {"failure", "no-such-challenge", scep.FAILURE}} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postPKI(t, e.url(tenantA), d.request(t, ra, scep.PKCSReq, subject("device"), tc.challenge))
			if code != http.StatusOK {
				t.Fatalf("HTTP %d", code)
			}
			reply, err := scep.ParsePKIMessage(body, scep.WithCACerts([]*x509.Certificate{ra, ca}))
			if err != nil {
				t.Fatalf("the CertRep does not verify against the GetCACert answer the device holds: %v", err)
			}
			if reply.PKIStatus != tc.want {
				t.Fatalf("status %s, want %s", reply.PKIStatus, tc.want)
			}
		})
	}
}

// Nodes racing to create a generation's RA all end up with the same one.
func TestRASharedByNodes(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	at := time.Now().Add(5 * raPeriod) // a generation nobody has created yet
	certs := make([]*x509.Certificate, 4)
	var wg sync.WaitGroup
	for i := range certs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node, err := LoadOrCreateCA(ctx, e.settings, e.sealer, tenantA, "Tenant "+tenantA, time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			ra, err := node.currentRA(ctx, at)
			if err != nil {
				t.Error(err)
				return
			}
			certs[i] = ra.cert
		}()
	}
	wg.Wait()
	for _, c := range certs[1:] {
		if c == nil || !c.Equal(certs[0]) {
			t.Fatal("nodes use different RAs for the same generation")
		}
	}
}
