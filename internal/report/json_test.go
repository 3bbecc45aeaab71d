package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestWriteJSONShape(t *testing.T) {
	r := sampleReport(2)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema      string `json:"schema"`
		Kind        string `json:"kind"`
		Title       string `json:"title"`
		Subtitle    string `json:"subtitle"`
		Tenant      string `json:"tenant"`
		GeneratedAt string `json:"generated_at"`
		Controls    []struct {
			Framework, ID, Title string
		} `json:"controls"`
		Summary []struct{ Label, Value string } `json:"summary"`
		Charts  []struct {
			Title  string   `json:"title"`
			Kind   string   `json:"kind"`
			Labels []string `json:"labels"`
			Series []struct {
				Name   string    `json:"name"`
				Values []float64 `json:"values"`
			} `json:"series"`
		} `json:"charts"`
		Columns []struct{ Key, Title string } `json:"columns"`
		Rows    []struct {
			Cells    map[string]string `json:"cells"`
			Controls []string          `json:"controls"`
			Status   string            `json:"status"`
		} `json:"rows"`
		Notes []string `json:"notes"`
	}
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"schema", doc.Schema, JSONSchema},
		{"kind", doc.Kind, "device_inventory"},
		{"title", doc.Title, "Device inventory"},
		{"subtitle", doc.Subtitle, "All enrolled devices, CIS Controls v8 Control 1"},
		{"chart title", doc.Charts[0].Title, "Devices by platform"},
		{"tenant", doc.Tenant, "Acme Zürich AG"},
		{"generated_at", doc.GeneratedAt, "2026-11-23T09:30:00Z"},
		{"control id", doc.Controls[2].ID, "A.8.1"},
		{"metric", doc.Summary[1].Value, "97.4 %"},
		{"chart kind", doc.Charts[2].Kind, ChartStackedBar},
		{"series value", doc.Charts[2].Series[1].Values[0], 30.0},
		{"column key", doc.Columns[4].Key, "last_seen"},
		{"cell by key", doc.Rows[1].Cells["serial"], "C02X000001Q"},
		{"row controls", strings.Join(doc.Rows[0].Controls, ","), "1.1,A.8.1"},
		{"row status", doc.Rows[0].Status, StatusOK},
		{"notes", len(doc.Notes), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Cell keys follow column order, not alphabetical order.
	want := `"cells":{"serial":"C02X000000Q","name":"MacBook of user 0","model":"MacBook Pro (14-inch, 2024)","os":"macOS 15.2","last_seen":"2026-11-23 09:30"}`
	if !strings.Contains(buf.String(), want) {
		t.Errorf("first row's cells are not %s", want)
	}
}

func TestWriteJSONEmptyListsAreArrays(t *testing.T) {
	r := &Report{Kind: "stale_devices", Title: "Stale devices", GeneratedAt: testTime,
		Columns: []Column{{"serial", "Serial"}}, Rows: []Row{{Cells: []string{"X"}}}}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "null") {
		t.Errorf("output contains null; every list must be an array: %s", buf.String())
	}
	for _, want := range []string{`"controls":[]`, `"summary":[]`, `"charts":[]`, `"notes":[]`, `"status":""`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %s", want)
		}
	}
}

func TestWriteJSONDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteJSON(&a, sampleReport(20)); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&b, sampleReport(20)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two renderings of the same report differ")
	}
}

func TestWriteJSONInvalidWritesNothing(t *testing.T) {
	r := sampleReport(1)
	r.Charts[0].Kind = "donut"
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("WriteJSON() = %v, want ErrInvalid", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes for an invalid report, want none", buf.Len())
	}
}
