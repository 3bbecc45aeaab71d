package mdm_test

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// TestScheduleOSUpdateRemoved: Apple deprecated ScheduleOSUpdate in iOS
// and macOS 26 and lists it as removed after (declarative software update
// management replaces it): a device that reported a later version is
// refused it as unsupported, naming the removal; one on 26, or one whose
// version is unknown, still gets it.
func TestScheduleOSUpdateRemoved(t *testing.T) {
	update := mdmproto.ScheduleOSUpdate{Updates: []mdmproto.OSUpdate{{ProductVersion: "27.1", InstallAction: "Default"}}}
	supervised := mdm.DeviceFacts{Supervised: true}
	for _, c := range []struct {
		platform, version string
		refused           bool
	}{
		{"ios", "26.4", false},
		{"ios", "", false},
		{"ios", "27.0", true},
		{"ipados", "27.2.1", true},
		{"macos", "26.3", false},
		{"macos", "27.0", true},
	} {
		d := store.Device{Platform: c.platform, Ownership: string(privacy.Corporate), OSVersion: c.version}
		_, err := mdm.RequestFor(update, d, privacy.Settings{}, supervised)
		e := apperr.As(err)
		switch {
		case c.refused && (e == nil || e.Details["reason"] != mdm.SkipUnsupported || !strings.Contains(e.Message, "removed")):
			t.Errorf("%s %s: %v; want refused as unsupported, saying Apple removed it", c.platform, c.version, err)
		case !c.refused && err != nil:
			t.Errorf("%s %s: %v; want it sent", c.platform, c.version, err)
		}
	}
}
