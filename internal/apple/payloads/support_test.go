package payloads

import (
	"strings"
	"testing"
)

// TestUnavailable holds every payload type Steward builds to Apple's
// schemas (supportedOS in mdm/profiles/<PayloadType>.yaml) on each kind of
// device; "" is a device that takes it on its device channel.
func TestUnavailable(t *testing.T) {
	var (
		iPhone = Target{}
		ue     = Target{UserEnrollment: true}
		mac    = Target{Mac: true}
		macUE  = Target{Mac: true, UserEnrollment: true}
	)
	const (
		forbidden = "under User Enrollment"
		noSuch    = "macOS has no"
		userOnly  = "only in a user's account"
	)
	cases := []struct {
		payloadType            string
		iPhone, ue, mac, macUE string
	}{
		{"com.apple.wifi.managed", "", "", "", ""},
		{"com.apple.vpn.managed", "", forbidden, "", forbidden},
		{"com.apple.eas.account", "", "", noSuch, noSuch},
		{"com.apple.mail.managed", "", "", userOnly, userOnly},
		{"com.apple.mobiledevice.passwordpolicy", "", "", "", forbidden},
		{"com.apple.applicationaccess", "", "", "", ""},
		{"com.apple.security.scep", "", "", "", ""},
		{"com.apple.security.pkcs12", "", "", "", ""},
		{"com.apple.webClip.managed", "", "", userOnly, userOnly},
		// Custom profiles: a type nobody checked goes to no User Enrollment.
		{"com.apple.vpn.managed.applayer", "", "not on Steward's list", "", "not on Steward's list"},
	}
	for _, c := range cases {
		for _, run := range []struct {
			target Target
			want   string
		}{{iPhone, c.iPhone}, {ue, c.ue}, {mac, c.mac}, {macUE, c.macUE}} {
			got := Unavailable([]string{"com.apple.wifi.managed", c.payloadType}, run.target)
			if run.want == "" && got != "" || !strings.Contains(got, run.want) || run.want != "" && !strings.Contains(got, c.payloadType) {
				t.Errorf("%s on %+v: %q, want %q", c.payloadType, run.target, got, run.want)
			}
		}
	}
	// Every kind Steward builds has its rules written down.
	for kind, typ := range appleTypes {
		if _, ok := payloadSupport[typ]; !ok {
			t.Errorf("%s (%s) has no entry in payloadSupport", kind, typ)
		}
	}
}
