package mdm_test

import (
	"encoding/json"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestProfileListKeepsTheOrganisationsProfiles: a ProfileList answer is
// kept as security.profiles, names and flags without content; on an
// employee's own device only the profiles MDM installed, not theirs (nor
// ownerOf creates the person a personally owned device of class o belongs
// to and returns their ID; "" for the organisation's devices.
func (f *fixture) ownerOf(o privacy.Ownership) string {
	if !o.PersonallyOwned() {
		return ""
	}
	return f.subject("erika@acme.test")
}

// one the device does not say of); a malformed answer fails its command.
func TestProfileListKeepsTheOrganisationsProfiles(t *testing.T) {
	for _, o := range []privacy.Ownership{privacy.Corporate, privacy.Personal} {
		t.Run(string(o), func(t *testing.T) {
			f := newFixture(t, storetest.OpenSQLite(t))
			f.publish(o)
			ts := f.serve()
			subject := f.ownerOf(o)
			d, dev := f.polled(ts, o, subject)
			answer := map[string]any{"ProfileList": []any{
				map[string]any{"PayloadIdentifier": "com.acme.mdm", "PayloadDisplayName": "ACME management", "PayloadOrganization": "ACME",
					"IsManaged": true, "PayloadRemovalDisallowed": true},
				map[string]any{"PayloadIdentifier": "org.erika.vpn", "PayloadDisplayName": "Erika's home VPN", "IsManaged": false},
				map[string]any{"PayloadIdentifier": "org.erika.old", "PayloadDisplayName": "Erika's old profile"},
			}}
			if state := f.answer(t, d, dev.ID, mdmproto.ProfileList{}, answer); state != store.CommandAcknowledged {
				t.Fatalf("the profile list ended %s", state)
			}
			var kept []mdm.InstalledProfile
			if err := json.Unmarshal(f.fields(dev.ID)["security.profiles"].Value, &kept); err != nil {
				t.Fatal(err)
			}
			want := 3
			if o.PersonallyOwned() {
				want = 1
			}
			if len(kept) != want || kept[0].Identifier != "com.acme.mdm" || kept[0].Managed == nil || !*kept[0].Managed || !kept[0].RemovalDisallowed || kept[0].Organisation != "ACME" {
				t.Errorf("kept %+v; want %d profiles, the organisation's first", kept, want)
			}
			if state := f.answer(t, d, dev.ID, mdmproto.ProfileList{}, map[string]any{"ProfileList": "not a list"}); state != store.CommandError {
				t.Errorf("a malformed profile list ended %s, want %s", state, store.CommandError)
			}
		})
	}
}
