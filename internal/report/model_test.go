package report

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(r *Report)
		wantErr string // substring; empty means valid
	}{
		{"complete sample", func(*Report) {}, ""},
		{"no rows, columns or charts", func(r *Report) { r.Rows, r.Columns, r.Charts = nil, nil, nil }, ""},
		{"empty status", func(r *Report) { r.Rows[0].Status = "" }, ""},
		{"missing kind", func(r *Report) { r.Kind = "" }, "kind is empty"},
		{"missing title", func(r *Report) { r.Title = "" }, "title is empty"},
		{"zero time", func(r *Report) { r.GeneratedAt = time.Time{} }, "generated_at"},
		{"control without id", func(r *Report) { r.Controls[1].ID = "" }, "control 1"},
		{"empty column key", func(r *Report) { r.Columns[2].Key = "" }, "column 2 has an empty key"},
		{"duplicate column key", func(r *Report) { r.Columns[1].Key = "serial" }, `"serial" is used twice`},
		{"empty column title", func(r *Report) { r.Columns[0].Title = "" }, "empty title"},
		{"too few cells", func(r *Report) { r.Rows[3].Cells = r.Rows[3].Cells[:4] }, "row 3: has 4 cells but the report has 5 columns"},
		{"too many cells", func(r *Report) { r.Rows[0].Cells = append(r.Rows[0].Cells, "x") }, "has 6 cells"},
		{"unknown status", func(r *Report) { r.Rows[1].Status = "green" }, `status "green"`},
		{"unknown control ref", func(r *Report) { r.Rows[2].Controls = []string{"9.9"} }, `control "9.9"`},
		{"unknown chart kind", func(r *Report) { r.Charts[0].Kind = "line" }, `kind "line" is unknown`},
		{"chart without labels", func(r *Report) { r.Charts[1].Labels, r.Charts[1].Series[0].Values = nil, nil }, "no labels"},
		{"chart without series", func(r *Report) { r.Charts[1].Series = nil }, "no series"},
		{"series shorter than labels", func(r *Report) { r.Charts[2].Series[1].Values = []float64{1} }, `series "Warning" has 1 values for 4 labels`},
		{"negative value", func(r *Report) { r.Charts[1].Series[0].Values[0] = -1 }, "must be finite and not negative"},
		{"NaN value", func(r *Report) { r.Charts[1].Series[0].Values[0] = math.NaN() }, "must be finite"},
		{"infinite value", func(r *Report) { r.Charts[1].Series[0].Values[0] = math.Inf(1) }, "must be finite"},
		{"pie with two series", func(r *Report) {
			r.Charts[0].Series = append(r.Charts[0].Series, Series{Name: "x", Values: []float64{1, 2, 3, 4}})
		}, "a pie takes exactly one"},
		{"pie with too many slices", func(r *Report) {
			r.Charts[0].Labels = make([]string, MaxPieSlices+1)
			r.Charts[0].Series[0].Values = make([]float64, MaxPieSlices+1)
		}, "slices"},
		{"bar with too many labels", func(r *Report) {
			r.Charts[1].Labels = make([]string, MaxChartLabels+1)
			r.Charts[1].Series[0].Values = make([]float64, MaxChartLabels+1)
		}, "at most 20"},
		{"too many series", func(r *Report) {
			for range MaxChartSeries {
				r.Charts[2].Series = append(r.Charts[2].Series, Series{Values: make([]float64, 4)})
			}
		}, "series; at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleReport(6)
			tt.mutate(r)
			err := r.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %q, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	var r *Report
	if err := r.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate() on nil = %v, want ErrInvalid", err)
	}
}

// Validation errors must not echo cell contents, which may be personal data.
func TestValidateErrorOmitsCellValues(t *testing.T) {
	r := sampleReport(3)
	r.Rows[1].Cells = []string{"alice@example.com"}
	err := r.Validate()
	if err == nil || strings.Contains(err.Error(), "alice") {
		t.Fatalf("Validate() = %v, want an error that does not contain the cell value", err)
	}
}
