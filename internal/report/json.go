package report

import (
	"bytes"
	"encoding/json"
	"io"
	"time"
)

// JSONSchema names the shape WriteJSON produces. It changes only when a
// field is removed or its meaning changes; new fields may be added within it.
const JSONSchema = "steward.report.v1"

// The JSON document. Every list is present (empty rather than null) so
// consumers need no nil checks.
type jsonReport struct {
	Schema      string        `json:"schema"`
	Kind        string        `json:"kind"`
	Title       string        `json:"title"`
	Subtitle    string        `json:"subtitle"`
	Tenant      string        `json:"tenant"`
	GeneratedAt string        `json:"generated_at"` // RFC 3339, UTC
	Controls    []jsonControl `json:"controls"`
	Summary     []jsonMetric  `json:"summary"`
	Charts      []jsonChart   `json:"charts"`
	Columns     []jsonColumn  `json:"columns"`
	Rows        []jsonRow     `json:"rows"`
	Notes       []string      `json:"notes"`
}

type jsonControl struct {
	Framework string `json:"framework"`
	ID        string `json:"id"`
	Title     string `json:"title"`
}

type jsonMetric struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

type jsonChart struct {
	Title  string       `json:"title"`
	Kind   string       `json:"kind"`
	Labels []string     `json:"labels"`
	Series []jsonSeries `json:"series"`
}

type jsonSeries struct {
	Name   string    `json:"name"`
	Values []float64 `json:"values"`
}

type jsonColumn struct {
	Key   string `json:"key"`
	Title string `json:"title"`
}

// Row cells sit in their own object so a column may be called "status" or
// "controls" without colliding with the row's own fields.
type jsonRow struct {
	Cells    orderedCells `json:"cells"`
	Controls []string     `json:"controls"`
	Status   string       `json:"status"`
}

// orderedCells marshals as an object whose keys follow column order, so the
// output reads like the table and is byte-for-byte stable.
type orderedCells struct {
	columns []Column
	cells   []string
}

func (o orderedCells) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range o.columns {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(c.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(o.cells[i])
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// WriteJSON writes r as one JSON object followed by a newline:
//
//	{"schema":"steward.report.v1","kind":…,"title":…,"subtitle":…,"tenant":…,
//	 "generated_at":"2026-01-31T09:00:00Z",
//	 "controls":[{"framework":…,"id":…,"title":…}],
//	 "summary":[{"label":…,"value":…}],
//	 "charts":[{"title":…,"kind":"bar|pie|stacked_bar","labels":[…],
//	            "series":[{"name":…,"values":[…]}]}],
//	 "columns":[{"key":…,"title":…}],
//	 "rows":[{"cells":{"<column key>":"<value>",…},"controls":["1.1"],"status":"ok|warning|failing|"}],
//	 "notes":[…]}
//
// Cell keys appear in column order. It returns an error wrapping ErrInvalid,
// before writing anything, when r fails Validate, and otherwise only errors
// from w.
func WriteJSON(w io.Writer, r *Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	doc := jsonReport{
		Schema:      JSONSchema,
		Kind:        r.Kind,
		Title:       r.Title,
		Subtitle:    r.Subtitle,
		Tenant:      r.Tenant,
		GeneratedAt: r.GeneratedAt.UTC().Format(time.RFC3339),
		Controls:    make([]jsonControl, 0, len(r.Controls)),
		Summary:     make([]jsonMetric, 0, len(r.Summary)),
		Charts:      make([]jsonChart, 0, len(r.Charts)),
		Columns:     make([]jsonColumn, 0, len(r.Columns)),
		Rows:        make([]jsonRow, 0, len(r.Rows)),
		Notes:       nonNil(r.Notes),
	}
	for _, c := range r.Controls {
		doc.Controls = append(doc.Controls, jsonControl(c))
	}
	for _, m := range r.Summary {
		doc.Summary = append(doc.Summary, jsonMetric(m))
	}
	for _, c := range r.Charts {
		jc := jsonChart{Title: c.Title, Kind: c.Kind, Labels: nonNil(c.Labels), Series: make([]jsonSeries, 0, len(c.Series))}
		for _, s := range c.Series {
			jc.Series = append(jc.Series, jsonSeries{Name: s.Name, Values: nonNil(s.Values)})
		}
		doc.Charts = append(doc.Charts, jc)
	}
	for _, c := range r.Columns {
		doc.Columns = append(doc.Columns, jsonColumn(c))
	}
	for _, row := range r.Rows {
		doc.Rows = append(doc.Rows, jsonRow{
			Cells:    orderedCells{columns: r.Columns, cells: row.Cells},
			Controls: nonNil(row.Controls),
			Status:   row.Status,
		})
	}
	return json.NewEncoder(w).Encode(doc)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
