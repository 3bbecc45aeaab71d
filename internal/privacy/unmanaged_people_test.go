package privacy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPersonErasedMonthAfterLastDeviceLeft: the notice says a person's
// identity is kept while they have a managed device and at most 30 days
// after. Thirty days after their last device left, the retention purge
// erases them as an admin's erasure would (deletion certificate, audited
// as the system); someone with another device, one registered since, or
// none ever, stays. A device leaving later counts the 30 days afresh.
func TestPersonErasedMonthAfterLastDeviceLeft(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		p := &privacy.Purger{Service: f.svc}
		leave := func(d store.Device) {
			t.Helper()
			if _, err := f.svc.DeprovisionDevice(f.ctx, f.tenant, d.ID, "the employee returned the phone", admin); err != nil {
				t.Fatal(err)
			}
		}
		state := func(s store.Subject) store.SubjectState {
			t.Helper()
			got, err := f.st.Read().Subjects().Get(f.ctx, f.tenant, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.State
		}
		erika, max, ana, bo := f.person("erika@acme.test"), f.person("max@acme.test"), f.person("ana@acme.test"), f.person("bo@acme.test")
		leave(f.device(erika.ID, privacy.Personal))
		leave(f.device(max.ID, privacy.Personal))
		f.device(max.ID, privacy.Corporate) // still managed
		leave(f.device(ana.ID, privacy.Personal))

		f.now = f.now.Add(20 * 24 * time.Hour)
		replacement := f.device(ana.ID, privacy.Personal) // Ana's new phone
		f.now = f.now.Add(5 * 24 * time.Hour)
		leave(replacement) // and it leaves too, 25 days after the first

		f.now = f.now.Add(4 * 24 * time.Hour) // 29 days after the first departures
		if res, err := p.RunOnce(f.ctx); err != nil || res.ByKey[f.tenant+"/people_without_devices"] != 0 {
			t.Fatalf("before 30 days: %+v %v", res, err)
		}
		f.now = f.now.Add(2 * 24 * time.Hour) // 31 days
		res, err := p.RunOnce(f.ctx)
		if err != nil || res.ByKey[f.tenant+"/people_without_devices"] != 1 {
			t.Fatalf("after 31 days: %+v %v; want Erika erased", res, err)
		}
		if state(erika) != store.SubjectErased {
			t.Error("Erika, whose only device left 31 days ago, was kept")
		}
		for name, s := range map[string]store.Subject{"Max (a managed device)": max, "Ana (her new phone left 6 days ago)": ana,
			"Bo (never had a device)": bo} {
			if state(s) != store.SubjectActive {
				t.Errorf("%s was erased", name)
			}
		}
		if _, err := f.svc.OpenProfile(f.ctx, f.st.Read(), mustSubject(t, f, erika.ID)); err == nil {
			t.Error("Erika's profile still opens")
		}
		erasures, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "privacy.erase"})
		if err != nil || len(erasures) != 1 || erasures[0].TargetID != erika.ID || erasures[0].ActorType != store.ActorSystem ||
			!strings.Contains(erasures[0].Reason, "no managed device") {
			t.Errorf("the erasure on the audit record: %+v %v", erasures, err)
		}
		f.now = f.now.Add(25 * 24 * time.Hour) // Ana's last departure is 31 days old
		if _, err := p.RunOnce(f.ctx); err != nil || state(ana) != store.SubjectErased || state(max) != store.SubjectActive || state(bo) != store.SubjectActive {
			t.Errorf("a month after Ana's last device left: %v; Ana %s, Max %s, Bo %s", err, state(ana), state(max), state(bo))
		}
	})
}

func mustSubject(t *testing.T, f *fixture, id string) store.Subject {
	t.Helper()
	s, err := f.st.Read().Subjects().Get(f.ctx, f.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
