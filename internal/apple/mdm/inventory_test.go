package mdm_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestManagedAppStatesReachTheInventory: a ManagedApplicationList answer is
// kept, through the gate, as apps.managed.
func TestManagedAppStatesReachTheInventory(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ManagedApplicationList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	var apps []mdm.ManagedApp
	if err := json.Unmarshal(f.fields(dev.ID)["apps.managed"].Value, &apps); err != nil {
		t.Fatal(err)
	}
	if len(apps) != 10 || apps[0].ID != "com.example.app000" || apps[0].Status != "Managed" || apps[0].Validated == nil || !*apps[0].Validated {
		t.Fatalf("apps.managed = %+v, want the 10 managed apps in order", apps)
	}
}

// TestListsOnPersonalDevicesAreManagedOnly: profile and certificate lists
// asked of a personally owned device cover only what the organisation
// installed.
func TestListsOnPersonalDevicesAreManagedOnly(t *testing.T) {
	for _, c := range []struct {
		ownership privacy.Ownership
		want      bool
	}{{privacy.Corporate, false}, {privacy.Personal, true}, {privacy.UserEnrolled, true}} {
		d := store.Device{Ownership: string(c.ownership)}
		p, err := mdm.RequestFor(mdmproto.ProfileList{}, d, privacy.Settings{}, false)
		if err != nil || p.(mdmproto.ProfileList).ManagedOnly != c.want {
			t.Errorf("%s ProfileList: %+v, %v; want ManagedOnly %v", c.ownership, p, err, c.want)
		}
		l, err := mdm.RequestFor(mdmproto.CertificateList{}, d, privacy.Settings{}, false)
		if err != nil || l.(mdmproto.CertificateList).ManagedOnly != c.want {
			t.Errorf("%s CertificateList: %+v, %v; want ManagedOnly %v", c.ownership, l, err, c.want)
		}
	}
}

// TestPersonalDeviceReportsWhatItsNoticeSays: under the default policy a
// personal device's MAC addresses are collected and hidden, as its notice
// says; its profile must grant the right a device needs to answer for
// them, and nothing telephony-related is asked or kept.
func TestPersonalDeviceReportsWhatItsNoticeSays(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Personal, f.subject("erika@acme.test"))
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	if len(d.Withheld) > 0 {
		t.Errorf("the device was asked for %v, which its access rights do not cover", d.Withheld)
	}
	fields := f.fields(dev.ID)
	if mac, ok := fields["network.wifi_mac"]; !ok || !mac.Masked {
		t.Errorf("network.wifi_mac = %+v (present %v), want it kept and masked", mac, ok)
	}
	if v, ok := fields["os.supervised"]; !ok || string(v.Value) != "false" {
		t.Errorf("os.supervised = %s, want false for a device enrolled by a downloaded profile", v.Value)
	}
	for field := range fields {
		if strings.HasPrefix(field, "telephony.") {
			t.Errorf("a personal device stored %s", field)
		}
	}
}
