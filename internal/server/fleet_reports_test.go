package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestReports builds every report in every format over a small fleet and
// checks what an auditor relies on: the rows, their status, the control
// mapping, and no personal identifiers.
func TestReports(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Baseline",
			Rules: compliance.Rules{PasscodeRequired: true}}, nil)
		good, goodID := f.enrol("corporate", "", "", nil)
		_, badID := f.enrol("corporate", "", "", func(d *sim.Device) { d.NoPasscode = true })
		for _, kind := range []string{"compliance", "inventory", "software", "encryption", "stale"} {
			for _, format := range []string{"json", "csv", "pdf"} {
				r := f.do(f.owner, "GET", f.path("/reports/"+kind+"?format="+format), nil)
				if r.status != 200 {
					t.Fatalf("%s as %s: %d %s", kind, format, r.status, r.body)
				}
				if bytes.Contains(r.body, []byte(good.Serial)) || bytes.Contains(r.body, []byte(good.UDID)) {
					t.Errorf("%s as %s carries a serial number or UDID", kind, format)
				}
				switch format {
				case "pdf":
					if !bytes.HasPrefix(r.body, []byte("%PDF-")) {
						t.Errorf("%s as PDF: not a PDF", kind)
					}
				case "csv":
					if kind != "software" && kind != "stale" && !strings.Contains(string(r.body), goodID) {
						t.Errorf("%s as CSV misses a device", kind)
					}
				}
			}
		}
		var doc struct {
			Controls []struct{ ID string } `json:"controls"`
			Rows     []struct {
				Cells  map[string]string `json:"cells"`
				Status string            `json:"status"`
			} `json:"rows"`
		}
		r := f.must(200, f.owner, "GET", f.path("/reports/compliance"), nil, nil)
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		// The failing device is in grace: the default ladder marks it
		// noncompliant after a day.
		status := map[string]string{}
		for _, row := range doc.Rows {
			status[row.Cells["device_id"]] = row.Status
		}
		if status[goodID] != "ok" || status[badID] != "warning" || len(doc.Controls) == 0 || doc.Controls[0].ID != "A.8.1" {
			t.Errorf("compliance report: %+v", doc)
		}
		r = f.must(200, f.owner, "GET", f.path("/reports/software?format=json"), nil, nil)
		if !strings.Contains(string(r.body), "com.example.app000") {
			t.Error("software report misses the installed apps")
		}
		if r := f.do(f.owner, "GET", f.path("/reports/payroll"), nil); r.status != 404 {
			t.Errorf("unknown report: %d", r.status)
		}
		if r := f.do(f.owner, "GET", f.path("/reports/inventory?format=docx"), nil); r.status != 400 {
			t.Errorf("unknown format: %d", r.status)
		}
	})
}
