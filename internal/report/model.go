package report

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalid marks a Report that breaks the model's rules. Reports are built
// by Steward's own queries, so an invalid one is a bug in the query code; the
// wrapped message names the offending part so it can be found quickly.
var ErrInvalid = errors.New("report: invalid report")

// Row statuses. The empty status means "not assessed" and renders as nothing.
const (
	StatusOK      = "ok"
	StatusWarning = "warning"
	StatusFailing = "failing"
)

// Chart kinds.
const (
	ChartBar        = "bar"         // one bar per label; several series become grouped bars
	ChartPie        = "pie"         // exactly one series; slices are labels
	ChartStackedBar = "stacked_bar" // one bar per label, series stacked inside it
)

// Limits that keep charts legible. Colours come from an eight-colour
// palette that stays distinguishable for colour-blind readers; more slices or
// series would have to reuse colours and become ambiguous.
const (
	MaxChartLabels = 20
	MaxChartSeries = 8
	MaxPieSlices   = 8
)

// Report is one compliance document. The same value renders to JSON, CSV and
// PDF; each writer validates it first and writes nothing when it is invalid.
type Report struct {
	Kind        string    // machine name, e.g. "device_inventory"
	Title       string    // e.g. "Device inventory"
	Subtitle    string    // optional, e.g. the scope or filter applied
	Tenant      string    // display name of the tenant the report covers
	GeneratedAt time.Time // rendered in UTC
	Controls    []Control // framework controls this report provides evidence for
	Summary     []Metric  // headline figures shown above the charts
	Charts      []Chart
	Columns     []Column
	Rows        []Row
	Notes       []string // methodology and scope remarks for the auditor
}

// Control is one framework requirement the report evidences, e.g.
// {"CIS Controls v8", "1.1", "Establish and Maintain Detailed Enterprise Asset Inventory"}.
type Control struct {
	Framework, ID, Title string
}

// Metric is a headline figure. Value is preformatted so the query code
// decides units and rounding ("93 %", "1,204").
type Metric struct {
	Label, Value string
}

// Column describes one table column. Key is the stable machine name used
// in JSON; Title is what people read in CSV and PDF headers.
type Column struct {
	Key, Title string
}

// Row is one table line. Cells are in column order. Controls lists the IDs
// of the report's Controls this row is evidence for. Status is one of the
// Status constants or empty.
type Row struct {
	Cells    []string
	Controls []string
	Status   string
}

// Chart is a small data visualisation; see the Chart constants for kinds.
// Series (or pie slices) take colours in order blue, orange, vermillion,
// then further colour-blind-safe hues, so list states from best to worst.
type Chart struct {
	Title  string
	Kind   string
	Labels []string
	Series []Series
}

// Series is one named set of values, one per chart label.
type Series struct {
	Name   string
	Values []float64
}

// Validate reports whether r can be rendered. It returns an error wrapping
// ErrInvalid when: Kind, Title or GeneratedAt is missing; a control lacks
// framework or ID; a column key is empty or repeated, or a column title is
// empty; a row's cell count differs from the column count, its status is not
// a Status constant, or it references a control ID the report does not list;
// a chart has an unknown kind, no labels, no series, too many labels or
// series (see the Max constants), a series whose length differs from the
// labels, or a value that is negative, NaN or infinite.
func (r *Report) Validate() error {
	if r == nil {
		return fmt.Errorf("%w: report is nil", ErrInvalid)
	}
	if r.Kind == "" {
		return invalid("kind is empty; set it to the report's machine name, e.g. device_inventory")
	}
	if r.Title == "" {
		return invalid("title is empty")
	}
	if r.GeneratedAt.IsZero() {
		return invalid("generated_at is not set")
	}
	controlIDs := make(map[string]bool, len(r.Controls))
	for i, c := range r.Controls {
		if c.Framework == "" || c.ID == "" {
			return invalid("control %d needs both a framework and an ID", i)
		}
		controlIDs[c.ID] = true
	}
	keys := make(map[string]bool, len(r.Columns))
	for i, c := range r.Columns {
		switch {
		case c.Key == "":
			return invalid("column %d has an empty key", i)
		case keys[c.Key]:
			return invalid("column key %q is used twice; keys must be unique", c.Key)
		case c.Title == "":
			return invalid("column %q has an empty title", c.Key)
		}
		keys[c.Key] = true
	}
	for i, row := range r.Rows {
		if err := validateRow(row, len(r.Columns), controlIDs); err != nil {
			return invalid("row %d: %v", i, err)
		}
	}
	for i, c := range r.Charts {
		if err := c.validate(); err != nil {
			return invalid("chart %d (%q): %v", i, c.Title, err)
		}
	}
	return nil
}

func validateRow(row Row, columns int, controlIDs map[string]bool) error {
	if len(row.Cells) != columns {
		return fmt.Errorf("has %d cells but the report has %d columns", len(row.Cells), columns)
	}
	switch row.Status {
	case "", StatusOK, StatusWarning, StatusFailing:
	default:
		return fmt.Errorf("status %q is not one of ok, warning, failing or empty", row.Status)
	}
	for _, id := range row.Controls {
		if !controlIDs[id] {
			return fmt.Errorf("references control %q, which is not in the report's controls", id)
		}
	}
	return nil
}

func (c Chart) validate() error {
	switch c.Kind {
	case ChartBar, ChartPie, ChartStackedBar:
	default:
		return fmt.Errorf("kind %q is unknown; use bar, pie or stacked_bar", c.Kind)
	}
	if len(c.Labels) == 0 {
		return errors.New("has no labels")
	}
	if len(c.Labels) > MaxChartLabels {
		return fmt.Errorf("has %d labels; at most %d stay legible, group the rest as \"Other\"", len(c.Labels), MaxChartLabels)
	}
	if len(c.Series) == 0 {
		return errors.New("has no series")
	}
	if c.Kind == ChartPie {
		if len(c.Series) != 1 {
			return fmt.Errorf("is a pie with %d series; a pie takes exactly one", len(c.Series))
		}
		if len(c.Labels) > MaxPieSlices {
			return fmt.Errorf("is a pie with %d slices; at most %d stay distinguishable", len(c.Labels), MaxPieSlices)
		}
	}
	if len(c.Series) > MaxChartSeries {
		return fmt.Errorf("has %d series; at most %d stay distinguishable", len(c.Series), MaxChartSeries)
	}
	for _, s := range c.Series {
		if len(s.Values) != len(c.Labels) {
			return fmt.Errorf("series %q has %d values for %d labels", s.Name, len(s.Values), len(c.Labels))
		}
		for j, v := range s.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return fmt.Errorf("series %q value %d is %v; values must be finite and not negative", s.Name, j, v)
			}
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
