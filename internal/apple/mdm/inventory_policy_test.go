package mdm_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestInventoryAsksNothingThePolicyDrops: a device whose class's policy
// keeps no installed apps is not asked for them at enrolment; with the
// security state dropped too, it is not asked SecurityInfo either. An
// admin's SecurityInfo is still sent; an admin's list of what the policy
// drops is not.
func TestInventoryAsksNothingThePolicyDrops(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	f.changePolicy(privacy.Change{Ownership: privacy.Corporate, Category: privacy.InstalledApps, Mode: privacy.Drop})
	_, apps := f.polled(ts, privacy.Corporate, "")
	f.changePolicy(privacy.Change{Ownership: privacy.Corporate, Category: privacy.SecurityState, Mode: privacy.Drop})
	_, both := f.polled(ts, privacy.Corporate, "")
	for _, c := range []struct {
		name          string
		dev           string
		asked, absent []mdmproto.RequestType
	}{
		{"apps dropped", apps.ID, []mdmproto.RequestType{mdmproto.RequestDeviceInformation, mdmproto.RequestSecurityInfo},
			[]mdmproto.RequestType{mdmproto.RequestInstalledApplicationList}},
		{"apps and security dropped", both.ID, []mdmproto.RequestType{mdmproto.RequestDeviceInformation},
			[]mdmproto.RequestType{mdmproto.RequestInstalledApplicationList, mdmproto.RequestSecurityInfo}},
	} {
		got := f.commandsOf(c.dev)
		for _, rt := range c.asked {
			if got[string(rt)] == "" {
				t.Errorf("%s: %s was not asked at enrolment (%v)", c.name, rt, got)
			}
		}
		for _, rt := range c.absent {
			if got[string(rt)] != "" {
				t.Errorf("%s: %s was asked at enrolment though the policy keeps nothing of it", c.name, rt)
			}
		}
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{both.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil {
		t.Errorf("SecurityInfo named by an admin: %v", err)
	}
	// An app or certificate list an admin names is refused where the policy
	// keeps none of it: the device would still send every entry.
	for _, req := range []mdmproto.Request{mdmproto.InstalledApplicationList{}, mdmproto.CertificateList{}} {
		_, err := f.svc.Enqueue(f.ctx, f.tenant, []string{both.ID}, req, "", admin)
		if e := apperr.As(err); e == nil || e.Details["reason"] != mdm.SkipPolicy {
			t.Errorf("%s named by an admin for a device whose policy drops it: %v", req.RequestType(), err)
		}
	}
	if _, _, err := f.svc.EnqueueBulk(f.ctx, f.tenant, []string{apps.ID, both.ID}, mdmproto.CertificateList{}, "", admin); apperr.As(err) == nil ||
		apperr.As(err).Details["reason"] != mdm.SkipPolicy {
		t.Errorf("a certificate list for devices whose policy drops it: %v", err)
	}
	if got := f.commandsOf(both.ID); got[string(mdmproto.RequestInstalledApplicationList)] != "" || got[string(mdmproto.RequestCertificateList)] != "" {
		t.Errorf("a refused list was queued: %v", got)
	}
}
