package mdm_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestLeftDeviceIsNoIdentityMisuse: a device still talking after it
// checked out or was deprovisioned is refused and told to unenrol (Apple's
// unrecognized-device error), not audited as a certificate naming another
// device (its channel keeps no index to compare once closed).
func TestLeftDeviceIsNoIdentityMisuse(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		metrics := prometheus.NewRegistry()
		metrics.MustRegister(f.svc.MetricsCollector())

		checkedOut, _ := f.polled(ts, privacy.Corporate, "")
		if _, err := checkedOut.Checkin(f.ctx, checkedOut.CheckOut()); err != nil {
			t.Fatal(err)
		}
		deprovisioned, dev := f.polled(ts, privacy.Corporate, "")
		if _, err := f.priv.DeprovisionDevice(f.ctx, f.tenant, dev.ID, "returned to the supplier", admin); err != nil {
			t.Fatal(err)
		}

		head := auditSeq(t, st, f.tenant)
		before := deviceOutcomes(t, metrics, f.tenant)
		for name, d := range map[string]*sim.Device{"checked out": checkedOut, "deprovisioned": deprovisioned} {
			var se *sim.StatusError
			const unenrol = `{"code":"com.apple.unrecognized.device"}`
			if _, err := d.Checkin(f.ctx, d.TokenUpdate()); !errors.As(err, &se) || se.Status != http.StatusForbidden || se.Body != unenrol {
				t.Errorf("%s: TokenUpdate: %v, want 403 telling it to unenrol", name, err)
			}
			if _, err := d.Send(f.ctx, map[string]any{"Status": "Idle"}); !errors.As(err, &se) || se.Status != http.StatusForbidden || se.Body != unenrol {
				t.Errorf("%s: Idle: %v, want 403 telling it to unenrol", name, err)
			}
		}
		if got := auditSeq(t, st, f.tenant); got != head {
			t.Errorf("left devices talking were audited: %d entries", got-head)
		}
		after := deviceOutcomes(t, metrics, f.tenant)
		if got := after["left_device"] - before["left_device"]; got != 4 {
			t.Errorf("counted as left_device: %v, want 4 (wrong_device: %v)", got, after["wrong_device"]-before["wrong_device"])
		}
	})
}
