package mdm

import (
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// TestEncryptedNeedsAPasscode: an iPhone's data is protected only with
// both levels of hardware encryption and a passcode
// (information.security.yaml); User Enrollment does not say whether a
// passcode is set, so encryption stays unknown there. A Mac reports
// FileVault.
func TestEncryptedNeedsAPasscode(t *testing.T) {
	caps := func(n int) *int { return &n }
	for _, c := range []struct {
		name string
		in   mdmproto.SecurityInfoResult
		want *bool // nil: not reported
	}{
		{"both levels and a passcode", mdmproto.SecurityInfoResult{HardwareEncryptionCaps: caps(3), PasscodePresent: new(true)}, new(true)},
		{"both levels, no passcode", mdmproto.SecurityInfoResult{HardwareEncryptionCaps: caps(3), PasscodePresent: new(false)}, new(false)},
		{"file level only", mdmproto.SecurityInfoResult{HardwareEncryptionCaps: caps(2), PasscodePresent: new(true)}, new(false)},
		{"User Enrollment", mdmproto.SecurityInfoResult{HardwareEncryptionCaps: caps(3), PasscodeCompliant: new(true)}, nil},
		{"a Mac with FileVault", mdmproto.SecurityInfoResult{FDEEnabled: new(true)}, new(true)},
	} {
		var got *bool
		for _, o := range securityInfoObservations(c.in) {
			if o.Field == "security.encrypted" {
				v := o.Value.(bool)
				got = &v
			}
		}
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%s: encrypted %v, want %v", c.name, deref(got), deref(c.want))
		}
	}
}

func deref(b *bool) any {
	if b == nil {
		return "not reported"
	}
	return *b
}
