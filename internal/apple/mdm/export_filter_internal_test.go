package mdm

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// TestAccountLookupsStayOutOfDeviceExports: a lookup of an account on a
// device, with the admin's reason about whoever the account is, reaches
// that person's access record, never the export of the device's owner,
// personal or not; the device's other audit entries reach a personal
// device's owner as before.
func TestAccountLookupsStayOutOfDeviceExports(t *testing.T) {
	lookup := store.AuditEntry{Action: "mdm.user_channel.lookup", Reason: "HR: did Anna use this Mac?", Details: []byte(`{"found":true}`)}
	opened := store.AuditEntry{Action: "mdm.user_channel.open", Details: []byte(`{"user_channel":"uc1"}`)}
	for _, o := range []privacy.Ownership{privacy.Personal, privacy.UserEnrolled, privacy.Corporate} {
		d := store.Device{Ownership: string(o)}
		if othersAccountsLeftOut(lookup, d) {
			t.Errorf("an account lookup reaches the export of a %s device", o)
		}
		if got, want := othersAccountsLeftOut(opened, d), o.PersonallyOwned(); got != want {
			t.Errorf("a user channel entry on a %s device kept: %v, want %v", o, got, want)
		}
	}
}

// TestExportShowsTheWholeErrorChain: a command's error in the export has
// every entry the admin's view of it has, not only the first.
func TestExportShowsTheWholeErrorChain(t *testing.T) {
	chain := `[{"ErrorDomain":"MCProfileErrorDomain","ErrorCode":1009,"LocalizedDescription":"The profile could not be installed."},` +
		`{"ErrorDomain":"MCInstallationErrorDomain","ErrorCode":4001}]`
	got := errorChainText(chain)
	for _, want := range []string{"MCProfileErrorDomain error 1009: The profile could not be installed.", "caused by MCInstallationErrorDomain error 4001"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if got := errorChainText("not json"); got != "the device reported an error" {
		t.Errorf("an unreadable chain: %q", got)
	}
}
