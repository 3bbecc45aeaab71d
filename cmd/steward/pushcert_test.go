package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/sim"
)

// pushCertFiles writes a generated push certificate for topic, valid until
// notAfter, as PEM (certificate and key) and as PKCS#12 with password; it
// returns their paths and the certificate's end as it is encoded.
func pushCertFiles(t *testing.T, dir, name, topic string, notAfter time.Time, password string) (pemPath, p12Path string, end time.Time) {
	t.Helper()
	data, err := sim.PushCertificatePEMValid(topic, time.Now().Add(-time.Hour), notAfter)
	if err != nil {
		t.Fatal(err)
	}
	var cert *x509.Certificate
	var key any
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			cert, err = x509.ParseCertificate(b.Bytes)
		} else {
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	p12, err := pkcs12.Modern.Encode(key, cert, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	pemPath, p12Path = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".p12")
	if err := os.WriteFile(pemPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p12Path, p12, 0o600); err != nil {
		t.Fatal(err)
	}
	return pemPath, p12Path, cert.NotAfter
}

func showPushCert(t *testing.T) api.PushCertificateView {
	t.Helper()
	var v api.PushCertificateView
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "push-certificate", "show", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPushCertificateCommands uploads push certificates with the CLI to a
// served instance: PEM, PEM with a separate key, PKCS#12 with its password
// on standard input or in the environment, a wrong password, a topic change
// refused while a device is enrolled and forced with --replace-topic, and
// show on an expiring and on an expired certificate, whose exit status
// tells monitoring scripts.
func TestPushCertificateCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("serves an instance and enrols a device")
	}
	dir := t.TempDir()
	fleetServer(t, dir)
	t.Setenv(pushCertPasswordEnv, "")
	os.Unsetenv(pushCertPasswordEnv)

	if _, _, err := cli(t, nil, "push-certificate", "show"); err == nil ||
		!strings.Contains(err.Error(), "upload the organisation's Apple push certificate first") || !strings.Contains(err.Error(), "push-certificate set") {
		t.Fatalf("show without a certificate: %v", err)
	}

	topicA := "com.apple.mgmt.External." + uuid.NewString()
	const pw = "  Tide-Marble 7 " // spaces are part of a password
	pemA, p12A, endA := pushCertFiles(t, dir, "a", topicA, time.Now().Add(365*24*time.Hour), pw)

	// PEM, as a table.
	out := mustCLI(t, nil, "push-certificate", "set", pemA)
	for _, want := range []string{topicA, endA.UTC().Format("2006-01-02 15:04 UTC"), "days left", "364", "health", "ok"} {
		if !strings.Contains(out, want) {
			t.Fatalf("set PEM: %q missing from\n%s", want, out)
		}
	}
	if v := showPushCert(t); v.Topic != topicA || !v.NotAfter.Equal(endA) || v.Health != "ok" || v.DaysLeft != 364 {
		t.Fatalf("show after the PEM upload: %+v", v)
	}
	if out := mustCLI(t, nil, "push-certificate", "show"); !strings.Contains(out, topicA) || !strings.Contains(out, "ok") {
		t.Fatalf("show as a table: %s", out)
	}

	// PKCS#12 (a renewal: same topic, another end), its password on stdin.
	_, p12Renewed, endRenewed := pushCertFiles(t, dir, "a-renewed", topicA, time.Now().Add(300*24*time.Hour), pw)
	if _, _, err := cli(t, strings.NewReader(pw+"x\n"), "push-certificate", "set", p12Renewed); err == nil ||
		!strings.Contains(err.Error(), "wrong password for the PKCS#12 push certificate") {
		t.Fatalf("a wrong password: %v", err)
	}
	if _, _, err := cli(t, strings.NewReader(""), "push-certificate", "set", p12Renewed); err == nil || !strings.Contains(err.Error(), pushCertPasswordEnv) {
		t.Fatalf("no password at all: %v", err)
	}
	if v := showPushCert(t); !v.NotAfter.Equal(endA) {
		t.Fatalf("a refused upload replaced the certificate: %+v", v)
	}
	var set api.PushCertificateView
	if err := json.Unmarshal([]byte(mustCLI(t, strings.NewReader(pw+"\r\n"), "push-certificate", "set", p12Renewed, "--json")), &set); err != nil {
		t.Fatal(err)
	}
	if set.Topic != topicA || !set.NotAfter.Equal(endRenewed) || set.Health != "ok" {
		t.Fatalf("set PKCS#12 --json: %+v", set)
	}
	// The password from the environment; stdin is not read.
	t.Setenv(pushCertPasswordEnv, pw)
	if out := mustCLI(t, strings.NewReader("not the password\n"), "push-certificate", "set", p12A); !strings.Contains(out, topicA) {
		t.Fatalf("set PKCS#12, password from the environment: %s", out)
	}
	if v := showPushCert(t); !v.NotAfter.Equal(endA) {
		t.Fatalf("after the upload with the password from the environment: %+v", v)
	}
	os.Unsetenv(pushCertPasswordEnv)

	// A device enrols under topic A; a certificate for topic B is refused,
	// in the API's words, until --replace-topic.
	if out := mustCLI(t, nil, "simulate", "apple", "--setup", "-n", "1", "-c", "1", "--keys", "1", "--ec-identity"); !strings.Contains(out, "1 ok, 0 failed") {
		t.Fatalf("simulate: %s", out)
	}
	topicB := "com.apple.mgmt.External." + uuid.NewString()
	pemB, _, endB := pushCertFiles(t, dir, "b", topicB, time.Now().Add(365*24*time.Hour), "")
	_, _, err := cli(t, nil, "push-certificate", "set", pemB)
	if err == nil || !strings.Contains(err.Error(), "this certificate is for topic "+topicB+", but the 1 enrolled Apple devices on "+topicA+
		" would stop receiving pushes") || !strings.Contains(err.Error(), "--replace-topic") {
		t.Fatalf("a topic change without --replace-topic: %v", err)
	}
	if v := showPushCert(t); v.Topic != topicA {
		t.Fatalf("the refused topic change went through: %+v", v)
	}
	out, errOut, err := cli(t, nil, "push-certificate", "set", pemB, "--replace-topic")
	if err != nil || !strings.Contains(out, topicB) || !strings.Contains(errOut, "changed from "+topicA+" to "+topicB) ||
		!strings.Contains(errOut, "must enrol again") {
		t.Fatalf("set --replace-topic: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	if v := showPushCert(t); v.Topic != topicB || !v.NotAfter.Equal(endB) {
		t.Fatalf("after --replace-topic: %+v", v)
	}

	// The certificate's key in a file of its own.
	certOnly, keyOnly := filepath.Join(dir, "b-cert.pem"), filepath.Join(dir, "b-key.pem")
	whole, _ := os.ReadFile(pemB)
	i := strings.Index(string(whole), "-----BEGIN PRIVATE KEY")
	writeFile(t, dir, "b-cert.pem", string(whole[:i]))
	writeFile(t, dir, "b-key.pem", string(whole[i:]))
	if _, _, err := cli(t, nil, "push-certificate", "set", certOnly); err == nil || !strings.Contains(err.Error(), "no private key found") {
		t.Fatalf("a PEM certificate without its key: %v", err)
	}
	if out := mustCLI(t, nil, "push-certificate", "set", certOnly, "--key", keyOnly); !strings.Contains(out, topicB) {
		t.Fatalf("set with --key: %s", out)
	}

	// Expiring: shown in words, exit status 0.
	pemSoon, _, endSoon := pushCertFiles(t, dir, "soon", topicB, time.Now().Add(10*24*time.Hour), "")
	if out := mustCLI(t, nil, "push-certificate", "set", pemSoon); !strings.Contains(out, "expiring: 9 days left") {
		t.Fatalf("set an expiring certificate: %s", out)
	}
	out, _, err = cli(t, nil, "push-certificate", "show")
	if err != nil || !strings.Contains(out, "expiring: 9 days left") || !strings.Contains(out, "renew it with Apple") ||
		!strings.Contains(out, endSoon.UTC().Format("2006-01-02 15:04 UTC")) {
		t.Fatalf("show an expiring certificate: %v\n%s", err, out)
	}
	if v := showPushCert(t); v.Health != "expiring" || !v.Warning || v.DaysLeft != 9 {
		t.Fatalf("show --json on an expiring certificate: %+v", v)
	}

	// Expired (uploaded while valid): the status is printed, and show fails.
	pemLapsing, _, endLapsing := pushCertFiles(t, dir, "lapsing", topicB, time.Now().Add(3*time.Second), "")
	mustCLI(t, nil, "push-certificate", "set", pemLapsing)
	time.Sleep(time.Until(endLapsing) + 100*time.Millisecond)
	out, _, err = cli(t, nil, "push-certificate", "show")
	if err == nil || !strings.Contains(err.Error(), "expired on") || !strings.Contains(out, "expired: no device is woken") || !strings.Contains(out, "-1") {
		t.Fatalf("show an expired certificate: %v\n%s", err, out)
	}
	out, _, err = cli(t, nil, "push-certificate", "show", "--json")
	var v api.PushCertificateView
	if err == nil || json.Unmarshal([]byte(out), &v) != nil || v.Health != "expired" || !v.Expired {
		t.Fatalf("show --json an expired certificate: %v\n%s", err, out)
	}
}

// TestPushCertificateLocalRefusals: what cannot be a push certificate is
// refused before any password prompt or request.
func TestPushCertificateLocalRefusals(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("STEWARD_SERVER", "")
	t.Setenv("STEWARD_CREDENTIALS", filepath.Join(dir, "none.json"))
	pemPath, p12Path, _ := pushCertFiles(t, dir, "c", "com.apple.mgmt.External."+uuid.NewString(), time.Now().Add(time.Hour), "pw")
	whole, _ := os.ReadFile(pemPath)
	block, _ := pem.Decode(whole)
	der := filepath.Join(dir, "c.cer")
	if err := os.WriteFile(der, block.Bytes, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{der}, "without its private key"},
		{[]string{writeFile(t, dir, "notes.txt", "hello")}, "neither PEM nor PKCS#12"},
		{[]string{writeFile(t, dir, "empty.pem", "")}, "empty"},
		{[]string{p12Path, "--key", pemPath}, "--key goes with a PEM certificate"},
		{[]string{pemPath, "--key", p12Path}, "not a PEM file"},
		{[]string{filepath.Join(dir, "missing.pem")}, "no such file"},
		{[]string{writeFile(t, dir, "huge.pem", strings.Repeat("A", 70<<10))}, "larger than"},
	} {
		_, _, err := cli(t, nil, append([]string{"push-certificate", "set"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("set %v: %v; want %q", c.args, err, c.want)
		}
	}
	// No password flag: its value would show in ps and the shell's history.
	if _, _, err := cli(t, nil, "push-certificate", "set", p12Path, "--password", "pw"); err == nil || !strings.Contains(err.Error(), "unknown flag") {
		t.Errorf("--password: %v", err)
	}
}

// TestPushCertificateFailure: show's exit status for monitoring.
func TestPushCertificateFailure(t *testing.T) {
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    api.PushCertificateView
		want string // "" for none
	}{
		{api.PushCertificateView{Topic: "t", NotAfter: at, DaysLeft: 200, Health: "ok"}, ""},
		{api.PushCertificateView{Topic: "t", NotAfter: at, DaysLeft: 3, Warning: true, Health: "expiring"}, ""},
		{api.PushCertificateView{Topic: "t", NotAfter: at, DaysLeft: -1, Warning: true, Expired: true, Health: "expired"}, "expired on 2026-05-01"},
		{api.PushCertificateView{Topic: "t", NotAfter: at, DaysLeft: 90, Health: "refused", Refused: true,
			LastError: &api.PushCertificateError{Status: 403, Reason: "BadCertificate", At: at}}, "APNs refuses the push certificate for t (BadCertificate)"},
	} {
		err := pushCertificateFailure(c.v)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v; want %q", c.v.Health, err, c.want)
		}
	}
	var out strings.Builder
	cmd := newRoot()
	cmd.SetOut(&out)
	since := at.Add(-time.Hour)
	v := api.PushCertificateView{Topic: "t", NotAfter: at, DaysLeft: 90, Health: "refused", Refused: true, FailingSince: &since,
		LastError: &api.PushCertificateError{Status: 403, Reason: "BadCertificate", APNsID: "apns-1", At: at}}
	if err := printPushCertificate(&remote{}, cmd, v); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"refused: APNs refuses", "403 BadCertificate, last at 2026-05-01T00:00:00Z (apns-id apns-1)", "failing since", "2026-04-30T23:00:00Z"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("%q missing from\n%s", want, out.String())
		}
	}
}
