package compliance

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/report"
	"github.com/steward-mdm/steward/internal/store"
)

// Report kinds, each mapped to the framework controls it evidences.
const (
	ReportCompliance = "compliance"
	ReportInventory  = "inventory"
	ReportSoftware   = "software"
	ReportEncryption = "encryption"
	ReportStale      = "stale"
)

// ReportKinds lists the reports with what they are for.
var ReportKinds = []struct {
	Kind, Title, Purpose string
}{
	{ReportCompliance, "Compliance overview", "Devices against the compliance policies, by platform, ownership and policy (ISO 27001 A.8.1, NIS2 Art 21)."},
	{ReportInventory, "Device inventory", "Every managed device (CIS Control 1)."},
	{ReportSoftware, "Software inventory", "Installed apps across the fleet, managed apps only on personal devices (CIS Control 2)."},
	{ReportEncryption, "Encryption and passcode status", "Storage encryption and passcodes per device (ISO 27001 A.8.1)."},
	{ReportStale, "Stale devices", "Devices that stopped checking in (CIS Control 1.2)."},
}

var (
	ctlISO81   = report.Control{Framework: "ISO/IEC 27001:2022", ID: "A.8.1", Title: "User endpoint devices"}
	ctlNIS2    = report.Control{Framework: "NIS2 Directive", ID: "Art 21(2)", Title: "Cybersecurity risk-management measures"}
	ctlCIS11   = report.Control{Framework: "CIS Controls v8", ID: "1.1", Title: "Establish and Maintain Detailed Enterprise Asset Inventory"}
	ctlCIS12   = report.Control{Framework: "CIS Controls v8", ID: "1.2", Title: "Address Unauthorized Assets"}
	ctlCIS21   = report.Control{Framework: "CIS Controls v8", ID: "2.1", Title: "Establish and Maintain a Software Inventory"}
	ctlCIS23   = report.Control{Framework: "CIS Controls v8", ID: "2.3", Title: "Address Unauthorized Software"}
	ctlCIS311  = report.Control{Framework: "CIS Controls v8", ID: "3.11", Title: "Encrypt Sensitive Data at Rest"}
	ctlCIS43   = report.Control{Framework: "CIS Controls v8", ID: "4.3", Title: "Configure Automatic Session Locking on Enterprise Assets"}
	complStack = []string{store.ComplianceCompliant, InGrace, store.ComplianceNoncompliant, store.ComplianceUnknown}
)

// LeftOutMetric labels the count of devices a report leaves out because
// the privacy policy hides what it would show of them.
const LeftOutMetric = "Devices left out (hidden by the privacy policy)"

// fleetRow is what the reports read about one device.
type fleetRow struct {
	d     store.Device
	facts map[string]json.RawMessage
}

func (e *Engine) fleet(ctx context.Context, q store.Queries, tenantID string) ([]fleetRow, error) {
	projections, err := q.ManagedDevices().Projections(ctx, tenantID, "")
	if err != nil {
		return nil, err
	}
	facts := make(map[string][]byte, len(projections))
	for _, p := range projections {
		facts[p.DeviceID] = p.Facts
	}
	var out []fleetRow
	page := store.DeviceQuery{Limit: 1000}
	for {
		res, err := q.ManagedDevices().Search(ctx, tenantID, page)
		if err != nil {
			return nil, err
		}
		for _, d := range res.Devices {
			if d.Gone() {
				continue
			}
			r := fleetRow{d: d}
			if raw := facts[d.ID]; len(raw) > 0 {
				_ = json.Unmarshal(raw, &r.facts)
			}
			out = append(out, r)
		}
		if res.Next == (store.DeviceCursor{}) {
			return out, nil
		}
		page.After = res.Next
	}
}

// BuildReport assembles one report of the tenant. Rows name devices by ID
// only: reports travel, personal identifiers stay in Steward.
func (e *Engine) BuildReport(ctx context.Context, tenantID, tenantName, kind string) (*report.Report, error) {
	q := e.st.Read()
	rows, err := e.fleet(ctx, q, tenantID)
	if err != nil {
		return nil, err
	}
	r := &report.Report{Kind: kind, Tenant: tenantName, GeneratedAt: e.clock()}
	switch kind {
	case ReportCompliance:
		err = e.complianceReport(ctx, q, tenantID, rows, r)
	case ReportInventory:
		inventoryReport(rows, r)
	case ReportSoftware:
		err = e.softwareReport(ctx, q, tenantID, rows, r)
	case ReportEncryption:
		encryptionReport(rows, r)
	case ReportStale:
		var s device.Settings
		if s, err = device.LoadSettings(ctx, q, tenantID); err == nil {
			staleReport(rows, r, s.StaleAfterDays, e.clock())
		}
	default:
		return nil, apperr.NotFound("report")
	}
	if err != nil {
		return nil, err
	}
	for _, k := range ReportKinds {
		if k.Kind == kind {
			r.Title = k.Title
		}
	}
	// A chart of an empty fleet says nothing.
	r.Charts = slices.DeleteFunc(r.Charts, func(c report.Chart) bool { return len(c.Labels) == 0 })
	return r, r.Validate()
}

func percent(n, of int) string {
	if of == 0 {
		return "–"
	}
	return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 1, 64) + " %"
}

func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

// stacked counts devices by a label (platform, ownership) and state.
func stacked(title string, rows []fleetRow, label func(fleetRow) string, state func(fleetRow) string, states []string) report.Chart {
	counts := map[string]map[string]int{}
	var labels []string
	for _, r := range rows {
		l := label(r)
		if counts[l] == nil {
			counts[l] = map[string]int{}
			labels = append(labels, l)
		}
		counts[l][state(r)]++
	}
	sort.Strings(labels)
	if len(labels) > report.MaxChartLabels {
		labels = labels[:report.MaxChartLabels]
	}
	c := report.Chart{Title: title, Kind: report.ChartStackedBar, Labels: labels}
	for _, s := range states {
		series := report.Series{Name: s}
		for _, l := range labels {
			series.Values = append(series.Values, float64(counts[l][s]))
		}
		c.Series = append(c.Series, series)
	}
	return c
}

func (e *Engine) complianceReport(ctx context.Context, q store.Queries, tenantID string, rows []fleetRow, r *report.Report) error {
	r.Controls = []report.Control{ctlISO81, ctlNIS2}
	counts := map[string]int{}
	for _, row := range rows {
		counts[row.d.Compliance]++
	}
	r.Summary = []report.Metric{{Label: "Devices", Value: strconv.Itoa(len(rows))},
		{Label: "Compliant", Value: percent(counts[store.ComplianceCompliant], len(rows))},
		{Label: "Noncompliant", Value: strconv.Itoa(counts[store.ComplianceNoncompliant])},
		{Label: "In grace period", Value: strconv.Itoa(counts[InGrace])},
		{Label: "Not yet evaluated", Value: strconv.Itoa(counts[store.ComplianceUnknown])}}
	state := func(f fleetRow) string { return f.d.Compliance }
	r.Charts = []report.Chart{
		stacked("Compliance by platform", rows, func(f fleetRow) string { return f.d.Platform }, state, complStack),
		stacked("Compliance by ownership", rows, func(f fleetRow) string { return f.d.Ownership }, state, complStack),
	}
	policies, err := q.Compliance().ListPolicies(ctx, tenantID, store.Page{Limit: 1000})
	if err != nil {
		return err
	}
	byPolicy := report.Chart{Title: "Standing by policy", Kind: report.ChartStackedBar}
	perPolicy := map[string][]string{} // device -> failing policy names
	for i, p := range policies {
		standings, err := q.Compliance().ForPolicy(ctx, tenantID, p.ID)
		if err != nil {
			return err
		}
		if i < report.MaxChartLabels {
			byPolicy.Labels = append(byPolicy.Labels, p.Name)
		}
		n := map[string]int{}
		for _, s := range standings {
			n[s.State]++
			if s.State == store.ComplianceNoncompliant || s.State == InGrace {
				perPolicy[s.DeviceID] = append(perPolicy[s.DeviceID], p.Name+": "+summary(s.Violations))
			}
		}
		if i < report.MaxChartLabels {
			for j, st := range complStack {
				if len(byPolicy.Series) <= j {
					byPolicy.Series = append(byPolicy.Series, report.Series{Name: st})
				}
				byPolicy.Series[j].Values = append(byPolicy.Series[j].Values, float64(n[st]))
			}
		}
	}
	if len(byPolicy.Labels) > 0 {
		r.Charts = append(r.Charts, byPolicy)
	}
	r.Columns = []report.Column{{Key: "device_id", Title: "Device"}, {Key: "platform", Title: "Platform"}, {Key: "ownership", Title: "Ownership"},
		{Key: "os_version", Title: "OS"}, {Key: "compliance", Title: "Compliance"}, {Key: "failing", Title: "Failing rules"}, {Key: "last_seen", Title: "Last seen"}}
	for _, row := range rows {
		status := report.StatusOK
		switch row.d.Compliance {
		case store.ComplianceNoncompliant:
			status = report.StatusFailing
		case InGrace, store.ComplianceUnknown:
			status = report.StatusWarning
		}
		failing := ""
		if fs := perPolicy[row.d.ID]; len(fs) > 0 {
			failing = fs[0]
			if len(fs) > 1 {
				failing += fmt.Sprintf(" (+%d more)", len(fs)-1)
			}
		}
		r.Rows = append(r.Rows, report.Row{Cells: []string{row.d.ID, row.d.Platform, row.d.Ownership, row.d.OSVersion, row.d.Compliance,
			failing, day(row.d.LastSeenAt)}, Controls: []string{"A.8.1"}, Status: status})
	}
	r.Notes = []string{"A device is compliant when every policy that covers it passes; in grace means failing but not yet marked noncompliant by the policy's ladder.",
		"Devices are named by their Steward ID; look them up in Steward for details an admin is allowed to see."}
	return nil
}

func inventoryReport(rows []fleetRow, r *report.Report) {
	r.Controls = []report.Control{ctlCIS11, ctlISO81}
	byPlatform := map[string]int{}
	for _, row := range rows {
		byPlatform[row.d.Platform]++
	}
	r.Summary = []report.Metric{{Label: "Devices", Value: strconv.Itoa(len(rows))}}
	pie := report.Chart{Title: "Devices by platform", Kind: report.ChartPie, Series: []report.Series{{Name: "devices"}}}
	platforms := make([]string, 0, len(byPlatform))
	for p := range byPlatform {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	for _, p := range platforms {
		if len(pie.Labels) < report.MaxPieSlices {
			pie.Labels = append(pie.Labels, p)
			pie.Series[0].Values = append(pie.Series[0].Values, float64(byPlatform[p]))
		}
		r.Summary = append(r.Summary, report.Metric{Label: p, Value: strconv.Itoa(byPlatform[p])})
	}
	r.Charts = []report.Chart{pie, stacked("Devices by ownership and state", rows, func(f fleetRow) string { return f.d.Ownership },
		func(f fleetRow) string { return f.d.State }, []string{store.DeviceEnrolled, store.DevicePending})}
	r.Columns = []report.Column{{Key: "device_id", Title: "Device"}, {Key: "platform", Title: "Platform"}, {Key: "model", Title: "Model"},
		{Key: "os_version", Title: "OS"}, {Key: "ownership", Title: "Ownership"}, {Key: "state", Title: "State"},
		{Key: "enrolled", Title: "Enrolled"}, {Key: "last_seen", Title: "Last seen"}}
	for _, row := range rows {
		r.Rows = append(r.Rows, report.Row{Cells: []string{row.d.ID, row.d.Platform, row.d.Model, row.d.OSVersion, row.d.Ownership, row.d.State,
			day(row.d.EnrolledAt), day(row.d.LastSeenAt)}, Controls: []string{"1.1"}})
	}
	r.Notes = []string{"Serial numbers and device names are personal data in Steward and are left out; they can be revealed per device, with a reason, in Steward."}
}

func (e *Engine) softwareReport(ctx context.Context, q store.Queries, tenantID string, rows []fleetRow, r *report.Report) error {
	r.Controls = []report.Control{ctlCIS21, ctlCIS23}
	catalogue := map[string]string{}
	apps, err := q.Apps().List(ctx, tenantID, store.Page{Limit: 1000})
	if err != nil {
		return err
	}
	for _, a := range apps {
		catalogue[a.Identifier] = a.Kind
	}
	settings, err := privacy.ViewSettings(ctx, q, tenantID)
	if err != nil {
		return err
	}
	// Each device's list carries the policy it was collected under; a
	// widening reaches a personal device only once its owner accepted it
	// and the device reported again. Opening only the lists stored shown,
	// in pages, decides per device without a read per device.
	shown, storedHidden, err := e.priv.ShownAppIdentifiers(ctx, q, tenantID)
	if err != nil {
		return err
	}
	type tally struct{ corporate, personal int }
	counts := map[string]*tally{}
	reporting, leftOut := 0, 0
	for _, row := range rows {
		// Where a device's apps are hidden, an admin sees them only by
		// revealing its list with a reason. A count per app would tell
		// the same of a few devices without one (an app found on one
		// personal device names its owner), so such devices are left out
		// whole, and the report says how many. The tenant's policy adds
		// any narrowing since the lists were collected, which applies at
		// once.
		mode := settings.Policy.Mode(privacy.Ownership(row.d.Ownership), privacy.InstalledApps)
		if mode == privacy.Drop {
			continue
		}
		if mode == privacy.Hide || storedHidden[row.d.ID] {
			leftOut++
			continue
		}
		ids, known := shown[row.d.ID]
		if !known {
			continue
		}
		reporting++
		for _, id := range ids {
			t := counts[id]
			if t == nil {
				t = &tally{}
				counts[id] = t
			}
			if row.d.Ownership == "corporate" || row.d.Ownership == "shared" {
				t.corporate++
			} else {
				t.personal++
			}
		}
	}
	ids := make([]string, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := counts[ids[i]], counts[ids[j]]
		if a.corporate+a.personal != b.corporate+b.personal {
			return a.corporate+a.personal > b.corporate+b.personal
		}
		return ids[i] < ids[j]
	})
	blocked := 0
	r.Columns = []report.Column{{Key: "app", Title: "App (bundle ID)"}, {Key: "devices", Title: "Devices"}, {Key: "corporate", Title: "Corporate"},
		{Key: "personal", Title: "Personal (managed)"}, {Key: "catalogue", Title: "Catalogue"}}
	top := report.Chart{Title: "Most installed apps", Kind: report.ChartBar, Series: []report.Series{{Name: "devices"}}}
	for _, id := range ids {
		t := counts[id]
		kind := catalogue[id]
		status, controls := "", []string{"2.1"}
		switch kind {
		case store.AppBlocked:
			status, controls = report.StatusFailing, []string{"2.1", "2.3"}
			blocked++
		case store.AppApproved:
			status = report.StatusOK
		default:
			kind = "not listed"
		}
		r.Rows = append(r.Rows, report.Row{Cells: []string{id, strconv.Itoa(t.corporate + t.personal), strconv.Itoa(t.corporate),
			strconv.Itoa(t.personal), kind}, Controls: controls, Status: status})
		if len(top.Labels) < 10 {
			top.Labels = append(top.Labels, id)
			top.Series[0].Values = append(top.Series[0].Values, float64(t.corporate+t.personal))
		}
	}
	r.Summary = []report.Metric{{Label: "Distinct apps", Value: strconv.Itoa(len(ids))}, {Label: "Devices reporting apps", Value: strconv.Itoa(reporting)},
		{Label: "Blocklisted apps found", Value: strconv.Itoa(blocked)}}
	if len(top.Labels) > 0 {
		r.Charts = []report.Chart{top}
	}
	r.Notes = []string{"Counts only: which device holds which app stays in Steward, encrypted per device.",
		"On personally owned devices only apps the organisation manages are ever inventoried."}
	if leftOut > 0 {
		r.Summary = append(r.Summary, report.Metric{Label: LeftOutMetric, Value: strconv.Itoa(leftOut)})
		r.Notes = append(r.Notes, fmt.Sprintf("%d devices are left out: the privacy policy that applies to them hides their installed apps "+
			"(on a personal device, a wider policy applies once its owner accepted it), "+
			"which an admin sees only by revealing one device's list with a reason.", leftOut))
	}
	return nil
}

func boolFactText(facts map[string]json.RawMessage, key string) (string, *bool) {
	b := boolFact(facts[key])
	switch {
	case b == nil:
		return "unknown", nil
	case *b:
		return "yes", b
	}
	return "no", b
}

func encryptionReport(rows []fleetRow, r *report.Report) {
	r.Controls = []report.Control{ctlISO81, ctlCIS311, ctlCIS43}
	var encrypted, passcode int
	for _, row := range rows {
		if b := boolFact(row.facts["security.encrypted"]); b != nil && *b {
			encrypted++
		}
		if b := boolFact(row.facts["security.passcode_present"]); b != nil && *b {
			passcode++
		}
	}
	r.Summary = []report.Metric{{Label: "Devices", Value: strconv.Itoa(len(rows))}, {Label: "Encrypted", Value: percent(encrypted, len(rows))},
		{Label: "Passcode set", Value: percent(passcode, len(rows))}}
	yesNo := []string{"yes", "no", "unknown"}
	platform := func(f fleetRow) string { return f.d.Platform }
	r.Charts = []report.Chart{
		stacked("Storage encrypted, by platform", rows, platform, func(f fleetRow) string { s, _ := boolFactText(f.facts, "security.encrypted"); return s }, yesNo),
		stacked("Passcode set, by platform", rows, platform, func(f fleetRow) string { s, _ := boolFactText(f.facts, "security.passcode_present"); return s }, yesNo),
	}
	r.Columns = []report.Column{{Key: "device_id", Title: "Device"}, {Key: "platform", Title: "Platform"}, {Key: "ownership", Title: "Ownership"},
		{Key: "encrypted", Title: "Encrypted"}, {Key: "passcode", Title: "Passcode set"}, {Key: "passcode_compliant", Title: "Passcode compliant"}}
	for _, row := range rows {
		enc, e := boolFactText(row.facts, "security.encrypted")
		pc, p := boolFactText(row.facts, "security.passcode_present")
		pcc, _ := boolFactText(row.facts, "security.passcode_compliant")
		status := report.StatusOK
		switch {
		case (e != nil && !*e) || (p != nil && !*p):
			status = report.StatusFailing
		case e == nil || p == nil:
			status = report.StatusWarning
		}
		r.Rows = append(r.Rows, report.Row{Cells: []string{row.d.ID, row.d.Platform, row.d.Ownership, enc, pc, pcc},
			Controls: []string{"A.8.1", "3.11", "4.3"}, Status: status})
	}
}

func staleReport(rows []fleetRow, r *report.Report, staleDays int, now time.Time) {
	r.Controls = []report.Control{ctlCIS11, ctlCIS12}
	r.Subtitle = fmt.Sprintf("No check-in for more than %d days (tenant setting)", staleDays)
	cutoff := now.Add(-time.Duration(staleDays) * 24 * time.Hour)
	buckets := []struct {
		label string
		days  int
	}{{fmt.Sprintf("%d–60 days", staleDays), 60}, {"60–90 days", 90}, {"over 90 days", 1 << 30}}
	hist := report.Chart{Title: "Stale devices by time since last check-in", Kind: report.ChartBar, Series: []report.Series{{Name: "devices"}}}
	for _, b := range buckets {
		hist.Labels = append(hist.Labels, b.label)
		hist.Series[0].Values = append(hist.Series[0].Values, 0)
	}
	r.Columns = []report.Column{{Key: "device_id", Title: "Device"}, {Key: "platform", Title: "Platform"}, {Key: "ownership", Title: "Ownership"},
		{Key: "last_seen", Title: "Last seen"}, {Key: "days", Title: "Days silent"}, {Key: "flagged", Title: "Flagged stale"}}
	stale := slices.DeleteFunc(slices.Clone(rows), func(f fleetRow) bool { return f.d.State != store.DeviceEnrolled || !f.d.LastSeenAt.Before(cutoff) })
	sort.Slice(stale, func(i, j int) bool { return stale[i].d.LastSeenAt.Before(stale[j].d.LastSeenAt) })
	for _, row := range stale {
		days := int(now.Sub(row.d.LastSeenAt).Hours() / 24)
		for i, b := range buckets {
			if days < b.days {
				hist.Series[0].Values[i]++
				break
			}
		}
		r.Rows = append(r.Rows, report.Row{Cells: []string{row.d.ID, row.d.Platform, row.d.Ownership, day(row.d.LastSeenAt), strconv.Itoa(days),
			day(row.d.StaleSince)}, Controls: []string{"1.1", "1.2"}, Status: report.StatusWarning})
	}
	r.Summary = []report.Metric{{Label: "Stale devices", Value: strconv.Itoa(len(stale))}, {Label: "Of all devices", Value: percent(len(stale), len(rows))}}
	r.Charts = []report.Chart{hist}
}
