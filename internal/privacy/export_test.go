package privacy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/exporttest"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestSubjectExportOpensInAStockTool exports a person and opens the archive
// with Debian's 7z, as the person would with 7-Zip.
func TestSubjectExportOpensInAStockTool(t *testing.T) {
	bin := exporttest.SevenZip(t)
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		f.ingest(deviceInformation(f, byod.ID))
		if _, err := f.svc.Reveal(f.ctx, f.tenant, byod.ID, privacy.RevealInput{Fields: []string{"device.serial_number"}, Reason: "warranty case 4711"},
			privacy.Viewer{Actor: admin, AdminID: admin.ID}); err != nil {
			t.Fatal(err)
		}
		// Her own action's address is hers; an admin's is not.
		err := st.Tx(f.ctx, func(q store.Queries) error {
			own := iam.Actor{Type: store.ActorSubject, ID: erika.ID, SourceIP: "198.51.100.7"}
			if err := audit.Append(f.ctx, q, own.Entry(f.tenant, "portal.open", "subject", erika.ID, audit.OutcomeSuccess)); err != nil {
				return err
			}
			other := iam.Actor{Type: store.ActorAdmin, ID: admin.ID, SourceIP: "203.0.113.9"}
			return audit.Append(f.ctx, q, other.Entry(f.tenant, "subject.read", "subject", erika.ID, audit.OutcomeSuccess))
		})
		if err != nil {
			t.Fatal(err)
		}
		arc, err := f.svc.ExportSubject(f.ctx, f.tenant, erika.ID, "subject access request of 2026-12-01", admin)
		if err != nil {
			t.Fatal(err)
		}
		exp, out, zipPath := exporttest.Open(t, arc)
		addresses := map[string]string{}
		for _, e := range exp.AuditEntries {
			addresses[e.Action] = e.SourceIP
		}
		if addresses["portal.open"] != "198.51.100.7" || addresses["subject.read"] != "" {
			t.Errorf("audit entries' addresses in the export: %v; want hers only", addresses)
		}
		if b, err := exec.Command(bin, "t", "-pwrong-password-entirely", zipPath).CombinedOutput(); err == nil {
			t.Fatalf("7z opened the export with a wrong password:\n%s", b)
		}
		if exp.Person.Email != "erika@acme.test" || len(exp.Devices) != 1 || len(exp.AccessRecord) < 1 || len(exp.AuditEntries) < 2 {
			t.Fatalf("export: person %+v, %d devices, %d access records, %d audit entries", exp.Person, len(exp.Devices), len(exp.AccessRecord), len(exp.AuditEntries))
		}
		// Hidden fields are the person's own data: the export includes them.
		found := false
		for _, v := range exp.Devices[0].Inventory {
			found = found || (v.Field == "device.serial_number" && string(v.Value) == `"`+markerSerial+`"`)
		}
		if !found {
			t.Errorf("the serial number is missing from the export: %+v", exp.Devices[0].Inventory)
		}
		page, err := os.ReadFile(filepath.Join(out, "summary.html"))
		if err != nil || !strings.Contains(string(page), "Erika Mustermann") || !strings.Contains(string(page), "warranty case 4711") {
			t.Errorf("summary.html lacks the name or the access reason (%v)", err)
		}
		recs, _ := f.svc.AccessRecord(f.ctx, f.tenant, erika.ID, store.Page{})
		if last := recs[len(recs)-1]; last.Action != "export" {
			t.Errorf("the export is not in the access record: %+v", last)
		}
		if _, err := f.svc.ExportSubject(f.ctx, f.tenant, "00000000-0000-0000-0000-000000000000", "subject access request of 2026-12-01", admin); err == nil {
			t.Error("exporting an unknown person succeeded")
		}
	})
}

// TestAdminExportAsksAReason: the export holds the values the policy hides
// from admins, so an admin exporting gives a reason, as for a reveal, and
// each device's hidden fields go to the person's access record under it;
// without one nothing is exported or recorded. The person exporting their
// own data gives none.
func TestAdminExportAsksAReason(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		f.ingest(deviceInformation(f, byod.ID))
		before, err := f.svc.AccessRecord(f.ctx, f.tenant, erika.ID, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ExportSubject(f.ctx, f.tenant, erika.ID, " ", admin); !apperr.IsKind(err, apperr.KindInvalid) {
			t.Fatalf("an admin's export without a reason: %v, want it refused as invalid", err)
		}
		if recs, _ := f.svc.AccessRecord(f.ctx, f.tenant, erika.ID, store.Page{}); len(recs) != len(before) {
			t.Fatalf("the refused export was recorded: %+v", recs)
		}

		const reason = "subject access request of 2026-12-01"
		if _, err := f.svc.ExportSubject(f.ctx, f.tenant, erika.ID, reason, admin); err != nil {
			t.Fatal(err)
		}
		recs, err := f.svc.AccessRecord(f.ctx, f.tenant, erika.ID, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var device *store.AccessRecord
		for i, r := range recs {
			if r.Action == "export" && r.DeviceID == byod.ID {
				device = &recs[i]
			}
		}
		if device == nil || device.Reason != reason || !slices.Contains(device.Fields, "device.serial_number") ||
			slices.Contains(device.Fields, "os.version") {
			t.Errorf("the device's export record: %+v, want its hidden fields (the serial number, not the OS version) under the reason", device)
		}

		own := privacy.SubjectActor(store.PortalToken{TenantID: f.tenant, SubjectID: erika.ID}, "198.51.100.7", "")
		if _, err := f.svc.ExportSubject(f.ctx, f.tenant, erika.ID, "", own); err != nil {
			t.Errorf("the person's own export: %v", err)
		}
	})
}
