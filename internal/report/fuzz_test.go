package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzWriters puts arbitrary text and numbers in every text slot of a report
// and renders it in all three formats: nothing may panic, every valid report
// must render, CSV must parse back with no live formula, and JSON must be
// well formed.
func FuzzWriters(f *testing.F) {
	seeds := []struct {
		text  string
		value float64
	}{
		{"", 0},
		{"plain", 1},
		{"😀🚀 emoji", 3.5},
		{"مرحبا بالعالم RTL", 42},
		{"שלום \u202e reversed", 7},
		{"日本語のデバイス", 1e9},
		{strings.Repeat("W", 5000), 0.001},
		{"=cmd|' /C calc'!A0", 1e300},
		{"\x00\x01\r\n\t\xff\xfe broken", 2},
		{"(parens) \\backslash\\ ) (", 5},
		{"{nb} page alias", 9},
		{"\u00a0\u200b\ufeff invisible", 1},
	}
	for _, s := range seeds {
		f.Add(s.text, s.value)
	}
	f.Fuzz(func(t *testing.T, text string, value float64) {
		r := fuzzReport(text, value)
		valid := r.Validate() == nil

		var pdf, js, cs bytes.Buffer
		for name, write := range map[string]func() error{
			"pdf":  func() error { return WritePDF(&pdf, r) },
			"json": func() error { return WriteJSON(&js, r) },
			"csv":  func() error { return WriteCSV(&cs, r) },
		} {
			err := write()
			if valid && err != nil {
				t.Fatalf("%s: valid report failed to render: %v", name, err)
			}
			if !valid && !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s: invalid report gave %v, want ErrInvalid", name, err)
			}
		}
		if !valid {
			return
		}
		if !bytes.HasPrefix(pdf.Bytes(), []byte("%PDF-")) {
			t.Fatal("PDF output lacks the %PDF header")
		}
		if !json.Valid(js.Bytes()) {
			t.Fatal("JSON output is not valid JSON")
		}
		records, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(cs.Bytes(), []byte(utf8BOM)))).ReadAll()
		if err != nil {
			t.Fatalf("CSV output does not parse: %v", err)
		}
		for _, rec := range records {
			for _, field := range rec {
				if field != "" && strings.ContainsRune("=+-@\t\r", rune(field[0])) {
					t.Fatalf("CSV field %q would run as a formula", field)
				}
			}
		}
	})
}

// fuzzReport uses text everywhere a person-facing string goes and value in
// every chart kind.
func fuzzReport(text string, value float64) *Report {
	return &Report{
		Kind: "fuzz", Title: text, Subtitle: text, Tenant: text, GeneratedAt: testTime,
		Controls: []Control{{Framework: "CIS Controls v8", ID: "1.1", Title: text}},
		Summary:  []Metric{{Label: text, Value: text}, {Label: "x", Value: "1"}},
		Charts: []Chart{
			{Title: text, Kind: ChartBar, Labels: []string{text, "b"}, Series: []Series{{Name: text, Values: []float64{value, 1}}}},
			{Title: text, Kind: ChartBar, Labels: []string{text, "b"}, Series: []Series{
				{Name: text, Values: []float64{value, 1}}, {Name: "other", Values: []float64{value, value}}}},
			{Title: text, Kind: ChartPie, Labels: []string{text, "b", "c"}, Series: []Series{{Name: text, Values: []float64{value, 1, value / 3}}}},
			{Title: text, Kind: ChartStackedBar, Labels: []string{text}, Series: []Series{
				{Name: text, Values: []float64{value}}, {Name: "other", Values: []float64{value}}}},
		},
		Columns: []Column{{Key: "a", Title: "A"}, {Key: "b", Title: "=B " + text}},
		Rows: []Row{
			{Cells: []string{text, text}, Controls: []string{"1.1"}, Status: StatusFailing},
			{Cells: []string{"", "-" + text}, Status: StatusOK},
		},
		Notes: []string{text, ""},
	}
}
