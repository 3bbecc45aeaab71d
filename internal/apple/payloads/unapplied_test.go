package payloads

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestUnappliedSettings(t *testing.T) {
	no, six := false, 6
	def := Definition{Name: "Mixed", Identifier: "org.example.mixed", RemovalDisallowed: true, Payloads: []Payload{
		{Type: KindRestrictions, Restrictions: &Restrictions{AllowCamera: &no, AllowCloudBackup: &no, RequireManagedPasteboard: &no}},
		{Type: KindWiFi, WiFi: &WiFi{SSID: "Office", Proxy: &WiFiProxy{Type: "none"}}},
		{Type: KindPasscode, Passcode: &Passcode{MinLength: &six}},
	}}
	cases := []struct {
		name   string
		target Target
		want   []string
	}{
		{"iPhone", Target{}, nil},
		// macOS has neither key; it has the camera restriction.
		{"Mac", Target{Mac: true}, []string{"payloads[0].restrictions.require_managed_pasteboard", "payloads[0].restrictions.allow_cloud_backup"}},
		{"iPhone, User Enrollment", Target{UserEnrollment: true}, []string{"removal_disallowed",
			"payloads[0].restrictions.allow_camera", "payloads[0].restrictions.allow_cloud_backup", "payloads[1].wifi.proxy"}},
		// A Mac's User Enrollment takes the removal flag and a proxy of
		// type none, refuses the camera restriction, and refuses the
		// passcode payload as a whole (Unavailable).
		{"Mac, User Enrollment", Target{Mac: true, UserEnrollment: true}, []string{"payloads[0].restrictions.allow_camera",
			"payloads[0].restrictions.require_managed_pasteboard", "payloads[0].restrictions.allow_cloud_backup"}},
	}
	for _, tc := range cases {
		if got := def.UnappliedSettings(tc.target); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The restrictions macOS does not have ("introduced: n/a" in
// com.apple.applicationaccess.yaml): a Mac installs a profile setting one
// and ignores it, so such a profile is not sent to Macs. The six it has
// apply on any Mac.
func TestMacIgnoresIPhoneOnlyRestrictions(t *testing.T) {
	macLacks := []string{"allowAppInstallation", "allowOpenFromManagedToUnmanaged", "allowOpenFromUnmanagedToManaged",
		"requireManagedPasteboard", "allowManagedAppsCloudSync", "allowCloudBackup", "allowEnterpriseBookBackup", "forceEncryptedBackup"}
	for _, r := range restrictionRules {
		def := Definition{Payloads: []Payload{{Type: KindRestrictions, Restrictions: onlyRestriction(t, r.field)}}}
		want := []string(nil)
		if slices.Contains(macLacks, r.appleKey) {
			want = []string{"payloads[0].restrictions." + r.field}
		}
		for _, mac := range []Target{{Mac: true}, {Mac: true, UserEnrollment: true}} {
			if mac.UserEnrollment && r.macUserEnrollment {
				continue // refused there anyway
			}
			if got := def.UnappliedSettings(mac); !slices.Equal(got, want) {
				t.Errorf("%s on %+v: %q, want %q", r.appleKey, mac, got, want)
			}
		}
		if got := def.UnappliedSettings(Target{}); got != nil {
			t.Errorf("%s on an iPhone: %q, want none", r.appleKey, got)
		}
		if got := def.SupervisedSettings(Target{Mac: true}); got != nil {
			t.Errorf("%s: a Mac needs supervision for %q", r.appleKey, got)
		}
	}
}

// Every key Restrictions writes has its rule, under the field that sets
// it, so a new restriction cannot reach a device without its platforms
// having been looked up.
func TestRestrictionRulesCoverEveryKey(t *testing.T) {
	r := &Restrictions{}
	if len(restrictionRules) != len(r.pairs()) {
		t.Fatalf("%d rules for %d restrictions", len(restrictionRules), len(r.pairs()))
	}
	for _, rule := range restrictionRules {
		set := onlyRestriction(t, rule.field)
		keys, err := set.content(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := keys[rule.appleKey]; len(keys) != 1 || !ok || !rule.set(set) {
			t.Errorf("rule %s: the field writes %v, want %s alone", rule.field, keys, rule.appleKey)
		}
	}
}

// onlyRestriction returns Restrictions with the one JSON field set.
func onlyRestriction(t *testing.T, field string) *Restrictions {
	t.Helper()
	var r Restrictions
	if err := json.Unmarshal([]byte(`{"`+field+`":false}`), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestSupervisedSettings(t *testing.T) {
	no := false
	def := Definition{Name: "Mixed", Identifier: "org.example.mixed", RemovalDisallowed: true, Payloads: []Payload{
		{Type: KindWiFi, WiFi: &WiFi{SSID: "Office"}},
		{Type: KindRestrictions, Restrictions: &Restrictions{AllowCamera: &no, AllowAirDrop: &no, AllowProfileInstallation: &no}},
	}}
	want := []string{"removal_disallowed", "payloads[1].restrictions.allow_airdrop", "payloads[1].restrictions.allow_profile_installation"}
	if got := def.SupervisedSettings(Target{}); !slices.Equal(got, want) {
		t.Errorf("iPhone: %q, want %q", got, want)
	}
	if got := def.SupervisedSettings(Target{Mac: true}); got != nil {
		t.Errorf("Mac: %q, want none (macOS applies the ones it has unsupervised)", got)
	}
	camera := Definition{Payloads: []Payload{{Type: KindRestrictions, Restrictions: &Restrictions{AllowCamera: &no}}}}
	if got := camera.SupervisedSettings(Target{}); got != nil {
		t.Errorf("camera only: %q, want none", got)
	}
}
