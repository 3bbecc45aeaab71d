package device_test

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestMacGetsNoRestrictionItWouldIgnore: macOS has no managed open-in
// restriction (com.apple.applicationaccess.yaml, macOS "introduced: n/a").
// A Mac would install a profile setting it, show it installed and enforce
// nothing, so it is not applicable there, naming the setting, as under
// User Enrollment; a restriction macOS has goes to the Mac, and the
// iPhone takes both.
func TestMacGetsNoRestrictionItWouldIgnore(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		m := newManaged(t, st)
		mac, userEnrolledMac := m.enrolled(privacy.Corporate, "macos"), m.enrolled(privacy.UserEnrolled, "macos")
		openIn := map[string]any{"type": "restrictions", "restrictions": map[string]any{"allow_open_from_managed_to_unmanaged": false}}
		screenshots := map[string]any{"type": "restrictions", "restrictions": map[string]any{"allow_screenshot": false}}

		states := m.deployed(device.ProfileInput{Name: "Open-in", Definition: definition(t, "com.example.open-in", openIn)}, m.phone, mac, userEnrolledMac)
		if s := states[0]; s.Status != store.ProfilePending {
			t.Errorf("the open-in restriction on the iPhone: %+v; want it sent", s)
		}
		for i, s := range states[1:] {
			if s.Status != store.ProfileNotApplicable || !strings.Contains(s.Error, "payloads[0].restrictions.allow_open_from_managed_to_unmanaged") ||
				!strings.Contains(s.Error, "iPhones and iPads") {
				t.Errorf("the open-in restriction on Mac %d: %+v; want not_applicable naming the setting", i, s)
			}
		}

		states = m.deployed(device.ProfileInput{Name: "Screenshots", Definition: definition(t, "com.example.screenshots", screenshots)}, m.phone, mac)
		for i, s := range states {
			if s.Status != store.ProfilePending {
				t.Errorf("the screenshot restriction on device %d: %+v; want it sent", i, s)
			}
		}
	})
}
