package compliance

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/store"
)

func TestSummaryOfUncoveredDevice(t *testing.T) {
	if got := summaryOf(nil, true); got != store.ComplianceCompliant {
		t.Errorf("no policy covers it, the tenant has some: %q", got)
	}
	if got := summaryOf(nil, false); got != store.ComplianceUnknown {
		t.Errorf("the tenant has no policy: %q", got)
	}
	if got := summaryOf([]string{store.ComplianceCompliant, InGrace, store.ComplianceUnknown}, true); got != InGrace {
		t.Errorf("worst of its standings: %q", got)
	}
}

func TestAccessReasonsUnknownRefuses(t *testing.T) {
	standing := func(state string, vs ...Violation) store.DeviceCompliance {
		raw, _ := json.Marshal(vs)
		return store.DeviceCompliance{State: state, Violations: raw}
	}
	grace := Violation{Rule: "min_os_version", Reason: "update"}
	warning := Violation{Rule: "min_os_version", Reason: "update soon", Warning: true}
	unknown := Violation{Rule: "apps", Reason: "not reported", Unknown: true}
	failed := Violation{Rule: "passcode", Reason: "set one"}
	for _, c := range []struct {
		name      string
		standings []store.DeviceCompliance
		refusing  string
		unknown   bool
	}{
		{"in grace", []store.DeviceCompliance{standing(InGrace, grace)}, "", false},
		{"in grace with a warning", []store.DeviceCompliance{standing(InGrace, grace, warning)}, "", false},
		{"in grace and unknown in one policy", []store.DeviceCompliance{standing(InGrace, grace, unknown)}, "not reported", true},
		{"in grace and unknown in two", []store.DeviceCompliance{standing(InGrace, grace), standing(store.ComplianceUnknown, unknown)}, "not reported", true},
		{"noncompliant", []store.DeviceCompliance{standing(store.ComplianceNoncompliant, failed, warning)}, "set one", false},
	} {
		refusing, others, gotUnknown := accessReasons(c.standings)
		if strings.Join(refusing, ";") != c.refusing || gotUnknown != c.unknown {
			t.Errorf("%s: refusing %q others %q unknown %v", c.name, refusing, others, gotUnknown)
		}
	}
}

func TestMinOSVersionNeedsPlatform(t *testing.T) {
	in := PolicyInput{Name: "OS", Rules: Rules{MinOSVersion: "18.0"}}
	if _, err := in.toStore("t"); err == nil || !strings.Contains(err.Error(), "needs the policy's platform") {
		t.Errorf("without a platform: %v", err)
	}
	for _, platform := range []string{"ios", "ipados", "macos"} {
		in.Platform = platform
		if _, err := in.toStore("t"); err != nil {
			t.Errorf("%s: %v", platform, err)
		}
	}
	// Stored before: it still loads.
	if _, err := fromStore(store.CompliancePolicy{ID: "p", Rules: []byte(`{"min_os_version":"18.0"}`), Ladder: []byte(`[]`)}); err != nil {
		t.Errorf("a stored policy without a platform: %v", err)
	}
}
