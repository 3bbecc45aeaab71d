package report

import (
	"fmt"
	"time"
)

var testTime = time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)

// sampleReport is a realistic device-inventory report with every section
// filled and rows rows.
func sampleReport(rows int) *Report {
	r := &Report{
		Kind:        "device_inventory",
		Title:       "Device inventory",
		Subtitle:    "All enrolled devices, CIS Controls v8 Control 1",
		Tenant:      "Acme Zürich AG",
		GeneratedAt: testTime,
		Controls: []Control{
			{"CIS Controls v8", "1.1", "Establish and Maintain Detailed Enterprise Asset Inventory"},
			{"CIS Controls v8", "1.2", "Address Unauthorized Assets"},
			{"ISO/IEC 27001:2022", "A.8.1", "User endpoint devices"},
		},
		Summary: []Metric{
			{"Enrolled devices", "1,204"},
			{"Encrypted", "97.4 %"},
			{"Passcode compliant", "93 %"},
			{"Stale (no check-in for 30 days or more)", "12"},
			{"Supervised", "1,100"},
		},
		Charts: []Chart{
			{Title: "Devices by platform", Kind: ChartPie, Labels: []string{"macOS", "iOS", "iPadOS", "tvOS"},
				Series: []Series{{Name: "Devices", Values: []float64{540, 480, 170, 14}}}},
			{Title: "Devices by OS version", Kind: ChartBar,
				Labels: []string{"macOS 15.2", "macOS 14.7.1", "iOS 18.2", "iOS 17.7", "iPadOS 18.1"},
				Series: []Series{{Name: "Devices", Values: []float64{320, 220, 400, 80, 170}}}},
			{Title: "Compliance by platform", Kind: ChartStackedBar, Labels: []string{"macOS", "iOS", "iPadOS", "tvOS"},
				Series: []Series{
					{Name: "Compliant", Values: []float64{500, 430, 160, 14}},
					{Name: "Warning", Values: []float64{30, 35, 8, 0}},
					{Name: "Failing", Values: []float64{10, 15, 2, 0}},
				}},
			{Title: "Encryption by department", Kind: ChartBar, Labels: []string{"Engineering", "Sales", "Finance"},
				Series: []Series{
					{Name: "Encrypted", Values: []float64{300, 120, 45}},
					{Name: "Not encrypted", Values: []float64{4, 9, 0}},
				}},
		},
		Columns: []Column{
			{"serial", "Serial number"}, {"name", "Device name"}, {"model", "Model"},
			{"os", "OS version"}, {"last_seen", "Last check-in (UTC)"},
		},
		Notes: []string{
			"Devices are counted when enrolled at the time the report was generated.",
			"Stale means no check-in for 30 days or more.",
		},
	}
	statuses := []string{StatusOK, StatusOK, StatusWarning, StatusOK, StatusFailing, ""}
	for i := range rows {
		r.Rows = append(r.Rows, Row{
			Cells: []string{
				fmt.Sprintf("C02X%06dQ", i), fmt.Sprintf("MacBook of user %d", i), "MacBook Pro (14-inch, 2024)",
				"macOS 15.2", testTime.Add(-time.Duration(i) * time.Hour).Format("2006-01-02 15:04"),
			},
			Controls: []string{"1.1", "A.8.1"},
			Status:   statuses[i%len(statuses)],
		})
	}
	return r
}
