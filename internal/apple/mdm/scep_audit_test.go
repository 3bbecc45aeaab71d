package mdm_test

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// auditedAs returns the tenant's audit entries of action, oldest first.
func (f *fixture) auditedAs(action string) []store.AuditEntry {
	f.t.Helper()
	entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: action})
	if err != nil {
		f.t.Fatal(err)
	}
	return entries
}

func detailsOf(t *testing.T, e store.AuditEntry) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(e.Details, &d); err != nil {
		t.Fatalf("details of %s: %s (%v)", e.Action, e.Details, err)
	}
	return d
}

// TestIdentityIssuanceAndRenewalAreAudited: every device identity the
// tenant's CA issues is audited in its issuance (serial, whether a
// renewal; no challenge, no key), and so is the channel's move to a
// renewed certificate, with the old and the new serial, once.
func TestIdentityIssuanceAndRenewalAreAudited(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		d, dev := f.enrolled(ts, privacy.Corporate, "")
		ch, err := st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
		if err != nil {
			t.Fatal(err)
		}
		first := d.Certificate().SerialNumber.String()
		issued := f.auditedAs("scep.certificate.issued")
		if len(issued) != 1 {
			t.Fatalf("%d issuances audited, want 1", len(issued))
		}
		e := issued[0]
		if e.ActorType != store.ActorDevice || e.ActorID != "enrolment:"+ch.EnrolmentID || e.TargetType != "enrolment" ||
			e.TargetID != ch.EnrolmentID || e.Outcome != "success" || e.SourceIP == "" {
			t.Errorf("issuance entry: %+v", e)
		}
		if got := detailsOf(t, e); len(got) != 2 || got["certificate_serial"] != first || got["renewal"] != false {
			t.Errorf("issuance details %s, want the serial %s and renewal false alone", e.Details, first)
		}

		if err := d.RenewIdentity(f.ctx); err != nil {
			t.Fatal(err)
		}
		second := d.Certificate().SerialNumber.String()
		if issued = f.auditedAs("scep.certificate.issued"); len(issued) != 2 {
			t.Fatalf("%d issuances audited after a renewal, want 2", len(issued))
		}
		if e := issued[1]; e.ActorID != dev.ID || e.TargetID != ch.EnrolmentID ||
			detailsOf(t, e)["certificate_serial"] != second || detailsOf(t, e)["renewal"] != true {
			t.Errorf("renewal's issuance entry: %+v %s", e, e.Details)
		}
		// A request with the new certificate naming another device is
		// refused, and the move it began is undone with its entry.
		thief, _ := sim.New(ts.Client(), false)
		thief.Forge(d)
		if _, err := thief.Send(f.ctx, map[string]any{"Status": "Idle"}); status(t, err) != http.StatusForbidden {
			t.Fatalf("a request with the renewed certificate naming another device: %v, want 403", err)
		}
		if moved := f.auditedAs("mdm.identity.renewed"); len(moved) != 0 {
			t.Fatalf("the channel's move audited before the device used its new certificate: %+v", moved)
		}
		for range 2 {
			if _, err := d.Poll(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		moved := f.auditedAs("mdm.identity.renewed")
		if len(moved) != 1 {
			t.Fatalf("%d moves audited, want 1", len(moved))
		}
		got := detailsOf(t, moved[0])
		if moved[0].ActorID != dev.ID || moved[0].TargetType != "device" || moved[0].TargetID != dev.ID ||
			got["old_certificate_serial"] != first || got["new_certificate_serial"] != second || got["enrolment"] != ch.EnrolmentID {
			t.Errorf("move entry: %+v %s", moved[0], moved[0].Details)
		}
	})
}

// TestRefusedIdentityRequestsAreAudited: a SCEP request refused is audited
// as scep.refused (the reason's code, the enrolment when the request named
// one), and the issuance it would have been leaves no entry. Refusals
// alike are audited once per interval, the entry closing it counting the
// ones between: a flood of requests, which need no credential, cannot grow
// the audit log without bound.
func TestRefusedIdentityRequestsAreAudited(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, link, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: string(privacy.Corporate)}, admin)
	if err != nil {
		t.Fatal(err)
	}
	enrolment := f.enrolmentOf(link).ID
	device, _ := sim.New(ts.Client(), false)
	spare, _ := sim.New(ts.Client(), false)
	if err := device.Prepare(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	if err := spare.Prepare(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	if err := device.Complete(f.ctx); err != nil {
		t.Fatal(err)
	}
	issuedBefore := len(f.auditedAs("scep.certificate.issued"))

	// The spare certificate's holder tries to renew into the channel.
	var refused *sim.RefusedError
	for range 4 {
		if err := spare.RenewIdentity(f.ctx); !errors.As(err, &refused) {
			t.Fatalf("a certificate the device never used was renewed: %v", err)
		}
	}
	if n := len(f.auditedAs("scep.certificate.issued")); n != issuedBefore {
		t.Errorf("a refused renewal left %d issuance entries", n-issuedBefore)
	}
	entries := f.auditedAs("scep.refused")
	if len(entries) != 1 {
		t.Fatalf("%d entries for 4 refusals within the interval, want 1", len(entries))
	}
	e := entries[0]
	if e.ActorType != store.ActorAnonymous || e.Outcome != "denied" || e.TargetType != "enrolment" || e.TargetID != enrolment ||
		e.SourceIP == "" || e.Reason == "" {
		t.Errorf("refusal entry: %+v", e)
	}
	if got := detailsOf(t, e); got["code"] != "renewal_not_by_current_certificate" || got["refusals_since_last_entry"] != 0.0 {
		t.Errorf("refusal details: %s", e.Details)
	}

	// Another reason is audited on its own, without an enrolment when the
	// request was refused before it named one.
	wildcard, _ := sim.New(ts.Client(), false)
	wildcard.CommonName = "*.example.test"
	if err := wildcard.Prepare(f.ctx, f.invite(privacy.Corporate, ""), false); !errors.As(err, &refused) {
		t.Fatalf("a wildcard subject was issued: %v", err)
	}
	entries = f.auditedAs("scep.refused")
	if len(entries) != 2 || detailsOf(t, entries[1])["code"] != "subject_not_accepted" || entries[1].TargetID != "" {
		t.Fatalf("refusals audited: %+v", entries)
	}

	// When the interval ends, the sweep counts the refusals in between.
	f.svc.AuditClosedMisuse(f.ctx)
	if n := len(f.auditedAs("scep.refused")); n != 2 {
		t.Fatalf("the sweep wrote %d entries before the interval ended", n-2)
	}
	f.svc.SetClock(func() time.Time { return time.Now().Add(6 * time.Minute) })
	f.svc.AuditClosedMisuse(f.ctx)
	entries = f.auditedAs("scep.refused")
	if len(entries) != 3 {
		t.Fatalf("%d entries after the interval, want 3", len(entries))
	}
	closing := detailsOf(t, entries[2])
	if entries[2].TargetID != enrolment || closing["code"] != "renewal_not_by_current_certificate" || closing["refusals_since_last_entry"] != 3.0 {
		t.Errorf("closing entry: %+v %s, want the 3 renewals refused after the first", entries[2], entries[2].Details)
	}
	for _, e := range entries {
		if keys := slices.Sorted(maps.Keys(detailsOf(t, e))); !slices.Equal(keys, []string{"code", "refusals_since_last_entry"}) {
			t.Errorf("refusal details hold %v", keys)
		}
	}
}
