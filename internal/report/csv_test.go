package report

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
)

func TestWriteCSV(t *testing.T) {
	r := sampleReport(3)
	var buf bytes.Buffer
	if err := WriteCSV(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "\ufeff") {
		t.Fatal("CSV does not start with a UTF-8 byte order mark")
	}
	if !strings.Contains(out, "\r\n") {
		t.Error("CSV lines do not end in CRLF")
	}
	records, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatalf("output is not valid CSV: %v", err)
	}
	wantHeader := []string{"Serial number", "Device name", "Model", "OS version", "Last check-in (UTC)", "controls", "status"}
	if got := records[0]; strings.Join(got, "|") != strings.Join(wantHeader, "|") {
		t.Errorf("header = %q, want %q", got, wantHeader)
	}
	if len(records) != 4 {
		t.Fatalf("got %d records, want header plus 3 rows", len(records))
	}
	row := records[3]
	if row[0] != "C02X000002Q" || row[5] != "1.1; A.8.1" || row[6] != StatusWarning {
		t.Errorf("row 3 = %q, want serial, joined controls and status", row)
	}
}

func TestWriteCSVFormulaInjection(t *testing.T) {
	tests := []struct{ cell, want string }{
		{"=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"},
		{"+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'=1"}, // neutralised first; the CRLF writer then drops the lone CR
		{"a=1", "a=1"},
		{"MacBook Pro", "MacBook Pro"},
		{" =1", " =1"},
		{"", ""},
	}
	r := sampleReport(0)
	r.Columns = []Column{{"name", "=Name"}}
	for _, tt := range tests {
		r.Rows = append(r.Rows, Row{Cells: []string{tt.cell}})
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, r); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if records[0][0] != "'=Name" {
		t.Errorf("header title = %q, want it neutralised too", records[0][0])
	}
	for i, tt := range tests {
		if got := records[i+1][0]; got != tt.want {
			t.Errorf("cell %q written as %q, want %q", tt.cell, got, tt.want)
		}
	}
}

func TestWriteCSVInvalidWritesNothing(t *testing.T) {
	r := sampleReport(2)
	r.Rows[0].Cells = nil
	var buf bytes.Buffer
	if err := WriteCSV(&buf, r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("WriteCSV() = %v, want ErrInvalid", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes for an invalid report, want none", buf.Len())
	}
}
