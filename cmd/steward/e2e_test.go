package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// waitFor polls buf until re matches, returning the submatches.
func waitFor(t *testing.T, buf *lockedBuffer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s in:\n%s", re, buf.String())
	return nil
}

// cli runs one steward command in-process.
func cli(t *testing.T, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	var out, errb lockedBuffer
	root := newRoot()
	root.SetArgs(args)
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	root.SetIn(stdin)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func mustCLI(t *testing.T, stdin io.Reader, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, stdin, args...)
	if err != nil {
		t.Fatalf("steward %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// TestEndToEnd runs the server and drives it with the CLI the way an
// operator would: bootstrap, login with MFA enrolment, tenants, tokens, and
// the audit log's export and offline verification, including tampering.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("STEWARD_CREDENTIALS", filepath.Join(dir, "credentials.json"))
	t.Setenv("STEWARD_TOKEN", "")
	t.Setenv("STEWARD_SERVER", "")
	data := filepath.Join(dir, "data")

	ctx, cancel := context.WithCancel(context.Background())
	var serveOut lockedBuffer
	served := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetArgs([]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--log-level", "warn", "--apns-endpoint", "https://127.0.0.1:1"})
		root.SetOut(&serveOut)
		root.SetErr(&serveOut)
		served <- root.ExecuteContext(ctx)
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	fp := waitFor(t, &serveOut, regexp.MustCompile(`(SHA256:[0-9a-f]{64})`))[1]
	url := "https://" + waitFor(t, &serveOut, regexp.MustCompile(`listening on https://(\S+)`))[1]
	code := waitFor(t, &serveOut, regexp.MustCompile(`--code (stb_\S+)`))[1]
	remote := []string{"--server", url, "--fingerprint", fp}

	// Health endpoints.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := insecure.Get(url + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}

	const pw = "Meridian-Cobalt-Fennel-55"
	mustCLI(t, strings.NewReader(pw+"\n"), append([]string{"admin", "bootstrap", "--code", code, "--organisation", "E2E Org",
		"--email", "eve@e2e.test", "--name", "Eve Tester"}, remote...)...)
	if _, _, err := cli(t, strings.NewReader(pw+"\n"), append([]string{"admin", "bootstrap", "--code", code, "--organisation", "Again",
		"--email", "mallory@e2e.test", "--name", "Mallory"}, remote...)...); err == nil {
		t.Fatal("a bootstrap code worked twice")
	}

	// Login enrols an authenticator: answer the prompts as a person would.
	signIn(t, remote, "eve@e2e.test", pw)
	if fi, err := os.Stat(filepath.Join(dir, "credentials.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}

	var tenant struct {
		Items []struct{ ID string } `json:"items"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "tenant", "create", "Acme Customer", "--json")), &tenant); err != nil || len(tenant.Items) != 1 {
		t.Fatalf("tenant create: %v", err)
	}
	if out := mustCLI(t, nil, "tenant", "list"); !strings.Contains(out, "acme-customer") {
		t.Fatalf("tenant list: %s", out)
	}
	if _, _, err := cli(t, nil, "tenant", "delete", "--tenant", tenant.Items[0].ID); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("tenant delete without --yes: %v", err)
	}
	if out := mustCLI(t, nil, "tenant", "list"); !strings.Contains(out, "acme-customer") {
		t.Fatalf("tenant delete without --yes deleted the tenant: %s", out)
	}
	mustCLI(t, nil, "tenant", "delete", "--tenant", tenant.Items[0].ID, "--yes")
	if out := mustCLI(t, nil, "tenant", "list"); strings.Contains(out, "acme-customer") {
		t.Fatalf("tenant delete --yes left the tenant: %s", out)
	}
	token := strings.TrimSpace(mustCLI(t, nil, "token", "create", "e2e-auditor", "--role", "auditor"))
	if !strings.HasPrefix(token, "stt_") {
		t.Fatalf("token: %q", token)
	}
	if out := mustCLI(t, nil, "audit", "list", "--token", token, "--action", "tenant.*"); !strings.Contains(out, "tenant.create") {
		t.Fatalf("audit list with the token: %s", out)
	}
	if _, _, err := cli(t, nil, "tenant", "create", "Nope", "--token", token); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("auditor token created a tenant: %v", err)
	}

	mustCLI(t, nil, "audit", "checkpoint")
	export := filepath.Join(dir, "audit.jsonl")
	mustCLI(t, nil, "audit", "export", "--out", export)
	keyFile := filepath.Join(dir, "audit.pem")
	if err := os.WriteFile(keyFile, []byte(mustCLI(t, nil, "audit", "public-key")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustCLI(t, nil, "audit", "verify", "--file", export, "--public-key", keyFile); !strings.HasPrefix(out, "OK") {
		t.Fatalf("verify export: %s", out)
	}
	if out := mustCLI(t, nil, "audit", "verify"); !strings.HasPrefix(out, "OK") {
		t.Fatalf("verify via API: %s", out)
	}
	if out := mustCLI(t, nil, "audit", "verify", "--direct", "--data", data); !strings.Contains(out, "OK") {
		t.Fatalf("verify direct: %s", out)
	}

	// Alter one recorded action in the export: verification names it.
	raw, _ := os.ReadFile(export)
	tampered := strings.Replace(string(raw), `"action":"tenant.create"`, `"action":"tenant.read"`, 1)
	if tampered == string(raw) {
		t.Fatal("export holds no tenant.create entry to tamper with")
	}
	bad := filepath.Join(dir, "tampered.jsonl")
	_ = os.WriteFile(bad, []byte(tampered), 0o600)
	out, _, err := cli(t, nil, "audit", "verify", "--file", bad, "--public-key", keyFile)
	if err == nil || !strings.Contains(out, "FAIL") || !strings.Contains(out, "altered") {
		t.Fatalf("tampered export verified: %v %s", err, out)
	}

	privacyEndToEnd(t, dir, data, keyFile)

	mustCLI(t, nil, "logout")
	if _, _, err := cli(t, nil, append([]string{"tenant", "list"}, remote...)...); err == nil {
		t.Fatal("tenant list worked after logout")
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	var check func(c *cobra.Command)
	check = func(c *cobra.Command) {
		if c.Short == "" {
			t.Errorf("%q has no help text", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			check(sub)
		}
	}
	check(newRoot())
}

// privacyEndToEnd drives the privacy commands against the running server.
func privacyEndToEnd(t *testing.T, dir, data, auditKey string) {
	t.Helper()
	if out := mustCLI(t, nil, "privacy", "catalogue"); !strings.Contains(out, "device.serial_number") {
		t.Fatalf("catalogue: %s", out)
	}
	var people struct {
		Items []struct{ ID string } `json:"items"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "person", "create", "erika@e2e.test", "--name", "Erika E2E", "--json")), &people); err != nil || len(people.Items) != 1 {
		t.Fatalf("person create: %v", err)
	}
	person := people.Items[0].ID
	if _, _, err := cli(t, nil, "person", "update", person); err == nil || !strings.Contains(err.Error(), "nothing to change") {
		t.Fatalf("person update without a change: %v", err)
	}
	if out := mustCLI(t, nil, "person", "update", person, "--managed-apple-id", "erika@appleid.e2e.test"); !strings.Contains(out, person) {
		t.Fatalf("person update: %s", out)
	}
	device := strings.TrimSpace(mustCLI(t, nil, "device", "register", "--ownership", "personal", "--platform", "ios", "--person", person))
	if out := mustCLI(t, nil, "privacy", "settings"); !strings.Contains(out, "location") || !strings.Contains(out, "Outbound flows: asset_sync=off") {
		t.Fatalf("settings: %s", out)
	}
	out := mustCLI(t, nil, "privacy", "policy", "--ownership", "personal", "--category", "location", "--mode", "hide", "--reason", "lost-device process")
	m := regexp.MustCompile(`approval (\S+) waits`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("widening did not ask for approval: %s", out)
	}
	if _, _, err := cli(t, nil, "privacy", "approve", m[1]); err == nil || !strings.Contains(err.Error(), "second admin") {
		t.Fatalf("the requester approved their own widening: %v", err)
	}
	record := filepath.Join(dir, "record.md")
	mustCLI(t, nil, "privacy", "record", "--out", record)
	if b, _ := os.ReadFile(record); !strings.Contains(string(b), "Record of processing activities") {
		t.Fatalf("record: %s", b)
	}
	archive := filepath.Join(dir, "export.zip")
	if out := mustCLI(t, nil, "person", "export", person, "--reason", "subject access request of 2026-12-01", "--out", archive); !strings.Contains(out, "Archive password") {
		t.Fatalf("export: %s", out)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Fatalf("export file: %v %v", fi, err)
	}
	if out := mustCLI(t, nil, "person", "access-record", person); !strings.Contains(out, "export") {
		t.Fatalf("access record: %s", out)
	}
	mustCLI(t, nil, "device", "show", device)
	rotated := mustCLI(t, nil, "keys", "rotate", "--data", data)
	if !strings.Contains(rotated, `"data_keys":2`) {
		t.Fatalf("keys rotate while serving: %s", rotated)
	}
	cert := filepath.Join(dir, "erasure.json")
	if out := mustCLI(t, nil, "person", "erase", person, "--reason", "Art 17 request from the employee", "--certificate", cert); !strings.Contains(out, "Erased") {
		t.Fatalf("erase: %s", out)
	}
	if out := mustCLI(t, nil, "privacy", "verify-certificate", "--file", cert, "--public-key", auditKey); !strings.Contains(out, "Valid deletion certificate") {
		t.Fatalf("verify certificate: %s", out)
	}
	if out := mustCLI(t, nil, "person", "list"); !strings.Contains(out, "erased") {
		t.Fatalf("person list after erasure: %s", out)
	}
	// Two simulated iPhones enrol through the real protocol and answer commands.
	out = mustCLI(t, nil, "simulate", "apple", "--setup", "-n", "2", "-c", "2", "-t", "300ms", "--keys", "1", "--ec-identity")
	for _, want := range []string{"notice and profile (invitation, consent, signed profile): 2 ok, 0 failed", "enrolment (SCEP, Authenticate, TokenUpdate): 2 ok, 0 failed", "idle check-ins:", "2 devices in"} {
		if !strings.Contains(out, want) {
			t.Fatalf("simulate: %q missing from\n%s", want, out)
		}
	}
	// The last phase queued SecurityInfo for both; the devices stopped
	// before asking for it, so an admin can still cancel it.
	phones := itemIDs(t, mustCLI(t, nil, "device", "list", "--platform", "ios", "--state", "enrolled", "--json"))
	if len(phones) != 2 {
		t.Fatalf("device list: %v, want the two simulated iPhones", phones)
	}
	phone := phones[0]
	var cmds api.List[api.CommandView]
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "device", "commands", "list", phone, "--json")), &cmds); err != nil || len(cmds.Items) == 0 {
		t.Fatalf("device commands list: %+v, %v", cmds, err)
	}
	last := cmds.Items[len(cmds.Items)-1]
	if last.RequestType != "SecurityInfo" || last.State != "queued" {
		t.Fatalf("the last command is %s, %s; want the queued SecurityInfo", last.RequestType, last.State)
	}
	out = mustCLI(t, nil, "device", "commands", "cancel", phone, last.ID, "--reason", "not needed after all")
	if !strings.Contains(out, "cancelled") || !strings.Contains(out, "cancelled by an administrator: not needed after all") {
		t.Fatalf("device commands cancel: %s", out)
	}
	// Whether an account used a device is a question about a person: it
	// needs a reason, and goes to the access record of the person it names.
	if _, _, err := cli(t, nil, "device", "user-channels", "list", phone, "--account", "jdoe"); err == nil || !strings.Contains(err.Error(), "--reason is required") {
		t.Fatalf("device user-channels list --account without --reason: %v", err)
	}
	var jonas api.List[api.SubjectView]
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "person", "create", "jonas@e2e.test", "--json")), &jonas); err != nil || len(jonas.Items) != 1 {
		t.Fatalf("person create: %+v, %v", jonas, err)
	}
	const why = "ticket 4711: the VPN profile is missing"
	var users api.List[api.UserChannelView]
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "device", "user-channels", "list", phone, "--account", "jonas@e2e.test", "--reason", why, "--json")), &users); err != nil || len(users.Items) != 0 {
		t.Fatalf("device user-channels of an iPhone: %+v, %v", users, err)
	}
	if out := mustCLI(t, nil, "person", "access-record", jonas.Items[0].ID); !strings.Contains(out, mdm.AccountLookupAccess) || !strings.Contains(out, why) {
		t.Fatalf("the access record of the person looked up: %s", out)
	}
}
