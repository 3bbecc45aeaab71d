package report

import (
	"slices"
	"strings"
)

// Table metrics in millimetres and points.
const (
	tableFontSize   = 8.0
	tableRowH       = 5.2
	tableHeaderLine = 3.8
	cellPad         = 1.2
	statusColumnW   = 19.0
	minColumnW      = 12.0
	// widthSample bounds how many rows are measured to size columns; it is
	// plenty to see the typical width and keeps 10,000-row reports fast.
	widthSample = 2000
)

// tableLayout is the table's shape, computed once and reused for the header
// on every page.
type tableLayout struct {
	showStatus   bool
	showControls bool
	titles       []string  // encoded, data columns then controls
	widths       []float64 // parallel to titles
	headerLines  [][]string
	headerH      float64
}

// tableColumnCount is how many columns the PDF table shows, including the
// status and controls columns when any row uses them.
func tableColumnCount(r *Report) int {
	n := len(r.Columns)
	if slices.ContainsFunc(r.Rows, func(row Row) bool { return row.Status != "" }) {
		n++
	}
	if slices.ContainsFunc(r.Rows, func(row Row) bool { return len(row.Controls) > 0 }) {
		n++
	}
	return n
}

func (d *pdfDoc) dataTable() {
	r := d.r
	if len(r.Columns) == 0 {
		return
	}
	pdf := d.pdf
	t := d.layoutTable()
	d.heading("Details — "+formatNumber(float64(len(r.Rows)))+" rows", t.headerH+tableRowH*3)
	pdf.SetFont(fontFamily, "I", 8)
	setText(pdf, colMuted)
	pdf.MultiCell(d.contentW, 3.8, d.enc.encode("Long values are shortened with … here; the CSV and JSON exports of this report carry them in full."), "", "L", false)
	pdf.Ln(1.5)

	t.drawHeader(d)
	d.table = t // from here on every new page repeats the header
	pdf.SetFont(fontFamily, "", tableFontSize)
	for i, row := range r.Rows {
		if pdf.GetY()+tableRowH > d.bottom() {
			pdf.AddPage()
			pdf.SetFont(fontFamily, "", tableFontSize)
		}
		t.drawRow(d, i, row)
	}
	if len(r.Rows) == 0 {
		setText(pdf, colMuted)
		pdf.CellFormat(d.contentW, tableRowH+1, "No rows.", "", 1, "L", false, 0, "")
	}
	d.table = nil
}

// layoutTable sizes the columns: each wants the width of its title or of
// its 90th-percentile cell, whichever is larger; the table then stretches or
// shrinks proportionally to the page width, never below minColumnW.
func (d *pdfDoc) layoutTable() *tableLayout {
	pdf, r := d.pdf, d.r
	t := &tableLayout{}
	t.showStatus = slices.ContainsFunc(r.Rows, func(row Row) bool { return row.Status != "" })
	t.showControls = slices.ContainsFunc(r.Rows, func(row Row) bool { return len(row.Controls) > 0 })
	for _, c := range r.Columns {
		t.titles = append(t.titles, d.enc.encode(c.Title))
	}
	if t.showControls {
		t.titles = append(t.titles, "Controls")
	}
	sample := r.Rows[:min(len(r.Rows), widthSample)]
	want := make([]float64, len(t.titles))
	measured := make([]float64, len(sample))
	for col := range t.titles {
		pdf.SetFont(fontFamily, "", tableFontSize)
		for i, row := range sample {
			if col < len(r.Columns) {
				measured[i] = pdf.GetStringWidth(d.enc.encode(row.Cells[col]))
			} else {
				measured[i] = pdf.GetStringWidth(d.enc.encode(strings.Join(row.Controls, ", ")))
			}
		}
		typical := percentile90(measured)
		pdf.SetFont(fontFamily, "B", tableFontSize)
		// A title may wrap onto two lines, so half its width is enough
		// when the cells are narrow.
		title := pdf.GetStringWidth(t.titles[col])
		want[col] = max(typical, min(title, max(title/2, longestWord(pdf.GetStringWidth, t.titles[col])))) + 2*cellPad + 0.5
	}
	avail := d.contentW
	if t.showStatus {
		avail -= statusColumnW
	}
	t.widths = distribute(want, avail)

	pdf.SetFont(fontFamily, "B", tableFontSize)
	lines := 1
	for i, title := range t.titles {
		split := wrapMax(pdf, title, t.widths[i]-2*cellPad, 2) // headers stay compact
		t.headerLines = append(t.headerLines, split)
		lines = max(lines, len(split))
	}
	t.headerH = float64(lines)*tableHeaderLine + 2
	return t
}

// distribute scales want to fill avail exactly, giving each column at least
// minColumnW (or an equal share when even that does not fit).
func distribute(want []float64, avail float64) []float64 {
	out := make([]float64, len(want))
	floor := min(minColumnW, avail/float64(len(want)))
	total := sum(want)
	if total <= avail {
		extra := (avail - total) / float64(len(want))
		for i, w := range want {
			out[i] = w + extra
		}
		return out
	}
	// Shrink: columns at the floor are fixed; the rest share what remains
	// in proportion to what they wanted. Repeat until no column dips below.
	fixed := make([]bool, len(want))
	for {
		free, freeWant := avail, 0.0
		for i, w := range want {
			if fixed[i] {
				free -= floor
			} else {
				freeWant += w
			}
		}
		changed := false
		for i, w := range want {
			if fixed[i] {
				out[i] = floor
				continue
			}
			out[i] = w / freeWant * free
			if out[i] < floor {
				fixed[i], changed = true, true
			}
		}
		if !changed {
			return out
		}
	}
}

func percentile90(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)*9/10]
}

func longestWord(width func(string) float64, s string) float64 {
	var w float64
	for _, word := range strings.Fields(s) {
		w = max(w, width(word))
	}
	return w
}

func (t *tableLayout) drawHeader(d *pdfDoc) {
	pdf := d.pdf
	pdf.SetFont(fontFamily, "B", tableFontSize)
	setFill(pdf, colHeader)
	setText(pdf, colText)
	x, y := pageMargin, pdf.GetY()
	pdf.Rect(x, y, d.contentW, t.headerH, "F")
	if t.showStatus {
		pdf.SetXY(x+cellPad, y+1)
		pdf.CellFormat(statusColumnW-cellPad, tableHeaderLine, "Status", "", 0, "L", false, 0, "")
		x += statusColumnW
	}
	for i, lines := range t.headerLines {
		for j, line := range lines {
			pdf.SetXY(x+cellPad, y+1+float64(j)*tableHeaderLine)
			pdf.CellFormat(t.widths[i]-cellPad, tableHeaderLine, line, "", 0, "L", false, 0, "")
		}
		x += t.widths[i]
	}
	setDraw(pdf, colText)
	pdf.SetLineWidth(0.3)
	pdf.Line(pageMargin, y+t.headerH, pageMargin+d.contentW, y+t.headerH)
	pdf.SetXY(pageMargin, y+t.headerH)
	pdf.SetFont(fontFamily, "", tableFontSize)
}

func (t *tableLayout) drawRow(d *pdfDoc, index int, row Row) {
	pdf := d.pdf
	x, y := pageMargin, pdf.GetY()
	if index%2 == 1 {
		setFill(pdf, colZebra)
		pdf.Rect(x, y, d.contentW, tableRowH, "F")
	}
	setText(pdf, colText)
	if t.showStatus {
		if st, ok := statusStyle[row.Status]; ok {
			drawStatusMark(pdf, row.Status, x+cellPad+1.3, y+tableRowH/2, 2.6)
			pdf.SetXY(x+cellPad+3.5, y)
			pdf.CellFormat(statusColumnW-cellPad-3.5, tableRowH, st.word, "", 0, "L", false, 0, "")
		}
		x += statusColumnW
	}
	for i, w := range t.widths {
		var text string
		if i < len(row.Cells) {
			text = row.Cells[i]
		} else {
			text = strings.Join(row.Controls, ", ")
		}
		pdf.SetXY(x+cellPad, y)
		pdf.CellFormat(w-cellPad, tableRowH, fit(pdf, d.enc.encode(text), w-2*cellPad), "", 0, "L", false, 0, "")
		x += w
	}
	pdf.SetXY(pageMargin, y+tableRowH)
}
