package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/payloads"
	"github.com/steward-mdm/steward/internal/client"
	"github.com/steward-mdm/steward/internal/device"
)

func TestDeviceFiltersQuery(t *testing.T) {
	all := deviceFilters{platform: "ios", ownership: "corporate", state: "enrolled", compliance: "noncompliant", group: "g1",
		lastSeenBefore: "30d", lastSeenAfter: "2026-01-02T03:04:05Z", osMin: "17.4", osMax: " 18.1 ", model: "iPhone",
		sort: "-last_seen", cursor: "abc", limit: 1000}
	tests := []struct {
		name    string
		f       deviceFilters
		want    url.Values
		wantErr string
	}{
		{"defaults", deviceFilters{sort: "id", limit: 100}, url.Values{"sort": {"id"}, "limit": {"100"}}, ""},
		{"every filter", all, url.Values{"platform": {"ios"}, "ownership": {"corporate"}, "state": {"enrolled"},
			"compliance": {"noncompliant"}, "group": {"g1"}, "last_seen_before": {"30d"}, "last_seen_after": {"2026-01-02T03:04:05Z"},
			"os_min": {"17.4"}, "os_max": {"18.1"}, "model": {"iPhone"}, "sort": {"-last_seen"},
			"cursor": {"abc"}, "limit": {"1000"}}, ""},
		{"unknown sort", deviceFilters{sort: "name", limit: 10}, nil, "--sort must be id, last_seen"},
		{"descending unknown sort", deviceFilters{sort: "-", limit: 10}, nil, "--sort"},
		{"limit too small", deviceFilters{limit: 0}, nil, "--limit"},
		{"limit too large", deviceFilters{limit: 1001}, nil, "--limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.query()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("query() = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestBatchProgress(t *testing.T) {
	tests := []struct {
		b       actions.Batch
		want    string
		pending bool
	}{
		{actions.Batch{Devices: 120, States: map[string]int{"queued": 40, "done": 35, "failed": 2}}, "queued 40/120, done 35, failed 2", true},
		{actions.Batch{Devices: 3, States: map[string]int{"awaiting_approval": 3}}, "queued 0/3, awaiting approval 3, done 0, failed 0", true},
		{actions.Batch{Devices: 4, States: map[string]int{"done": 1, "refused": 2, "rejected": 0, "expired": 1}}, "queued 0/4, done 1, failed 0, refused 2, expired 1", false},
		{actions.Batch{}, "queued 0/0, done 0, failed 0", false},
	}
	for _, tt := range tests {
		if got := batchProgress(tt.b); got != tt.want {
			t.Errorf("batchProgress(%v) = %q, want %q", tt.b.States, got, tt.want)
		}
		if got := batchPending(tt.b); got != tt.pending {
			t.Errorf("batchPending(%v) = %v, want %v", tt.b.States, got, tt.pending)
		}
	}
}

func TestFollowBatch(t *testing.T) {
	queued := func(q, done int) actions.Batch {
		return actions.Batch{Devices: q + done, States: map[string]int{"queued": q, "done": done}}
	}
	boom := errors.New("connection reset")
	tests := []struct {
		name      string
		start     actions.Batch
		polls     []actions.Batch
		pollErr   error
		cancel    bool
		wantErr   error
		wantLast  actions.Batch
		wantShown int
	}{
		{"already finished: no polling", queued(0, 2), nil, nil, false, nil, queued(0, 2), 0},
		{"until nothing is queued", queued(2, 0), []actions.Batch{queued(2, 0), queued(1, 1), queued(0, 2)}, nil, false, nil, queued(0, 2), 3},
		{"a failed poll stops with its error", queued(2, 0), nil, boom, false, boom, queued(2, 0), 0},
		{"cancelled while pending", queued(2, 0), nil, nil, true, context.Canceled, queued(2, 0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tick := make(chan time.Time, len(tt.polls)+1)
			for range len(tt.polls) + 1 {
				tick <- time.Time{}
			}
			if tt.cancel {
				cancel()
				tick = make(chan time.Time) // never ticks: only ctx can end the wait
			}
			i, shown := 0, 0
			poll := func(context.Context) (actions.Batch, error) {
				if tt.pollErr != nil {
					return actions.Batch{}, tt.pollErr
				}
				b := tt.polls[i]
				i++
				return b, nil
			}
			last, err := followBatch(ctx, tt.start, poll, tick, func(actions.Batch) { shown++ })
			if !errors.Is(err, tt.wantErr) || !reflect.DeepEqual(last, tt.wantLast) || shown != tt.wantShown {
				t.Fatalf("followBatch = %v, %v (shown %d); want %v, %v (shown %d)", last, err, shown, tt.wantLast, tt.wantErr, tt.wantShown)
			}
		})
	}
}

func TestProgressLineOffTerminal(t *testing.T) {
	var buf lockedBuffer
	show := newProgressLine(&buf)
	for _, line := range []string{"queued 2/2", "queued 2/2", "queued 1/2", ""} {
		show(line)
	}
	if got, want := buf.String(), "queued 2/2\nqueued 1/2\n"; got != want {
		t.Fatalf("progress off a terminal = %q, want %q (each change once, nothing for the end)", got, want)
	}
}

func TestCheckActionRequest(t *testing.T) {
	tests := []struct {
		in      actions.Request
		wantErr string
	}{
		{actions.Request{Action: "lock", Reason: "lost", DeviceIDs: []string{"d1"}}, ""},
		{actions.Request{Action: "retire", Reason: "left", GroupID: "g"}, ""},
		{actions.Request{Action: "explode", Reason: "x", GroupID: "g"}, `unknown action "explode"`},
		{actions.Request{Action: "lock", Reason: "  ", GroupID: "g"}, "--reason is required"},
		{actions.Request{Action: "lock", Reason: "lost"}, "--device ID"},
	}
	for _, tt := range tests {
		err := checkActionRequest(tt.in)
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("checkActionRequest(%+v) = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestParseJSONDocument(t *testing.T) {
	tests := []struct {
		raw, want, wantErr string
	}{
		{`{ "platform" : "ios" }`, `{"platform":"ios"}`, ""},
		{"\n[1, 2]\n", `[1,2]`, ""},
		{``, "", "not valid JSON"},
		{`   `, "", "not valid JSON"},
		{`{"a":`, "", "not valid JSON"},
		{`{} {}`, "", "not valid JSON"},
	}
	for _, tt := range tests {
		got, err := parseJSONDocument("rule", []byte(tt.raw))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "--rule") {
				t.Errorf("parseJSONDocument(%q) error %v, want %q naming the flag", tt.raw, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("parseJSONDocument(%q) = %s, %v; want %s", tt.raw, got, err, tt.want)
		}
	}
}

func TestPolicyFilesAreStrict(t *testing.T) {
	var in struct {
		MinOSVersion string `json:"min_os_version"`
	}
	for raw, wantErr := range map[string]string{
		`{"min_os_version":"17.4"}`:         "",
		`{"min_os_verison":"17.4"}`:         "min_os_verison",
		`{"min_os_version":"17.4"} {"x":1}`: "more than one",
		`{"min_os_version":17}`:             "cannot unmarshal",
	} {
		err := decodeStrict("rules-file", []byte(raw), &in)
		if (wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("decodeStrict(%s) = %v, want %q", raw, err, wantErr)
		}
	}
}

func TestPolicyInputOfKeepsRulesAndLadder(t *testing.T) {
	v := api.PolicyView{Name: "Baseline", Platform: "ios", Ownership: "corporate", Enabled: false,
		Rules:  json.RawMessage(`{"min_os_version":"17.4","passcode_required":true,"required_apps":["com.example.app"]}`),
		Ladder: json.RawMessage(`[{"action":"notify","after_hours":0},{"action":"lock","after_hours":48}]`)}
	in, err := policyInputOf(v)
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := json.Marshal(in.Rules)
	ladder, _ := json.Marshal(in.Ladder)
	if string(rules) != string(v.Rules) || string(ladder) != string(v.Ladder) || in.Enabled == nil || *in.Enabled ||
		in.Name != v.Name || in.Platform != v.Platform || in.Ownership != v.Ownership {
		t.Fatalf("policyInputOf lost something: %+v rules %s ladder %s", in, rules, ladder)
	}
	if _, err := policyInputOf(api.PolicyView{Rules: json.RawMessage(`{"min_os_version":1}`)}); err == nil {
		t.Fatal("unreadable rules were accepted")
	}
}

func TestMergeSettings(t *testing.T) {
	cur := device.Settings{StaleAfterDays: 30, RetireStaleAfterDays: 0, BulkApprovalThreshold: 25, ApprovalHours: 72}
	in := device.Settings{StaleAfterDays: 14, RetireStaleAfterDays: 0, BulkApprovalThreshold: 0, ApprovalHours: 0}
	changed := map[string]bool{"stale-after-days": true, "bulk-approval-threshold": true}
	got := cur
	n := mergeSettings(func(f string) bool { return changed[f] }, &got, in)
	want := device.Settings{StaleAfterDays: 14, RetireStaleAfterDays: 0, BulkApprovalThreshold: 0, ApprovalHours: 72}
	if n != 2 || got != want {
		t.Fatalf("mergeSettings = %+v (%d changed), want %+v (2)", got, n, want)
	}
	if n := mergeSettings(func(string) bool { return false }, &got, in); n != 0 {
		t.Fatalf("nothing given, %d changed", n)
	}
}

func TestReportError(t *testing.T) {
	notFound := &client.Error{Status: 404, Code: "not_found", Message: "not found"}
	other := &client.Error{Status: 403, Code: "forbidden", Message: "forbidden"}
	tests := []struct {
		err        error
		kind, want string
	}{
		{notFound, "stale", `no "stale" report here`},
		{notFound, "", "offers no reports"},
		{other, "stale", "forbidden (forbidden)"},
		{fmt.Errorf("dial: %w", errors.New("refused")), "stale", "dial: refused"},
	}
	for _, tt := range tests {
		got := reportError(tt.err, tt.kind)
		if !strings.Contains(got.Error(), tt.want) || !errors.Is(got, tt.err) {
			t.Errorf("reportError(%v, %q) = %v, want %q wrapping the original", tt.err, tt.kind, got, tt.want)
		}
	}
}

func TestReadMobileconfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("x", size)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		path, wantErr string
	}{
		{write("ok.mobileconfig", 100), ""},
		{write("limit.mobileconfig", payloads.MaxCustomProfileSize), ""},
		{write("big.mobileconfig", payloads.MaxCustomProfileSize+1), "larger than"},
		{write("empty.mobileconfig", 0), "is empty"},
		{filepath.Join(dir, "missing"), "no such file"},
	}
	for _, tt := range tests {
		raw, err := readMobileconfig(tt.path)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", filepath.Base(tt.path), err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(raw) == 0 {
			t.Errorf("%s: %d bytes, %v", filepath.Base(tt.path), len(raw), err)
		}
	}
}

// TestFleetFlagMistakes checks mistakes are explained before any request:
// no server is configured, so reaching the network would fail differently.
func TestFleetFlagMistakes(t *testing.T) {
	t.Setenv("STEWARD_CREDENTIALS", filepath.Join(t.TempDir(), "none.json"))
	t.Setenv("STEWARD_SERVER", "")
	rules := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rules, []byte(`{"passcode_requried":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"group", "create", "G"}, "--static, or --rule"},
		{[]string{"group", "create", "G", "--static", "--rule", `{"platform":"ios"}`}, "a static group has no rule"},
		{[]string{"group", "create", "G", "--rule", `{"platform":`}, "--rule is not valid JSON"},
		{[]string{"group", "create", "G", "--rule", "{}", "--rule-file", "x"}, "none of the others"},
		{[]string{"profile", "create", "--definition-file", "x"}, "--name is required"},
		{[]string{"profile", "create", "--name", "P"}, "--definition-file or --mobileconfig"},
		{[]string{"profile", "create", "--name", "P", "--definition-file", "/nonexistent/def.json"}, "--definition-file: open"},
		{[]string{"compliance", "policy", "create", "--name", "P"}, "--rules-file are required"},
		{[]string{"compliance", "policy", "create", "--name", "P", "--rules-file", rules}, `unknown field "passcode_requried"`},
		{[]string{"device", "list", "--sort", "serial"}, "--sort must be"},
		{[]string{"device", "list", "--limit", "5000"}, "--limit must be"},
		{[]string{"device-settings", "set"}, "nothing to change"},
		{[]string{"action", "run", "lock", "--device", "d1"}, "--reason is required"},
		{[]string{"action", "run", "lock", "--reason", "r", "--device", "d", "--group", "g"}, "none of the others"},
		{[]string{"action", "pin", "d1", "a1"}, "--reason is required"},
		{[]string{"action", "departed-pin", "a1"}, "--reason is required"},
		{[]string{"device", "user-channels", "list", "d1", "--account", "jdoe"}, "--reason is required"},
		{[]string{"report", "inventory", "--format", "docx"}, "--format must be pdf, csv or json"},
		{[]string{"device", "access-token", "d1", "--ttl-hours", "-1"}, "--ttl-hours"},
	}
	for _, tt := range tests {
		_, _, err := cli(t, nil, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("steward %s: error %v, want %q", strings.Join(tt.args, " "), err, tt.wantErr)
		}
	}
}

func TestDeviceGroupKeepsItsCommands(t *testing.T) {
	root := newRoot()
	dev, _, err := root.Find([]string{"device"})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, c := range dev.Commands() {
		count[c.Name()]++
	}
	for _, name := range []string{"list", "register", "show", "reveal", "deprovision", "compliance", "access-token", "profiles"} {
		if count[name] != 1 {
			t.Errorf("steward device %s registered %d times", name, count[name])
		}
	}
	list, _, _ := root.Find([]string{"device", "list"})
	if list.Flags().Lookup("last-seen-before") == nil || list.Flags().Lookup("all") == nil {
		t.Error("steward device list is not the filtered list")
	}
}

func FuzzParseJSONDocument(f *testing.F) {
	for _, seed := range []string{`{"platform":"ios"}`, `[{"action":"notify","after_hours":0}]`, ``, `{`, "\xff", `"a"`, `1e999`, `{"a":[[[[]]]]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := parseJSONDocument("rule", raw)
		if err == nil && !json.Valid(got) {
			t.Fatalf("accepted %q as %q, which is not JSON", raw, got)
		}
	})
}

// FuzzPolicyInputOf feeds policyInputOf what a server (or something posing
// as one) might send back: it must refuse or convert, never panic.
func FuzzPolicyInputOf(f *testing.F) {
	f.Add([]byte(`{"min_os_version":"17.4"}`), []byte(`[{"action":"notify","after_hours":0}]`))
	f.Add([]byte(`null`), []byte(`null`))
	f.Add([]byte(`{"required_apps":[1]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, rules, ladder []byte) {
		in, err := policyInputOf(api.PolicyView{Rules: rules, Ladder: ladder})
		if err == nil && in.Enabled == nil {
			t.Fatal("a converted policy lost its enabled flag")
		}
	})
}
