package mdm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/exporttest"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestExportSaysWhatTheProtocolHolds: a person's data export lists what
// the MDM protocol holds about their device besides its inventory: its
// channel, the tokens escrowed for it (none on a personal device), and the
// user accounts that had a channel on it, which Steward knows by keyed
// index only and so cannot name.
func TestExportSaysWhatTheProtocolHolds(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	mac, _ := f.enrolled(ts, privacy.Personal, erika)
	if err := mac.NewUser("erika", "Erika Mustermann").LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	arc, err := f.priv.ExportSubject(f.ctx, f.tenant, erika, admin)
	if err != nil {
		t.Fatal(err)
	}
	exp, dir, _ := exporttest.Open(t, arc)
	if len(exp.Devices) != 1 {
		t.Fatalf("%d devices exported; want 1", len(exp.Devices))
	}
	// By name: serve's Service registers its hook next to the fixture's.
	got := map[string]string{}
	userChannels := map[string]bool{}
	for _, r := range exp.Devices[0].Management {
		if strings.HasPrefix(r.Name, "Channel of a user account") {
			userChannels[r.Name] = true
			if !strings.HasPrefix(r.Value, "open;") || strings.Contains(r.Value, "Mustermann") {
				t.Errorf("user channel exported as %q", r.Value)
			}
			continue
		}
		got[r.Name] = r.Value
	}
	for name, want := range map[string]string{"Apple MDM channel": "open", "Push registration held": "yes",
		"Unlock token held (lets the organisation clear the device's passcode)": "no"} {
		if got[name] != want {
			t.Errorf("%s: %q; want %q (all: %v)", name, got[name], want, got)
		}
	}
	if len(userChannels) != 1 {
		t.Errorf("user channels exported: %v; want 1", userChannels)
	}
	page, err := os.ReadFile(filepath.Join(dir, "summary.html"))
	if err != nil || !strings.Contains(string(page), "Held for managing the device") {
		t.Errorf("summary.html does not show what the protocol holds (%v)", err)
	}
}
