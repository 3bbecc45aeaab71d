package mdm_test

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestSharedIPadRules: an iPad that says it is a Shared iPad (IsMultiUser)
// is refused ClearPasscode and erased without DisallowProximitySetup, both
// of which Apple forbids there (passcode.clear.yaml, device.erase.yaml);
// an iPad that says it is not takes both.
func TestSharedIPadRules(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	sharedSim, shared := f.polled(ts, privacy.Corporate, "", supervisedIPad(true))
	singleSim, single := f.polled(ts, privacy.Corporate, "", supervisedIPad(false))
	for dev, want := range map[string]string{shared.ID: "true", single.ID: "false"} {
		if got := string(f.fields(dev)["os.shared_ipad"].Value); got != want {
			t.Errorf("device %s stored os.shared_ipad %q, want %q", dev, got, want)
		}
		// As device management keeps it: with the version on the device's
		// row, only a command that depends on the mode reads the report.
		if err := f.st.Tx(f.ctx, func(q store.Queries) error {
			return q.ManagedDevices().SetProjection(f.ctx, store.DeviceProjection{TenantID: f.tenant, DeviceID: dev, OSVersion: "18.1"})
		}); err != nil {
			t.Fatal(err)
		}
	}

	_, err := f.svc.Enqueue(f.ctx, f.tenant, []string{shared.ID}, mdmproto.ClearPasscode{}, "", admin)
	if !apperr.IsKind(err, apperr.KindConflict) || apperr.As(err).Details["reason"] != mdm.SkipUnsupported || !strings.Contains(err.Error(), "Shared iPad") {
		t.Errorf("ClearPasscode to a Shared iPad: %v; want refused as unsupported", err)
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{single.ID}, mdmproto.ClearPasscode{}, "", admin); err != nil {
		t.Errorf("ClearPasscode to an iPad that is not shared: %v", err)
	}

	erase := mdmproto.EraseDevice{PreserveDataPlan: true, DisallowProximitySetup: true}
	for _, c := range []struct {
		dev       store.Device
		proximity bool
	}{{shared, false}, {single, true}} {
		cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{c.dev.ID}, erase, "retired", admin)
		if err != nil {
			t.Fatal(err)
		}
		sent := f.sent(cmds[0])
		if _, got := sent["DisallowProximitySetup"]; got != c.proximity || sent["PreserveDataPlan"] != true {
			t.Errorf("erase sent to device %s: %v; want DisallowProximitySetup %v", c.dev.ID, sent, c.proximity)
		}
	}
	for _, d := range []*sim.Device{sharedSim, singleSim} {
		if _, err := d.Poll(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestProximitySetupAloneBeforeIOS14: before iOS 14 DisallowProximitySetup
// may not go with another key (device.erase.yaml); the data plan is kept.
func TestProximitySetupAloneBeforeIOS14(t *testing.T) {
	settings := privacy.Settings{Policy: privacy.DefaultPolicy()}
	corporate := settings.Policy[privacy.Corporate]
	corporate.FullWipe = true
	settings.Policy[privacy.Corporate] = corporate
	for _, c := range []struct {
		version string
		req     mdmproto.EraseDevice
		want    mdmproto.EraseDevice
	}{
		{"13.7", mdmproto.EraseDevice{PreserveDataPlan: true, DisallowProximitySetup: true}, mdmproto.EraseDevice{PreserveDataPlan: true}},
		{"13.7", mdmproto.EraseDevice{DisallowProximitySetup: true}, mdmproto.EraseDevice{DisallowProximitySetup: true}},
		{"14.0", mdmproto.EraseDevice{PreserveDataPlan: true, DisallowProximitySetup: true},
			mdmproto.EraseDevice{PreserveDataPlan: true, DisallowProximitySetup: true}},
	} {
		d := store.Device{Platform: "ios", Ownership: "corporate", OSVersion: c.version}
		got, err := mdm.RequestFor(c.req, d, settings, mdm.DeviceFacts{})
		if err != nil || got != c.want {
			t.Errorf("erase %+v on iOS %s: %+v, %v; want %+v", c.req, c.version, got, err, c.want)
		}
	}
}

// supervisedIPad makes a simulated device a supervised iPad, a Shared iPad
// when shared.
func supervisedIPad(shared bool) func(*sim.Device) {
	return func(d *sim.Device) {
		d.Model, d.ProductName, d.Supervised, d.SharedIPad = "iPad13,18", "iPad13,18", true, shared
	}
}
