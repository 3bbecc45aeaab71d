package report

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireTools skips when poppler-utils is missing, except in CI, where a
// missing tool must not silently turn the PDF checks off.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found; install poppler-utils", n)
			}
			t.Skipf("%s not found; install poppler-utils to run this test", n)
		}
	}
}

func renderPDF(t *testing.T, r *Report) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.pdf")
	var buf bytes.Buffer
	if err := WritePDF(&buf, r); err != nil {
		t.Fatalf("WritePDF: %v", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pdfText extracts the text of pages first..last (0 means to the end).
func pdfText(t *testing.T, path string, first, last int) string {
	t.Helper()
	args := []string{"-enc", "UTF-8", "-f", strconv.Itoa(first)}
	if last > 0 {
		args = append(args, "-l", strconv.Itoa(last))
	}
	out, err := exec.Command("pdftotext", append(args, path, "-")...).Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

var pagesLine = regexp.MustCompile(`(?m)^Pages:\s+(\d+)$`)
var sizeLine = regexp.MustCompile(`(?m)^Page size:\s+([\d.]+) x ([\d.]+) pts`)

func pdfInfo(t *testing.T, path string) (pages int, width, height float64) {
	t.Helper()
	out, err := exec.Command("pdfinfo", path).Output()
	if err != nil {
		t.Fatalf("pdfinfo: %v", err)
	}
	m := pagesLine.FindSubmatch(out)
	s := sizeLine.FindSubmatch(out)
	if m == nil || s == nil {
		t.Fatalf("pdfinfo output lacks page count or size:\n%s", out)
	}
	pages, _ = strconv.Atoi(string(m[1]))
	width, _ = strconv.ParseFloat(string(s[1]), 64)
	height, _ = strconv.ParseFloat(string(s[2]), 64)
	return pages, width, height
}

func TestWritePDFContent(t *testing.T) {
	requireTools(t, "pdftotext", "pdfinfo")
	path := renderPDF(t, sampleReport(40))
	text := pdfText(t, path, 1, 0)
	for _, want := range []string{
		"Device inventory", "All enrolled devices", "Tenant: Acme Zürich AG", "Generated 2026-11-23 09:30 UTC",
		"1,204", "Enrolled devices", "97.4 %", // metrics
		"Devices by platform", "44.9 %", "Compliance by platform", "Not encrypted", // charts
		"CIS Controls v8", "Establish and Maintain Detailed Enterprise Asset Inventory", "A.8.1", // controls
		"Stale means no check-in",                                                  // notes
		"Serial number", "Last check-in (UTC)", "C02X000007Q", "MacBook of user 7", // table
		"Warning", "Failing", // status words survive black-and-white printing
		"Page 1 of",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
}

func TestWritePDFMultiPageTable(t *testing.T) {
	requireTools(t, "pdftotext", "pdfinfo")
	const rows = 300
	path := renderPDF(t, sampleReport(rows))
	pages, _, _ := pdfInfo(t, path)
	if pages < 6 {
		t.Fatalf("%d rows gave %d pages, want a multi-page table", rows, pages)
	}
	for p := 1; p <= pages; p++ {
		text := pdfText(t, path, p, p)
		if want := fmt.Sprintf("Page %d of %d", p, pages); !strings.Contains(text, want) {
			t.Errorf("page %d lacks %q", p, want)
		}
		// Every page from the one the table starts on repeats its header.
		if strings.Contains(text, "C02X") && !strings.Contains(text, "Serial number") {
			t.Errorf("page %d has table rows but no column header", p)
		}
	}
	last := pdfText(t, path, pages, pages)
	if want := fmt.Sprintf("C02X%06dQ", rows-1); !strings.Contains(last, want) {
		t.Errorf("last page lacks the last row %s", want)
	}
}

func TestWritePDFOrientation(t *testing.T) {
	requireTools(t, "pdfinfo")
	narrow := sampleReport(5)
	narrow.Columns = narrow.Columns[:2]
	for i := range narrow.Rows {
		narrow.Rows[i].Cells = narrow.Rows[i].Cells[:2]
	}
	tests := []struct {
		name     string
		r        *Report
		portrait bool
	}{
		{"few columns", narrow, true},
		{"seven columns with status and controls", sampleReport(5), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, w, h := pdfInfo(t, renderPDF(t, tt.r))
			if got := w < h; got != tt.portrait {
				t.Errorf("page %.0fx%.0f pt; portrait = %v, want %v", w, h, got, tt.portrait)
			}
			if long, short := max(w, h), min(w, h); long < 841 || long > 843 || short < 594 || short > 596 {
				t.Errorf("page %.0fx%.0f pt is not A4", w, h)
			}
		})
	}
}

func TestWritePDFTruncatesLongCellsAndReplacesForeignScripts(t *testing.T) {
	requireTools(t, "pdftotext")
	r := sampleReport(2)
	r.Title = "Inventaire — 設備 🚀"
	r.Rows[0].Cells[1] = strings.Repeat("verylongdevicename", 40)
	r.Rows[1].Cells[1] = "שלום Ünïcødé €"
	r.Rows[1].Cells[2] = "{nb} \x01nb\x01"
	text := pdfText(t, renderPDF(t, r), 1, 0)
	for _, want := range []string{"Inventaire — ?? ?", "???? Ünïcødé €", "{nb}"} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(verylongdevicename)+[a-z]*…`).MatchString(text) {
		t.Error("long cell does not end in an ellipsis")
	}
	if !regexp.MustCompile(`\{nb\}\s+nb`).MatchString(text) {
		t.Error(`a cell reading "{nb}" or holding the page-count alias was altered`)
	}
	if strings.Contains(text, strings.Repeat("verylongdevicename", 40)) {
		t.Error("long cell was not shortened")
	}
}

func TestWritePDFDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := WritePDF(&a, sampleReport(60)); err != nil {
		t.Fatal(err)
	}
	if err := WritePDF(&b, sampleReport(60)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two renderings of the same report differ")
	}
	if !bytes.HasPrefix(a.Bytes(), []byte("%PDF-")) {
		t.Error("output is not a PDF")
	}
}

func TestWritePDFInvalidWritesNothing(t *testing.T) {
	r := sampleReport(1)
	r.Charts[1].Series[0].Values[2] = -4
	var buf bytes.Buffer
	if err := WritePDF(&buf, r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("WritePDF() = %v, want ErrInvalid", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes for an invalid report, want none", buf.Len())
	}
}

// TestWritePDFTenThousandRows renders the largest report the brief expects
// and logs time and size for the record; it asserts only correctness.
func TestWritePDFTenThousandRows(t *testing.T) {
	if testing.Short() {
		t.Skip("renders a 10,000-row report")
	}
	r := sampleReport(10000)
	var buf bytes.Buffer
	start := time.Now()
	if err := WritePDF(&buf, r); err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 rows: %v, %d KiB", time.Since(start).Round(time.Millisecond), buf.Len()/1024)
	requireTools(t, "pdfinfo", "pdftotext")
	path := filepath.Join(t.TempDir(), "big.pdf")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	pages, _, _ := pdfInfo(t, path)
	t.Logf("10,000 rows: %d pages", pages)
	last := pdfText(t, path, pages, pages)
	for _, want := range []string{"C02X009999Q", fmt.Sprintf("Page %d of %d", pages, pages), "Serial number"} {
		if !strings.Contains(last, want) {
			t.Errorf("last page lacks %q", want)
		}
	}
}

func BenchmarkWritePDF10kRows(b *testing.B) {
	r := sampleReport(10000)
	b.ReportAllocs()
	for b.Loop() {
		var buf bytes.Buffer
		if err := WritePDF(&buf, r); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(buf.Len())/1024, "KiB/op")
	}
}

// A chart at the limits of Validate must still fit on one page.
func TestWritePDFLargestChartFitsOnePage(t *testing.T) {
	requireTools(t, "pdfinfo", "pdftotext")
	r := sampleReport(0)
	r.Summary, r.Controls, r.Notes, r.Columns = nil, nil, nil, nil
	c := Chart{Title: "Grouped", Kind: ChartBar}
	for i := range MaxChartLabels {
		c.Labels = append(c.Labels, fmt.Sprintf("label %d", i))
	}
	for s := range MaxChartSeries {
		v := make([]float64, MaxChartLabels)
		for i := range v {
			v[i] = float64(i*s + 1)
		}
		c.Series = append(c.Series, Series{Name: fmt.Sprintf("series %d", s), Values: v})
	}
	r.Charts = []Chart{c}
	path := renderPDF(t, r)
	pages, _, _ := pdfInfo(t, path)
	for p := 1; p <= pages; p++ {
		text := pdfText(t, path, p, p)
		if !strings.Contains(text, "Grouped") {
			continue
		}
		for _, want := range []string{"label 0", "label 19", "series 7"} {
			if !strings.Contains(text, want) {
				t.Errorf("page %d with the chart title lacks %q", p, want)
			}
		}
		return
	}
	t.Error("chart title not found on any page")
}
