package report

import (
	"math"
	"strings"
	"testing"

	"github.com/go-pdf/fpdf"
)

func newTestPDF() (*fpdf.Fpdf, textEncoder) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.AddPage()
	pdf.SetFont(fontFamily, "", 8)
	return pdf, newTextEncoder(pdf)
}

func TestTextEncoder(t *testing.T) {
	_, enc := newTestPDF()
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain ASCII.", "plain ASCII."},
		{"Zürich", "Z\xfcrich"},
		{"€ … — •", "\x80 \x85 \x97 \x95"},
		{"日本", "??"},
		{"🚀x", "?x"},
		{"مرحبا", "?????"},
		{"a\tb\nc\rd\x00", "a b c d "},
		{"bad \xff utf8", "bad ? utf8"},
	}
	for _, tt := range tests {
		if got := enc.encode(tt.in); got != tt.want {
			t.Errorf("encode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFit(t *testing.T) {
	pdf, _ := newTestPDF()
	short := "MacBook"
	if got := fit(pdf, short, 50); got != short {
		t.Errorf("fit(%q) = %q, want it unchanged", short, got)
	}
	long := strings.Repeat("abcdef ", 30)
	for _, width := range []float64{0, 1, 10, 40} {
		got := fit(pdf, long, width)
		if !strings.HasSuffix(got, ellipsis) {
			t.Errorf("fit(long, %v) = %q, want an ellipsis at the end", width, got)
		}
		if width >= 10 && pdf.GetStringWidth(got) > width {
			t.Errorf("fit(long, %v) is %.2f mm wide", width, pdf.GetStringWidth(got))
		}
		if !strings.HasPrefix(long, strings.TrimSuffix(got, ellipsis)) {
			t.Errorf("fit(long, %v) = %q is not a prefix of the input", width, got)
		}
	}
}

func TestDistribute(t *testing.T) {
	tests := []struct {
		name  string
		want  []float64
		avail float64
	}{
		{"room to spare", []float64{20, 30, 10}, 180},
		{"exact", []float64{60, 60, 60}, 180},
		{"shrink proportionally", []float64{100, 200, 100}, 180},
		{"one huge column keeps small ones at the floor", []float64{5, 5, 1000}, 180},
		{"more columns than fit at the floor", make([]float64, 20), 180},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := distribute(tt.want, tt.avail)
			if math.Abs(sum(got)-tt.avail) > 1e-6 {
				t.Errorf("widths %v sum to %.2f, want %.2f", got, sum(got), tt.avail)
			}
			floor := min(minColumnW, tt.avail/float64(len(tt.want)))
			for i, w := range got {
				if w < floor-1e-9 {
					t.Errorf("column %d is %.2f mm, below the floor %.2f", i, w, floor)
				}
			}
		})
	}
}

func TestNiceScale(t *testing.T) {
	tests := []struct{ max, step, top float64 }{
		{0, 1, 1},
		{3, 1, 3},
		{14, 5, 15},
		{400, 100, 400},
		{540, 200, 600},
		{0.3, 0.1, 0.3},
		{1204, 500, 1500},
	}
	for _, tt := range tests {
		step, top := niceScale(tt.max)
		if math.Abs(step-tt.step) > 1e-9 || math.Abs(top-tt.top) > 1e-9 {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", tt.max, step, top, tt.step, tt.top)
		}
	}
	for _, huge := range []float64{math.MaxFloat64, math.Inf(1)} {
		step, top := niceScale(huge)
		if math.IsInf(top, 0) || math.IsNaN(step) || step <= 0 || top/step > 10 {
			t.Errorf("niceScale(%v) = %v, %v; want a finite axis with few ticks", huge, step, top)
		}
	}
}

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {14, "14"}, {1204, "1,204"}, {1234567, "1,234,567"}, {-1000, "-1,000"},
		{2.5, "2.50"}, {0.126, "0.13"},
	}
	for _, tt := range tests {
		if got := formatNumber(tt.in); got != tt.want {
			t.Errorf("formatNumber(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct {
		v, total float64
		want     string
	}{{540, 1204, "44.9 %"}, {1, 2, "50 %"}, {1, 100000, "<0.1 %"}, {0, 5, "0 %"}} {
		if got := percent(tt.v, tt.total); got != tt.want {
			t.Errorf("percent(%v, %v) = %q, want %q", tt.v, tt.total, got, tt.want)
		}
	}
}
