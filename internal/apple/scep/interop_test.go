package scep

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// scepClientBinary is micromdm's SCEP client, Debian package "scep".
const scepClientBinary = "scepclient"

// TestScepclientEnrols runs an independent SCEP implementation against the
// server: it must obtain a client certificate chained to the tenant CA.
func TestScepclientEnrols(t *testing.T) {
	bin, err := exec.LookPath(scepClientBinary)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (apt-get install -y scep): %v", scepClientBinary, err)
		}
		t.Skipf("%s not installed (apt-get install -y scep)", scepClientBinary)
	}
	e := newTestEnv(t)
	dir := t.TempDir()
	keyPath, certPath := filepath.Join(dir, "device.key"), filepath.Join(dir, "device.pem")

	// The timeout only stops a hung client; it asserts nothing about speed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"-server-url", e.url(tenantA),
		"-challenge", e.challenge(tenantA, "enrol-scepclient"),
		"-private-key", keyPath,
		"-certificate", certPath,
		"-cn", "scepclient-device",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scepclient failed: %v\n%s", err, out)
	}

	pemBytes, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatalf("scepclient wrote no certificate: %v\n%s", err, out)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: e.cas[tenantA].Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("scepclient's certificate does not chain to the tenant CA for clientAuth: %v", err)
	}
	if cert.Subject.CommonName != "scepclient-device" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	got := e.lastIssued()
	if got.enrolmentID != "enrol-scepclient" || !got.cert.Equal(cert) {
		t.Errorf("OnIssued got enrolment %q; want enrol-scepclient and the certificate scepclient saved", got.enrolmentID)
	}
}
