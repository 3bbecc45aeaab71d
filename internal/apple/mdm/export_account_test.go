package mdm_test

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/exporttest"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestAccountChannelCommandsInTheirPersonsExport: a command an admin sent
// to Anna's account on Bob's corporate Mac, and the audit entries about it,
// are in Anna's export, which the device's own (Bob's) leaves out; with
// every entry of the device's error chain, as the admin's view has it.
func TestAccountChannelCommandsInTheirPersonsExport(t *testing.T) {
	f, s := newSchool(t, storetest.OpenSQLite(t))
	u := s.mac.NewUser("anna@school.example", "Anna")
	if err := u.LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	ucs, err := f.svc.UserChannels(f.ctx, f.tenant, s.bobsMac.ID)
	if err != nil || len(ucs) != 1 {
		t.Fatalf("the channels on Bob's Mac: %+v, %v", ucs, err)
	}
	cmd, err := f.svc.EnqueueForUser(f.ctx, f.tenant, s.bobsMac.ID, ucs[0].ID, mdmproto.ProfileList{}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	contains := func(subject string, what ...string) (listed, audited bool) {
		arc, err := f.priv.ExportSubject(f.ctx, f.tenant, subject, "subject access request", admin)
		if err != nil {
			t.Fatal(err)
		}
		exp, _, _ := exporttest.Open(t, arc)
		records := exp.Management
		for _, d := range exp.Devices {
			records = append(records, d.Management...)
		}
		for _, r := range records {
			listed = listed || strings.Contains(r.Name, cmd.ID)
		}
		for _, e := range exp.AuditEntries {
			audited = audited || (e.Action == "mdm.command.enqueue" && strings.Contains(string(e.Details), ucs[0].ID))
		}
		return listed, audited
	}
	if listed, audited := contains(s.anna); !listed || !audited {
		t.Errorf("Anna's export: command listed %v, its audit entry %v; want both", listed, audited)
	}
	if listed, audited := contains(s.bob); listed || audited {
		t.Errorf("Bob's export: command listed %v, its audit entry %v; want neither (a colleague's account)", listed, audited)
	}
}

// TestBulkCommandReasonInExport: a command sent to many devices is audited
// once for the tenant; the reason the admin gave reaches the export of each
// person whose device it was sent to, with the command.
func TestBulkCommandReasonInExport(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	erika, jonas := f.subject("erika@acme.test"), f.subject("jonas@acme.test")
	_, d1 := f.enrolled(ts, privacy.Corporate, erika)
	_, d2 := f.enrolled(ts, privacy.Corporate, jonas)
	const why = "ticket 4711: certificate audit before the CA rollover"
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{d1.ID, d2.ID}, mdmproto.CertificateList{}, why, admin); err != nil {
		t.Fatal(err)
	}
	arc, err := f.priv.ExportSubject(f.ctx, f.tenant, erika, "subject access request", admin)
	if err != nil {
		t.Fatal(err)
	}
	exp, _, _ := exporttest.Open(t, arc)
	found := false
	for _, d := range exp.Devices {
		for _, r := range d.Management {
			found = found || (strings.HasPrefix(r.Name, "Command CertificateList") && strings.Contains(r.Value, why))
		}
	}
	if !found {
		t.Error("the bulk command's reason is not in the export with it")
	}
}
