package mdm_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

const familyVPN = "The profile “Erika's family VPN” could not be removed."

// describedFailure has dev fail a command with familyVPN as its
// description and returns the command's ID.
func describedFailure(t *testing.T, f *fixture, ts *httptest.Server, o privacy.Ownership, subjectID string) string {
	t.Helper()
	d, dev := f.enrolled(ts, o, subjectID)
	return failProfileList(t, f, d, dev, []map[string]any{
		{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain", "LocalizedDescription": familyVPN, "USEnglishDescription": familyVPN}})
}

// chainOf returns the stored error chain of command id.
func chainOf(t *testing.T, f *fixture, id string) string {
	t.Helper()
	c, err := f.st.Read().Commands().Get(f.ctx, f.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return c.ErrorChain
}

// checkStripped fails unless command id's chain is Apple's domain and code
// alone.
func checkStripped(t *testing.T, f *fixture, what, id string) {
	t.Helper()
	chain := chainOf(t, f, id)
	var entries []mdmproto.ErrorChainItem
	if err := json.Unmarshal([]byte(chain), &entries); err != nil || len(entries) != 1 ||
		entries[0] != (mdmproto.ErrorChainItem{ErrorCode: 4001, ErrorDomain: "MCProfileErrorDomain"}) {
		t.Errorf("%s: the error chain is %s, want the domain and code only", what, chain)
	}
}

// strip runs the strip passes to their end in steps of two commands.
func strip(t *testing.T, f *fixture) int {
	t.Helper()
	n, err := f.svc.StripHiddenErrorText(f.ctx, 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if left, err := f.st.Read().Settings().ListPrefix(f.ctx, "mdm.error-text-pass/", "", 10); err != nil || len(left) != 0 {
		t.Fatalf("strip passes left queued: %v, %v", left, err)
	}
	return n
}

// TestNarrowingStripsErrorText: descriptions kept while the policy showed
// a corporate device's usage logs lose their text once an admin hides
// them, in bounded steps; Steward's own descriptions, and those of a class
// whose policy still shows them, stay.
func TestNarrowingStripsErrorText(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		f.publish(privacy.Shared)
		setDiagnostics(t, f, privacy.Corporate, privacy.Show)
		setDiagnostics(t, f, privacy.Shared, privacy.Show)
		ts := f.serve()
		corporate := describedFailure(t, f, ts, privacy.Corporate, "")
		shared := describedFailure(t, f, ts, privacy.Shared, "")
		own := describedFailure(t, f, ts, privacy.Corporate, "")
		const ownChain = `[{"LocalizedDescription":"the result did not decode"}]`
		if err := f.st.Tx(f.ctx, func(q store.Queries) error {
			return q.Commands().SetErrorChain(f.ctx, f.tenant, own, ownChain)
		}); err != nil {
			t.Fatal(err)
		}
		if n := strip(t, f); n != 0 || !strings.Contains(chainOf(t, f, corporate), "family VPN") {
			t.Fatalf("precondition: the policy shows the text, yet %d chains were stripped: %s", n, chainOf(t, f, corporate))
		}

		res, err := f.priv.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Reason: "diagnostics only when asked for",
			Changes: []privacy.Change{{Ownership: privacy.Corporate, Category: privacy.UsageLogs, Mode: privacy.Hide}}}, "admin-a", admin)
		if err != nil || !res.Applied {
			t.Fatalf("narrowing: %+v, %v", res, err)
		}
		if n := strip(t, f); n != 1 {
			t.Errorf("the pass stripped %d chains, want 1", n)
		}
		checkStripped(t, f, "a corporate device's failure after usage logs were hidden", corporate)
		if got := chainOf(t, f, own); got != ownChain {
			t.Errorf("Steward's own description was stripped: %s", got)
		}
		if got := chainOf(t, f, shared); !strings.Contains(got, "family VPN") {
			t.Errorf("a shared device's text was stripped though its class still shows usage logs: %s", got)
		}
	})
}

// TestUpgradeStripsErrorText: descriptions stored by a Steward that kept
// them whatever the policy (a personal device's, a corporate one's where
// usage logs are hidden) are stripped once by the upgrade's pass.
func TestUpgradeStripsErrorText(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		f.publish(privacy.Personal)
		setDiagnostics(t, f, privacy.Corporate, privacy.Show)
		ts := f.serve()
		corporate := describedFailure(t, f, ts, privacy.Corporate, "")
		personal := describedFailure(t, f, ts, privacy.Personal, f.subject("erika@acme.test"))
		// As an older Steward left them: the text kept on every class, the
		// policy hiding it since without a pass.
		if err := f.st.Tx(f.ctx, func(q store.Queries) error {
			return q.Commands().SetErrorChain(f.ctx, f.tenant, personal, chainOf(t, f, corporate))
		}); err != nil {
			t.Fatal(err)
		}
		setDiagnostics(t, f, privacy.Corporate, privacy.Hide)

		if n := strip(t, f); n != 2 {
			t.Errorf("the upgrade's pass stripped %d chains, want 2", n)
		}
		checkStripped(t, f, "a corporate device's old failure", corporate)
		checkStripped(t, f, "a personal device's old failure", personal)
		if _, err := f.st.Read().Settings().Get(f.ctx, "mdm.error-text-upgrade-queued"); err != nil {
			t.Errorf("the upgrade's pass was not recorded: %v", err)
		}
	})
}

// TestErrorTextFollowsUsageLogsRetention: a tenant that keeps usage logs a
// week has the devices' descriptions stripped from failed commands once
// they are a week old, though the commands stay their 30 days; younger
// ones keep their text.
func TestErrorTextFollowsUsageLogsRetention(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	setDiagnostics(t, f, privacy.Corporate, privacy.Show)
	ts := f.serve()
	old := describedFailure(t, f, ts, privacy.Corporate, "")
	if strip(t, f); !strings.Contains(chainOf(t, f, old), "family VPN") {
		t.Fatal("a description the policy shows was stripped")
	}
	if _, err := f.priv.SetRetention(f.ctx, f.tenant, map[privacy.Category]int{privacy.UsageLogs: 7}, "diagnostics are kept a week",
		"admin-1", admin); err != nil {
		t.Fatal(err)
	}
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	later := time.Now().Add(8 * 24 * time.Hour)
	f.svc.SetClock(func() time.Time { return later })
	recent := failProfileList(t, f, d, dev, []map[string]any{
		{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain", "LocalizedDescription": familyVPN, "USEnglishDescription": familyVPN}})
	if n := strip(t, f); n != 1 {
		t.Errorf("stripped %d commands, want the week-old one", n)
	}
	checkStripped(t, f, "a description past the usage-logs retention", old)
	if !strings.Contains(chainOf(t, f, recent), "family VPN") {
		t.Error("a description within the usage-logs retention was stripped")
	}
	if _, err := f.st.Read().Commands().Get(f.ctx, f.tenant, old); err != nil {
		t.Errorf("the command itself went: %v", err)
	}
}
