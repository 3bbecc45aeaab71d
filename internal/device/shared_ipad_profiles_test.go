package device_test

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestSharedIPadGetsNoProfileItRefuses: an iPad in Shared iPad mode does
// not take a passcode policy, nor iCloud document sync restricted, on the
// device channel (Apple's schema); such a profile is not applicable there,
// with the reason, instead of failing on every retry. A school's other
// iPads take it.
func TestSharedIPadGetsNoProfileItRefuses(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		m := newManaged(t, st)
		shared, single := m.enrolled(privacy.Corporate, "ipados"), m.enrolled(privacy.Corporate, "ipados")
		for id, multiUser := range map[string]bool{shared: true, single: false} {
			if _, err := m.priv.Ingest(m.ctx, privacy.Report{TenantID: m.tenant, DeviceID: id, Source: "test/DeviceInformation", At: m.now,
				Values: []privacy.Observation{{Field: "os.shared_ipad", Value: multiUser}, {Field: "os.supervised", Value: true}}}); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			name    string
			payload map[string]any
			why     string // "" when a Shared iPad takes it
		}{
			{"passcode", map[string]any{"type": "passcode", "passcode": map[string]any{"min_length": 6}}, "com.apple.mobiledevice.passwordpolicy"},
			{"document sync", map[string]any{"type": "restrictions", "restrictions": map[string]any{"allow_cloud_document_sync": false}}, "allowCloudDocumentSync"},
			{"camera", map[string]any{"type": "restrictions", "restrictions": map[string]any{"allow_camera": false}}, ""},
		}
		for _, c := range cases {
			states := m.deployed(device.ProfileInput{Name: c.name, Definition: definition(t, "com.example.school."+strings.ReplaceAll(c.name, " ", "-"), c.payload)},
				shared, single)
			if s := states[1]; s.Status != store.ProfilePending {
				t.Errorf("%s on an iPad that is not shared: %+v; want it sent", c.name, s)
			}
			s := states[0]
			switch {
			case c.why == "" && s.Status != store.ProfilePending:
				t.Errorf("%s on the Shared iPad: %+v; want it sent", c.name, s)
			case c.why != "" && (s.Status != store.ProfileNotApplicable || !strings.Contains(s.Error, c.why) || !strings.Contains(s.Error, "Shared iPad")):
				t.Errorf("%s on the Shared iPad: %+v; want not_applicable naming %q", c.name, s, c.why)
			}
		}
	})
}
