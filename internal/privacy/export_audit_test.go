package privacy_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/exporttest"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestExportCarriesEveryAuditEntry: the store lists audit entries a page
// at a time, and a busy device has more than a page: the export reads them
// all, and an ExportAuditFilter keeps out those it refuses.
func TestExportCarriesEveryAuditEntry(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	erika := f.person("erika@acme.test")
	laptop := f.device(erika.ID, privacy.Corporate)
	const entries = 1205
	err := f.st.Tx(f.ctx, func(q store.Queries) error {
		for i := range entries {
			action := "device.sync"
			if i%100 == 0 {
				action = "colleague.only"
			}
			if err := audit.Append(f.ctx, q, admin.Entry(f.tenant, action, "device", laptop.ID, audit.OutcomeSuccess)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.OnExportAudit(func(e store.AuditEntry, d store.Device) bool {
		return e.Action != "colleague.only" || d.ID != laptop.ID
	})
	arc, err := f.svc.ExportSubject(f.ctx, f.tenant, erika.ID, "subject access request", admin)
	if err != nil {
		t.Fatal(err)
	}
	exp, _, _ := exporttest.Open(t, arc)
	counts := map[string]int{}
	for _, e := range exp.AuditEntries {
		if e.Target == "device:"+laptop.ID {
			counts[e.Action]++
		}
	}
	if counts["device.sync"] != entries-13 || counts["colleague.only"] != 0 {
		t.Errorf("exported %v of the device's audit entries; want all %d syncs and none of the filtered", counts, entries-13)
	}
}
