package mdm_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/apple/certtest"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// operatorSigner makes a root, an intermediate under it and a leaf under
// that, valid until notAfter with the given key usage, as a public CA's
// certificate chain would come.
func operatorSigner(t *testing.T, notAfter time.Time, usage x509.KeyUsage) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	root, rootKey := certtest.IssueUntil(t, "Public Root", true, notAfter, x509.KeyUsageCertSign, nil, nil)
	mid, midKey := certtest.IssueUntil(t, "Public Intermediate", true, notAfter, x509.KeyUsageCertSign, root, rootKey)
	leaf, leafKey := certtest.IssueUntil(t, "mdm.example.test", false, notAfter, usage, mid, midKey)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, mid.Raw}, PrivateKey: leafKey}, roots
}

// TestEnrolmentProfileSignedByTheOperatorsCertificate: with an operator's
// certificate from a CA devices trust, the enrolment profile is signed by
// it, its chain included, so the device shows it as verified; a device
// trusting only that CA enrols. Once the certificate has expired, the
// tenant's CA signs again. Certificates that cannot sign are refused at
// start.
func TestEnrolmentProfileSignedByTheOperatorsCertificate(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	var logged bytes.Buffer
	f.log = slog.New(slog.NewTextHandler(&logged, nil))
	ts := f.serve()
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(f.svc.MetricsCollector())

	expired, _ := operatorSigner(t, time.Now().Add(-time.Minute), x509.KeyUsageDigitalSignature)
	caOnly, _ := operatorSigner(t, time.Now().Add(time.Hour), x509.KeyUsageCertSign)
	for name, c := range map[string]tls.Certificate{"expired": expired, "without digital signatures": caOnly, "empty": {}} {
		if err := f.svc.SignProfilesWith(c, time.Now()); err == nil {
			t.Errorf("a signer %s was accepted", name)
		}
	}

	signer, roots := operatorSigner(t, time.Now().Add(time.Minute), x509.KeyUsageDigitalSignature)
	if err := f.svc.SignProfilesWith(signer, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.svc.SetClock(time.Now)
	trusting := func(d *sim.Device) { d.ProfileRoots = roots }
	f.enrolledWith(ts, privacy.Corporate, "", trusting)
	// The simulator accepts, besides its roots, only the tenant's CA: a
	// device without the operator's roots shows the tenant's CA did not sign.
	other, err := sim.New(ts.Client(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Enrol(f.ctx, f.invite(privacy.Corporate, ""), false); err == nil || !strings.Contains(err.Error(), "signed neither") {
		t.Fatalf("a device not trusting the operator's CA: %v, want the profile's signer refused", err)
	}

	if days := gauge(t, metrics, "steward_profile_signer_days_left"); days != 0 {
		t.Errorf("a signer valid for a minute more has %v days left", days)
	}
	if strings.Contains(logged.String(), "has expired") {
		t.Errorf("expiry logged while the signer is valid: %s", logged.String())
	}

	// Expired since: the tenant's CA signs, and a device trusting only it
	// enrols. The operator is told once, and the metric shows it.
	f.svc.SetClock(func() time.Time { return time.Now().Add(2 * time.Minute) })
	f.enrolled(ts, privacy.Corporate, "")
	f.enrolled(ts, privacy.Corporate, "")
	if n := strings.Count(logged.String(), "the profile signing certificate (--profile-signer-cert) has expired"); n != 1 {
		t.Errorf("the expired signer was logged %d times, want once: %s", n, logged.String())
	}
	if days := gauge(t, metrics, "steward_profile_signer_days_left"); days >= 0 {
		t.Errorf("an expired signer has %v days left", days)
	}
}
