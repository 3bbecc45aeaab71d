package privacy

import (
	"strings"
	"testing"
)

// TestPlainSummarySaysWhatTheTenantSet: the summary gives the tenant's
// retention, not the catalogue's default, and what the organisation can do
// to each kind of device as Steward's rules allow it.
func TestPlainSummarySaysWhatTheTenantSet(t *testing.T) {
	s := DefaultSettings()
	s.RetentionDays = map[Category]int{UsageLogs: 400}
	fullWipe := true
	var err error
	if s.Policy, _, err = s.Policy.Apply([]Change{{Ownership: Personal, Category: Network, Mode: Hide}, {Ownership: Personal, FullWipe: &fullWipe}}); err != nil {
		t.Fatal(err)
	}
	personal := PlainSummary(s, Personal)
	for _, want := range []string{"Kept 400 days.", "**Network**: MAC addresses", "Kept while the device is managed.",
		"account name. Kept while you have a managed device, and at most 30 days after.",
		"Erase the whole device only if you allow it", "Remove everything it installed"} {
		if !strings.Contains(personal, want) {
			t.Errorf("the personal summary lacks %q:\n%s", want, personal)
		}
	}
	if strings.Contains(personal, "Kept 30 days") || strings.Contains(personal, "Lost Mode") {
		t.Errorf("the personal summary gives the default usage retention or Lost Mode:\n%s", personal)
	}
	if ue := PlainSummary(s, UserEnrolled); !strings.Contains(ue, "It cannot erase your whole device.") || !strings.Contains(ue, "not of a Mac") ||
		strings.Contains(ue, "Restart") {
		t.Errorf("the User Enrollment summary:\n%s", ue)
	}
	if corporate := PlainSummary(s, Corporate); !strings.Contains(corporate, "Lost Mode") || !strings.Contains(corporate, "Restart") {
		t.Errorf("the corporate summary:\n%s", corporate)
	}
}
