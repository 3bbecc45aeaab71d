package mdm_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// Apple warns that a remote lock deactivates an Apple silicon Mac before
// macOS 11.5 (device.lock.yaml): such a Mac is refused a lock, PIN or not,
// while an Intel Mac on the same version and an Apple silicon Mac on 11.5
// are locked.
func TestNoLockDeactivatesAnAppleSiliconMac(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	mac := func(version string, intel bool) string {
		_, dev := f.polled(ts, privacy.Corporate, "", mac, func(d *sim.Device) { d.OSVersion, d.IntelMac = version, intel })
		return dev.ID
	}
	silicon113, intel113, silicon115 := mac("11.3", false), mac("11.3", true), mac("11.5", false)
	for _, lock := range []mdmproto.DeviceLock{{}, {PIN: "123456"}} {
		_, err := f.svc.Enqueue(f.ctx, f.tenant, []string{silicon113}, lock, "", admin)
		if ae := apperr.As(err); ae == nil || ae.Kind != apperr.KindConflict || ae.Details["reason"] != mdm.SkipUnsupported {
			t.Errorf("lock (PIN %t) of an Apple silicon Mac on 11.3: %v", lock.PIN != "", err)
		}
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{intel113}, mdmproto.DeviceLock{PIN: "123456"}, "", admin); err != nil {
		t.Errorf("lock of an Intel Mac on 11.3: %v", err)
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{silicon115}, mdmproto.DeviceLock{}, "", admin); err != nil {
		t.Errorf("lock of an Apple silicon Mac on 11.5: %v", err)
	}
	// An erase is not concerned.
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{silicon113}, mdmproto.EraseDevice{}, "", admin); err != nil {
		t.Errorf("erase of an Apple silicon Mac on 11.3: %v", err)
	}
}
