package mdm_test

import (
	"slices"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestDeviceInformationAsksWhatTheOwnerAccepted: after a widening, a
// personal device is asked only what the notice its owner accepted
// collects, and what it answers beyond that is not stored; once they
// accept the new notice it is asked what the new policy collects.
func TestDeviceInformationAsksWhatTheOwnerAccepted(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ts := f.serve()
		f.publish(privacy.Personal)
		erika := f.subject("erika@acme.test")
		d, dev := f.enrolled(ts, privacy.Personal, erika)
		res, err := f.priv.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Reason: "the works council agreed to this change",
			Changes: []privacy.Change{{Ownership: privacy.Personal, Category: privacy.Telephony, Mode: privacy.Show}}}, "admin-a", admin)
		if err == nil {
			res, err = f.priv.DecidePolicyChange(f.ctx, f.tenant, res.Approval.ID, privacy.DecideInput{Approve: true}, "admin-b", admin)
		}
		if err != nil || !res.Applied {
			t.Fatalf("widening telephony: %+v, %v", res, err)
		}

		ask := func(when string, wantIMEI bool) {
			t.Helper()
			cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceInformation{}, "", admin)
			if err != nil {
				t.Fatal(err)
			}
			// A personal device is asked the deprecated query even on iOS 18,
			// as the simulated device runs.
			if asked := slices.Contains(cmds[0].Queries, "IMEI"); asked != wantIMEI {
				t.Errorf("%s: IMEI asked %v, want %v (queries %v)", when, asked, wantIMEI, cmds[0].Queries)
			}
			if _, err := d.Poll(f.ctx); err != nil {
				t.Fatal(err)
			}
			if imei, stored := f.fields(dev.ID)["telephony.imei"]; stored != wantIMEI || (stored && imei.Masked) {
				t.Errorf("%s: IMEI stored %v (%+v), want stored and shown %v", when, stored, imei, wantIMEI)
			}
		}
		ask("before Erika accepted version 2", false)
		if _, err := f.priv.RecordConsent(f.ctx, f.tenant, erika, privacy.ConsentInput{Ownership: string(privacy.Personal),
			NoticeVersion: 2, Language: "en", Method: "portal"}, iam.Actor{Type: store.ActorSubject, ID: erika}); err != nil {
			t.Fatal(err)
		}
		ask("after Erika accepted version 2", true)
	})
}
