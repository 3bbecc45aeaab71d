package server

import (
	"testing"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestDeviceThatNamesItselfUnsupportedIsRetired: a device whose
// Authenticate named nothing (as a Vision Pro under User Enrollment may)
// and whose DeviceInformation then says it is none of the iPhones, iPads
// and Macs Steward manages is retired, as enrolment would have refused it:
// what it reported is erased, its management profile is removed without
// an admin's approval, and the retire is on record as the system's, with
// its reason.
func TestDeviceThatNamesItselfUnsupportedIsRetired(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		headset, headsetID := f.enrolUnpolled("corporate", "", "", func(d *sim.Device) { d.Model, d.ProductName = "", "" })
		if d := f.device(f.owner, headsetID); d.Platform != "" || d.State != store.DeviceEnrolled {
			t.Fatalf("a device that named nothing: platform %q, state %q", d.Platform, d.State)
		}

		headset.Model, headset.ProductName = "RealityDevice14,1", "RealityDevice14,1" // as its DeviceInformation answers
		f.poll(headset)
		d := f.device(f.owner, headsetID)
		if d.State != store.DeviceRetired || d.Platform != "" {
			t.Errorf("the Vision Pro after its retire: state %q, platform %q; want retired, no platform", d.State, d.Platform)
		}
		if values, err := st.Read().Inventory().Current(f.ctx, f.tenant, headsetID); err != nil || len(values) != 0 {
			t.Errorf("the Vision Pro's inventory: %d values (%v), want none kept", len(values), err)
		}
		var actions api.List[api.ActionView]
		f.must(200, f.owner, "GET", f.path("/devices/"+headsetID+"/actions"), nil, &actions)
		if len(actions.Items) != 1 || actions.Items[0].Action != "retire" || actions.Items[0].State != store.ActionDone ||
			actions.Items[0].RequestedBy != "system:steward" || actions.Items[0].Reason != "not an iPhone, iPad or Mac: Steward does not manage it" {
			t.Errorf("the Vision Pro's actions: %+v, want the system's retire, done", actions.Items)
		}
	})
}
