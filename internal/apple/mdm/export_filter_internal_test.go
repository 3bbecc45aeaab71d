package mdm

import (
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
