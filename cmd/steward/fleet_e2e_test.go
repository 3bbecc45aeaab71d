package main

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/client"
	"github.com/steward-mdm/steward/internal/iam/totp"
)

// fleetServer serves a fresh instance, bootstraps its owner and signs them
// in. It returns the flags that reach the server.
func fleetServer(t *testing.T, dir string) []string {
	t.Helper()
	t.Setenv("STEWARD_CREDENTIALS", filepath.Join(dir, "owner.json"))
	t.Setenv("STEWARD_TOKEN", "")
	t.Setenv("STEWARD_SERVER", "")
	ctx, cancel := context.WithCancel(context.Background())
	var serveOut lockedBuffer
	served := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetArgs([]string{"serve", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--log-level", "warn",
			"--apns-endpoint", "https://127.0.0.1:1"})
		root.SetOut(&serveOut)
		root.SetErr(&serveOut)
		served <- root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	fp := waitFor(t, &serveOut, regexp.MustCompile(`(SHA256:[0-9a-f]{64})`))[1]
	url := "https://" + waitFor(t, &serveOut, regexp.MustCompile(`listening on https://(\S+)`))[1]
	code := waitFor(t, &serveOut, regexp.MustCompile(`--code (stb_\S+)`))[1]
	remote := []string{"--server", url, "--fingerprint", fp}
	mustCLI(t, strings.NewReader(fleetPassword+"\n"), append([]string{"admin", "bootstrap", "--code", code, "--organisation", "Fleet Org",
		"--email", "owner@fleet.test", "--name", "Olga Owner"}, remote...)...)
	signIn(t, remote, "owner@fleet.test", fleetPassword)
	return remote
}

const fleetPassword = "Juniper-Quartz-Harbour-81"

// signIn logs in as email, enrolling an authenticator as a person would,
// and keeps the session in the current STEWARD_CREDENTIALS file.
func signIn(t *testing.T, remote []string, email, password string) {
	t.Helper()
	stdinR, stdinW := io.Pipe()
	var loginOut, loginErr lockedBuffer
	done := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetArgs(append([]string{"login", "--email", email}, remote...))
		root.SetIn(stdinR)
		root.SetOut(&loginOut)
		root.SetErr(&loginErr)
		done <- root.ExecuteContext(context.Background())
	}()
	_, _ = io.WriteString(stdinW, password+"\n")
	key := waitFor(t, &loginErr, regexp.MustCompile(`key: ([A-Z2-7]+)`))[1]
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(stdinW, totp.Code(secret, time.Now())+"\n")
	if err := <-done; err != nil {
		t.Fatalf("login %s: %v\n%s", email, err, loginErr.String())
	}
}

// itemIDs reads the IDs of a --json list.
func itemIDs(t *testing.T, out string) []string {
	t.Helper()
	var v struct {
		Items []struct{ ID string } `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not a JSON list: %v\n%s", err, out)
	}
	ids := make([]string, len(v.Items))
	for i, x := range v.Items {
		ids[i] = x.ID
	}
	return ids
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFleetEndToEnd drives the fleet commands against a served instance
// with enrolled simulated iPhones: groups, profiles, compliance, device
// search, a bulk action parked for and approved by a second admin, and a
// report.
func TestFleetEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("serves an instance and enrols devices")
	}
	dir := t.TempDir()
	remote := fleetServer(t, dir)
	if out := mustCLI(t, nil, "simulate", "apple", "--setup", "-n", "3", "-c", "3", "--keys", "1", "--ec-identity"); !strings.Contains(out, "3 ok, 0 failed") {
		t.Fatalf("simulate: %s", out)
	}
	devices := itemIDs(t, mustCLI(t, nil, "device", "list", "--json", "--state", "enrolled"))
	if len(devices) != 3 {
		t.Fatalf("want 3 enrolled devices, got %v", devices)
	}

	// Device search: filters reach the server, --all follows the cursors.
	for _, filter := range [][]string{{"--ownership", "personal"}, {"--os-min", "19"}, {"--model", "iPad"}, {"--last-seen-after", "30d"}} {
		if ids := itemIDs(t, mustCLI(t, nil, append([]string{"device", "list", "--json"}, filter...)...)); len(ids) != 0 {
			t.Fatalf("device list %v matched %v", filter, ids)
		}
	}
	out, errOut, err := cli(t, nil, "device", "list", "--platform", "ios", "--os-min", "17.4", "--model", "iPhone", "--sort", "-enrolled", "--limit", "1", "--all")
	if err != nil || strings.Count(out, "\n") != 4 || !strings.Contains(errOut, "Fetched 3 devices in 3 pages") {
		t.Fatalf("device list --all: %v\n%s\n%s", err, out, errOut)
	}
	if _, errOut, _ := cli(t, nil, "device", "list", "--limit", "2"); !strings.Contains(errOut, "--cursor") {
		t.Fatalf("a partial page did not say how to continue: %s", errOut)
	}
	if _, _, err := cli(t, nil, "device", "list", "--last-seen-before", "yesterday"); err == nil || !strings.Contains(err.Error(), "last_seen_before") {
		t.Fatalf("a bad age was not refused clearly: %v", err)
	}

	// A static group of two devices.
	group := itemIDs(t, mustCLI(t, nil, "group", "create", "Pilot", "--static", "--description", "first wave", "--json"))[0]
	if out := mustCLI(t, nil, "group", "add", group, devices[0], devices[1]); !strings.Contains(out, "Added 2 of 2") {
		t.Fatalf("group add: %s", out)
	}
	if out := mustCLI(t, nil, "group", "add", group, devices[0]); !strings.Contains(out, "Added 0 of 1 devices; 1 of them already were members") {
		t.Fatalf("group add again: %s", out)
	}
	if out := mustCLI(t, nil, "group", "remove", group, devices[1], devices[2]); !strings.Contains(out, "Removed 1 of 2 devices; 1 of them were not members") {
		t.Fatalf("group remove: %s", out)
	}
	mustCLI(t, nil, "group", "add", group, devices[1])
	if out := mustCLI(t, nil, "group", "members", group); !strings.Contains(out, devices[0]) || strings.Contains(out, devices[2]) {
		t.Fatalf("group members: %s", out)
	}
	if _, _, err := cli(t, nil, "group", "create", "Nothing"); err == nil || !strings.Contains(err.Error(), "--static") {
		t.Fatalf("a group without a kind was accepted: %v", err)
	}
	if out := mustCLI(t, nil, "group", "update", group, "--name", "Pilot wave"); !strings.Contains(out, "Pilot wave") {
		t.Fatalf("group update: %s", out)
	}
	if ids := itemIDs(t, mustCLI(t, nil, "device", "list", "--json", "--group", group)); len(ids) != 2 {
		t.Fatalf("device list --group: %v", ids)
	}

	// A profile from a definition file, assigned to the group.
	def := writeFile(t, dir, "passcode.json", `{"name":"Passcode","identifier":"com.fleet.passcode",
		"payloads":[{"type":"passcode","passcode":{"min_length":6,"allow_simple":false}}]}`)
	profile := itemIDs(t, mustCLI(t, nil, "profile", "create", "--name", "Passcode", "--definition-file", def, "--json"))[0]
	mustCLI(t, nil, "profile", "assign", profile, group)
	if out := mustCLI(t, nil, "profile", "show", profile); !strings.Contains(out, group) || !strings.Contains(out, "com.apple.mobiledevice.passwordpolicy") {
		t.Fatalf("profile show: %s", out)
	}
	if out := mustCLI(t, nil, "profile", "status", profile); !strings.Contains(out, devices[0]) || !strings.Contains(out, devices[1]) {
		t.Fatalf("profile status: %s", out)
	}

	// An uploaded .mobileconfig; updating its content keeps its name.
	custom := writeFile(t, dir, "custom.mobileconfig", customProfile("5"))
	uploaded := itemIDs(t, mustCLI(t, nil, "profile", "create", "--name", "Uploaded", "--mobileconfig", custom, "--json"))[0]
	_ = writeFile(t, dir, "custom.mobileconfig", customProfile("8"))
	if out := mustCLI(t, nil, "profile", "update", uploaded, "--mobileconfig", custom); !strings.Contains(out, "Uploaded") || !strings.Contains(out, "custom") {
		t.Fatalf("profile update: %s", out)
	}
	mustCLI(t, nil, "profile", "delete", uploaded)
	if out := mustCLI(t, nil, "profile", "list"); strings.Contains(out, uploaded) || !strings.Contains(out, profile) {
		t.Fatalf("profile list after delete: %s", out)
	}

	// A compliance policy; a misspelt rule is refused before any request.
	rules := writeFile(t, dir, "rules.json", `{"passcode_required":true,"checked_in_within_days":30}`)
	ladder := writeFile(t, dir, "ladder.json", `[{"action":"notify","after_hours":0},{"action":"mark_noncompliant","after_hours":24}]`)
	typo := writeFile(t, dir, "typo.json", `{"passcode_requried":true}`)
	if _, _, err := cli(t, nil, "compliance", "policy", "create", "--name", "Typo", "--rules-file", typo); err == nil || !strings.Contains(err.Error(), "passcode_requried") {
		t.Fatalf("a misspelt rule was not refused: %v", err)
	}
	policy := itemIDs(t, mustCLI(t, nil, "compliance", "policy", "create", "--name", "Baseline", "--platform", "ios",
		"--ownership", "corporate", "--rules-file", rules, "--ladder-file", ladder, "--json"))[0]
	if out := mustCLI(t, nil, "compliance", "policy", "update", policy, "--name", "Baseline iOS"); !strings.Contains(out, "Baseline iOS") || !strings.Contains(out, "passcode_required") {
		t.Fatalf("policy update lost the rules: %s", out)
	}
	if out := mustCLI(t, nil, "compliance", "evaluate"); !strings.Contains(out, "Evaluated 3 devices") {
		t.Fatalf("evaluate: %s", out)
	}
	if out := mustCLI(t, nil, "device", "compliance", devices[0]); !strings.Contains(out, "Overall:") || !strings.Contains(out, policy) {
		t.Fatalf("device compliance: %s", out)
	}

	// A bulk lock above the approval threshold waits for a second admin.
	mustCLI(t, nil, "device-settings", "set", "--bulk-approval-threshold", "1")
	if out := mustCLI(t, nil, "device-settings", "show"); !strings.Contains(out, "more than 1 devices") || !strings.Contains(out, "30 days") {
		t.Fatalf("device-settings: %s", out)
	}
	// --pin - asks for the PIN instead of taking it on the command line:
	// the answer reaches the server, which refuses one that is not six digits.
	if _, errOut, err := cli(t, strings.NewReader("12ab\n"), "action", "run", "lock", "--group", group, "--reason",
		"pilot devices left in a taxi", "--pin", "-"); err == nil || !strings.Contains(err.Error()+errOut, "six digits") {
		t.Fatalf("a PIN asked for and mistyped: %v %s", err, errOut)
	}
	out = mustCLI(t, strings.NewReader("482915\n"), "action", "run", "lock", "--group", group, "--reason", "pilot devices left in a taxi",
		"--message", "Call IT", "--pin", "-")
	batch := regexp.MustCompile(`Batch (\S+): lock on 2 devices`).FindStringSubmatch(out)
	approval := regexp.MustCompile(`approval: (\S+) \(until`).FindStringSubmatch(out)
	if batch == nil || approval == nil {
		t.Fatalf("the bulk lock did not wait for approval: %s", out)
	}
	if _, _, err := cli(t, nil, "action", "approve", approval[1]); err == nil {
		t.Fatal("the requester approved their own bulk action")
	}
	invite := mustCLI(t, nil, "admin", "invite", "second@fleet.test", "Sam Second", "--role", "owner")
	setup := regexp.MustCompile(`\n  (\S+)\n`).FindStringSubmatch(invite)
	if setup == nil {
		t.Fatalf("invite: %s", invite)
	}
	mustCLI(t, strings.NewReader(fleetPassword+"\n"), append([]string{"admin", "setup", "--code", setup[1]}, remote...)...)
	t.Setenv("STEWARD_CREDENTIALS", filepath.Join(dir, "second.json"))
	signIn(t, remote, "second@fleet.test", fleetPassword)
	if out := mustCLI(t, nil, "action", "approve", approval[1], "--comment", "confirmed by phone"); !strings.Contains(out, "Approved.") || !strings.Contains(out, "queued 2/2") {
		t.Fatalf("approve: %s", out)
	}
	if out := mustCLI(t, nil, "action", "status", batch[1]); !strings.Contains(out, devices[0]) || !strings.Contains(out, "queued") {
		t.Fatalf("action status: %s", out)
	}

	// --wait follows a batch until its timeout: the simulated devices are
	// gone, so the command stays queued.
	_, errOut, err = cli(t, nil, "action", "run", "sync", "--device", devices[2], "--reason", "inventory check", "--wait", "--timeout", "1500ms")
	if err == nil || !strings.Contains(err.Error(), "gave up after 1.5s with queued 1/1") || !strings.Contains(errOut, "queued 1/1, done 0, failed 0") {
		t.Fatalf("action run --wait: %v\n%s", err, errOut)
	}

	// A report written to a file, once the report routes exist.
	report := filepath.Join(dir, "compliance.csv")
	_, _, err = cli(t, nil, "report", "compliance", "--format", "csv", "--out", report)
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == http.StatusNotFound {
		t.Logf("skipping the report check: this server has no report routes yet (%v)", err)
		return
	}
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	if fi, err := os.Stat(report); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("report file: %v %v", fi, err)
	}
	if out := mustCLI(t, nil, "report"); !strings.Contains(out, "inventory") || !strings.Contains(out, "PURPOSE") {
		t.Fatalf("report kinds: %s", out)
	}
	// The default file name is KIND.FORMAT in the working directory.
	t.Chdir(dir)
	mustCLI(t, nil, "report", "inventory", "--format", "pdf")
	if b, err := os.ReadFile(filepath.Join(dir, "inventory.pdf")); err != nil || !strings.HasPrefix(string(b), "%PDF-") {
		t.Fatalf("inventory.pdf: %v %.20q", err, b)
	}
	if _, _, err := cli(t, nil, "report", "nonsense", "--format", "csv", "--out", filepath.Join(dir, "x.csv")); err == nil || !strings.Contains(err.Error(), "steward report") {
		t.Fatalf("an unknown report kind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed report left a file: %v", err)
	}
}

// customProfile is a minimal unsigned .mobileconfig with one passcode
// payload requiring minLength characters.
func customProfile(minLength string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>com.fleet.custom</string>
<key>PayloadUUID</key><string>5B0F3C4E-8D7A-4C1B-9E2F-0A1B2C3D4E5F</string>
<key>PayloadDisplayName</key><string>Uploaded passcode</string>
<key>PayloadContent</key><array><dict>
<key>PayloadType</key><string>com.apple.mobiledevice.passwordpolicy</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>com.fleet.custom.passcode</string>
<key>PayloadUUID</key><string>6C1A4D5F-9E8B-4D2C-8F3A-1B2C3D4E5F60</string>
<key>minLength</key><integer>` + minLength + `</integer>
</dict></array>
</dict></plist>
`
}
