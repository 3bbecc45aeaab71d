package compliance

import (
	"strings"
	"testing"
	"time"
)

func ptr(b bool) *bool { return &b }

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	good := Facts{OSVersion: "18.1", PasscodePresent: ptr(true), PasscodeCompliant: ptr(true), Encrypted: ptr(true),
		Compromised: ptr(false), LastSeen: now.Add(-time.Hour), Profiles: map[string]bool{"p1": true},
		Apps: map[string]bool{"com.example.crm": true}}
	all := Rules{MinOSVersion: "18.0", PasscodeRequired: true, EncryptionRequired: true, NotCompromised: true, CheckedInWithinDays: 7,
		RequiredProfiles: []string{"p1"}, ForbiddenApps: []string{"com.example.game"}, RequiredApps: []string{"com.example.crm"}}
	for _, c := range []struct {
		name    string
		rules   Rules
		facts   func(Facts) Facts
		blocked []string
		result  string
		rule    string // the failing or unknown rule
	}{
		{"everything fine", all, func(f Facts) Facts { return f }, nil, Pass, ""},
		{"old OS", all, func(f Facts) Facts { f.OSVersion = "17.9.1"; return f }, nil, Fail, "min_os_version"},
		{"17.10 is after 17.9", Rules{MinOSVersion: "17.9"}, func(f Facts) Facts { f.OSVersion = "17.10"; return f }, nil, Pass, ""},
		{"old OS before the deadline warns", Rules{MinOSVersion: "19.0", MinOSDeadline: now.Add(24 * time.Hour)}, func(f Facts) Facts { return f }, nil, Pass, "min_os_version"},
		{"old OS after the deadline fails", Rules{MinOSVersion: "19.0", MinOSDeadline: now.Add(-time.Hour)}, func(f Facts) Facts { return f }, nil, Fail, "min_os_version"},
		{"OS not reported", all, func(f Facts) Facts { f.OSVersion = ""; return f }, nil, Unknown, "min_os_version"},
		{"no passcode", all, func(f Facts) Facts { f.PasscodePresent = ptr(false); return f }, nil, Fail, "passcode"},
		{"weak passcode", all, func(f Facts) Facts { f.PasscodeCompliant = ptr(false); return f }, nil, Fail, "passcode"},
		{"passcode unknown", all, func(f Facts) Facts { f.PasscodePresent = nil; return f }, nil, Unknown, "passcode"},
		// User Enrollment does not say whether a passcode is set, only
		// whether it meets the rules; a Mac reports no passcode at all.
		{"User Enrollment, compliant passcode", Rules{PasscodeRequired: true}, func(f Facts) Facts {
			f.Ownership, f.PasscodePresent = "user_enrolled", nil
			return f
		}, nil, Pass, ""},
		{"User Enrollment, weak passcode", Rules{PasscodeRequired: true}, func(f Facts) Facts {
			f.Ownership, f.PasscodePresent, f.PasscodeCompliant = "user_enrolled", nil, ptr(false)
			return f
		}, nil, Fail, "passcode"},
		{"a Mac", Rules{PasscodeRequired: true}, func(f Facts) Facts { f.Platform, f.PasscodePresent, f.PasscodeCompliant = "macos", nil, nil; return f }, nil, Pass, ""},
		{"not encrypted", all, func(f Facts) Facts { f.Encrypted = ptr(false); return f }, nil, Fail, "encryption"},
		// User Enrollment on an iPhone: only hardware without file-level
		// encryption decides; a passcode's presence is never reported.
		{"User Enrollment, no file-level encryption", Rules{EncryptionRequired: true}, func(f Facts) Facts {
			f.Ownership, f.PasscodePresent, f.Encrypted = "user_enrolled", nil, ptr(false)
			return f
		}, nil, Fail, "encryption"},
		{"User Enrollment, capable hardware", Rules{EncryptionRequired: true}, func(f Facts) Facts {
			f.Ownership, f.PasscodePresent, f.Encrypted = "user_enrolled", nil, nil
			return f
		}, nil, Unknown, "encryption"},
		{"User Enrollment of a Mac, FileVault on", Rules{EncryptionRequired: true}, func(f Facts) Facts {
			f.Platform, f.Ownership, f.PasscodePresent, f.PasscodeCompliant = "macos", "user_enrolled", nil, nil
			return f
		}, nil, Pass, ""},
		{"SIP off", all, func(f Facts) Facts { f.Compromised = ptr(true); return f }, nil, Fail, "not_compromised"},
		// Only a Mac reports System Integrity Protection; no jailbreak is
		// reported at all.
		{"an iPhone reports no integrity", Rules{NotCompromised: true}, func(f Facts) Facts { f.Platform, f.Compromised = "ios", nil; return f }, nil, Pass, ""},
		{"an iPad reports no integrity", Rules{NotCompromised: true}, func(f Facts) Facts { f.Platform, f.Compromised = "ipados", nil; return f }, nil, Pass, ""},
		{"a Mac not reporting SIP yet", Rules{NotCompromised: true}, func(f Facts) Facts { f.Platform, f.Compromised = "macos", nil; return f }, nil, Unknown, "not_compromised"},
		{"silent for 8 days", all, func(f Facts) Facts { f.LastSeen = now.Add(-8 * 24 * time.Hour); return f }, nil, Fail, "checked_in"},
		{"profile missing", all, func(f Facts) Facts { f.Profiles = map[string]bool{}; return f }, nil, Fail, "required_profile"},
		{"forbidden app", all, func(f Facts) Facts {
			f.Apps = map[string]bool{"com.example.crm": true, "com.example.game": true}
			return f
		}, nil, Fail, "forbidden_app"},
		{"blocklisted app", Rules{PasscodeRequired: true}, func(f Facts) Facts { f.Apps = map[string]bool{"com.example.tiktok": true}; return f }, []string{"com.example.tiktok"}, Fail, "forbidden_app"},
		{"required app missing", all, func(f Facts) Facts { f.Apps = map[string]bool{}; return f }, nil, Fail, "required_app"},
		{"no app list", all, func(f Facts) Facts { f.Apps = nil; return f }, nil, Unknown, "apps"},
		{"app list hidden", Rules{ForbiddenApps: []string{"com.example.game"}}, func(f Facts) Facts { f.Apps, f.AppsHidden = nil, true; return f }, nil, Unknown, "apps"},
		{"a failure outweighs an unknown", all, func(f Facts) Facts { f.Apps = nil; f.Encrypted = ptr(false); return f }, nil, Fail, "encryption"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := c.rules.Evaluate(c.facts(good), now, c.blocked)
			if out.Result != c.result {
				t.Fatalf("result %q, want %q: %+v", out.Result, c.result, out.Violations)
			}
			found := c.rule == ""
			for _, v := range out.Violations {
				if v.Rule == c.rule {
					found = true
				}
				if strings.Contains(v.Reason, "com.example.game") || strings.Contains(v.Reason, "com.example.tiktok") {
					t.Errorf("a reason names an installed app: %q", v.Reason)
				}
			}
			if !found {
				t.Errorf("no violation of %q: %+v", c.rule, out.Violations)
			}
		})
	}
}

func TestRulesAndLadderValidation(t *testing.T) {
	for _, c := range []struct {
		raw, want string
	}{
		{`{}`, "checks nothing"},
		{`{"min_os_version":"eighteen"}`, "not a version"},
		{`{"min_os_deadline":"2027-01-01T00:00:00Z"}`, "needs min_os_version"},
		{`{"forbidden_apps":["a.b"],"required_apps":["a.b"]}`, "both required and forbidden"},
		{`{"forbidden_apps":["bad id!"]}`, "bundle identifier"},
		{`{"checked_in_within_days":400}`, "between 1 and 365"},
		{`{"passcode_required":true,"unknown_rule":true}`, "unknown field"},
	} {
		if _, err := ParseRules([]byte(c.raw)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseRules(%s) = %v, want %q", c.raw, err, c.want)
		}
	}
	if _, err := ParseRules([]byte(`{"passcode_required":true}`)); err != nil {
		t.Errorf("a valid rule set: %v", err)
	}
	for _, c := range []struct {
		raw, want string
	}{
		{`[{"action":"explode","after_hours":0}]`, "unknown action"},
		{`[{"action":"lock","after_hours":1},{"action":"notify","after_hours":2}]`, "must come before"},
		{`[{"action":"lock","after_hours":1},{"action":"lock","after_hours":2}]`, "must come before"},
		{`[{"action":"notify","after_hours":-1}]`, "between 0 and 8760"},
	} {
		if _, err := ParseLadder([]byte(c.raw)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseLadder(%s) = %v, want %q", c.raw, err, c.want)
		}
	}
	l, err := ParseLadder([]byte(`[{"action":"lock","after_hours":48},{"action":"notify","after_hours":0}]`))
	if err != nil || l[0].Action != StepNotify {
		t.Errorf("a ladder is sorted by time: %+v %v", l, err)
	}
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := DefaultLadder().marksAt(since); !got.Equal(since.Add(24 * time.Hour)) {
		t.Errorf("default ladder marks at %v", got)
	}
	if got := (Ladder{{StepNotify, 0}}).marksAt(since); !got.Equal(since) {
		t.Errorf("a ladder without a mark step marks at once: %v", got)
	}
}
