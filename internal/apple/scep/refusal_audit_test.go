package scep

import (
	"testing"

	"github.com/smallstep/scep"
)

// TestRefusalsNameTheirCodeAndEnrolment: OnRefused, which Steward audits,
// is told a refusal's fixed code and, once the challenge named one, the
// enrolment the request was for; a hook's refusal leaves the shared
// refusal values untouched.
func TestRefusalsNameTheirCodeAndEnrolment(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	key := rsaKey(t, 2048)
	last := func() Refused {
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(e.refusals) == 0 {
			t.Fatal("OnRefused was not called")
		}
		return e.refusals[len(e.refusals)-1]
	}

	d := newDevice(t, key)
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, subject("d"), "not-a-challenge")); r.status != scep.FAILURE {
		t.Fatalf("an unknown challenge: %s", r.status)
	}
	if got := last(); got.Code != "challenge_unusable" || got.EnrolmentID != "" || got.TenantID != tenantA {
		t.Errorf("an unknown challenge was reported as %+v", got)
	}

	var hookErr error = Refuse("enrolment_revoked", "the enrolment link was revoked")
	e.hookErr.Store(&hookErr)
	defer e.hookErr.Store(nil)
	d = newDevice(t, key)
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, subject("d"), e.challenge(tenantA, "enrol-7"))); r.status != scep.FAILURE {
		t.Fatalf("a request the hook refused: %s", r.status)
	}
	if got := last(); got.Code != "enrolment_revoked" || got.EnrolmentID != "enrol-7" || got.Reason != "the enrolment link was revoked" {
		t.Errorf("the hook's refusal was reported as %+v", got)
	}
	if hookErr.(*RefusalError).enrolmentID != "" || errChallenge.enrolmentID != "" {
		t.Error("a shared refusal value was changed")
	}
}
