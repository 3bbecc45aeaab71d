package payloads

import (
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
		{"Mac", Target{Mac: true}, nil},
		{"iPhone, User Enrollment", Target{UserEnrollment: true}, []string{"removal_disallowed",
			"payloads[0].restrictions.allow_camera", "payloads[0].restrictions.allow_cloud_backup", "payloads[1].wifi.proxy"}},
		// A Mac's User Enrollment takes the removal flag and a proxy of
		// type none, has no cloud backup restriction, and refuses the
		// passcode payload as a whole (Unavailable).
		{"Mac, User Enrollment", Target{Mac: true, UserEnrollment: true}, []string{"payloads[0].restrictions.allow_camera"}},
	}
	for _, tc := range cases {
		if got := def.UnappliedSettings(tc.target); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
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
		t.Errorf("Mac: %q, want none (macOS applies them unsupervised)", got)
	}
	camera := Definition{Payloads: []Payload{{Type: KindRestrictions, Restrictions: &Restrictions{AllowCamera: &no}}}}
	if got := camera.SupervisedSettings(Target{}); got != nil {
		t.Errorf("camera only: %q, want none", got)
	}
}
