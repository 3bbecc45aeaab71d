package mdm_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// A device answers DeviceLocation only in Lost Mode (error 12067
// otherwise): a locate is queued only behind an EnableLostMode it took or
// has queued, and not after a DisableLostMode.
func TestLocateNeedsLostMode(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.polled(ts, privacy.Corporate, "", supervised)
	refused := func(when string) {
		t.Helper()
		_, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceLocation{}, "", admin)
		if ae := apperr.As(err); ae == nil || ae.Kind != apperr.KindConflict || ae.Details["reason"] != mdm.SkipRefused {
			t.Errorf("locate %s: %v", when, err)
		}
	}
	refused("before Lost Mode")
	for _, r := range []mdmproto.Request{mdmproto.EnableLostMode{Message: "Call IT"}, mdmproto.DeviceLocation{}} {
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, r, "", admin); err != nil {
			t.Fatalf("%s behind a queued EnableLostMode: %v", r.RequestType(), err)
		}
	}
	if n, err := d.Poll(f.ctx); err != nil || n != 2 {
		t.Fatalf("the device answered %d commands, %v", n, err)
	}
	if _, ok := f.fields(dev.ID)["location.coordinates"]; !ok {
		t.Error("the device in Lost Mode was not located")
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceLocation{}, "", admin); err != nil {
		t.Errorf("locate in Lost Mode: %v", err)
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DisableLostMode{}, "", admin); err != nil {
		t.Fatal(err)
	}
	refused("behind a DisableLostMode")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	refused("after Lost Mode")
}
