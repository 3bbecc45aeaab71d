package server

import (
	"testing"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestMacWipeObliteratesWithWarning: the erase a Mac on macOS 12 or later
// receives says ObliterateWithWarning, so that a Mac whose Erase All
// Content and Settings cannot run answers Acknowledged as it erases itself
// (under Default it would answer Error and erase itself all the same, and
// Steward would keep the erased Mac enrolled). An iPhone's erase, and a
// Mac's before macOS 12, carry no such key.
func TestMacWipeObliteratesWithWarning(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		sonoma, sonomaID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.OSVersion = "14.6" })
		bigSur, bigSurID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.OSVersion = "11.7" })
		phone, phoneID := f.enrol("corporate", "", "", nil)
		for _, c := range []struct {
			name string
			d    *sim.Device
			id   string
			want string
		}{{"a Mac on macOS 14", sonoma, sonomaID, "ObliterateWithWarning"}, {"a Mac on macOS 11", bigSur, bigSurID, ""},
			{"an iPhone", phone, phoneID, ""}} {
			var b actions.Batch
			f.must(201, f.owner, "POST", f.path("/devices/"+c.id+"/actions"), api.DeviceActionRequest{Action: actions.Wipe,
				Reason: "stolen from the office, police report 4711", Options: actions.Options{PIN: "135790"}}, &b)
			f.must(200, second, "POST", f.path("/action-approvals/"+b.ApprovalID), actions.Decision{Approve: true}, nil)
			out, err := c.d.Send(f.ctx, map[string]any{"Status": "Idle", "UDID": c.d.UDID})
			if err != nil {
				t.Fatal(err)
			}
			var cmd struct {
				Command struct {
					RequestType          string
					ObliterationBehavior string
				}
			}
			if _, err := plist.Unmarshal(out, &cmd); err != nil {
				t.Fatalf("%s: an unreadable command: %v", c.name, err)
			}
			if cmd.Command.RequestType != "EraseDevice" || cmd.Command.ObliterationBehavior != c.want {
				t.Errorf("the wipe %s receives: %+v, want ObliterationBehavior %q", c.name, cmd.Command, c.want)
			}
		}
	})
}
