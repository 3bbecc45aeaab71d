package report

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/go-pdf/fpdf"
)

// Page geometry in millimetres (A4).
const (
	pageMargin   = 15.0
	footerHeight = 10.0 // reserved below the text area for the footer
	lineGap      = 1.5
	fontFamily   = "Helvetica" // core font: no font files to ship or embed
	// landscapeFromColumns switches to landscape A4 when the table would
	// have this many columns or more, so cells stay readable.
	landscapeFromColumns = 7
	// pageCountAlias stands for the page total until the document closes.
	// It contains control characters, which encode() removes from report
	// text, so a cell reading "{nb}" cannot be mistaken for it.
	pageCountAlias = "\x01nb\x01"
)

// pdfDoc holds the state of one rendering.
type pdfDoc struct {
	pdf      *fpdf.Fpdf
	enc      textEncoder
	r        *Report
	contentW float64 // width between the margins
	pageH    float64
	stamp    string // "2026-01-31 09:00 UTC", shown in title block and footer

	runningHeader string // encoded and fitted title line of pages after the first
	footerText    string // encoded once, drawn on every page

	// table is set while the data table is drawn; the page header then
	// repeats the table's column header on every new page.
	table *tableLayout
}

// WritePDF renders r as an A4 PDF: a title block (title, subtitle, tenant,
// generation time in UTC), the summary metrics, each chart, the framework
// controls, the notes and then the table, whose header repeats on every page.
// Pages carry "Page N of M" in the footer. The table is landscape when it has
// many columns. Long cells are shortened with an ellipsis; the CSV and JSON
// exports carry full values. Text is drawn in Windows-1252 core fonts:
// characters outside that code page (other scripts, emoji) print as '?'.
// Output is deterministic for a given report.
//
// It returns an error wrapping ErrInvalid, before writing anything, when r
// fails Validate; otherwise rendering errors or errors from w.
func WritePDF(w io.Writer, r *Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	d := newPDFDoc(r)
	d.titleBlock()
	d.summary()
	d.charts()
	d.controls()
	d.notes()
	d.dataTable()
	if err := d.pdf.Error(); err != nil {
		return fmt.Errorf("report: rendering PDF: %w", err)
	}
	return d.pdf.Output(w)
}

func newPDFDoc(r *Report) *pdfDoc {
	orientation := "P"
	if tableColumnCount(r) >= landscapeFromColumns {
		orientation = "L"
	}
	pdf := fpdf.New(orientation, "mm", "A4", "")
	d := &pdfDoc{pdf: pdf, r: r, enc: newTextEncoder(pdf)}
	w, h := pdf.GetPageSize()
	d.contentW, d.pageH = w-2*pageMargin, h
	d.stamp = r.GeneratedAt.UTC().Format("2006-01-02 15:04 UTC")

	pdf.SetMargins(pageMargin, pageMargin, pageMargin)
	// Padding is explicit at each drawing site; fpdf's implicit cell margin
	// would shift text past the widths that fit() measures.
	pdf.SetCellMargin(0)
	pdf.SetAutoPageBreak(true, pageMargin+footerHeight)
	pdf.AliasNbPages(pageCountAlias)
	pdf.SetCatalogSort(true) // with fixed dates, identical input gives identical bytes
	pdf.SetCreationDate(r.GeneratedAt.UTC())
	pdf.SetModificationDate(r.GeneratedAt.UTC())
	// fpdf's metadata encoder panics on malformed UTF-8.
	pdf.SetTitle(strings.ToValidUTF8(r.Title, "\uFFFD"), true)
	pdf.SetSubject(strings.ToValidUTF8(r.Subtitle, "\uFFFD"), true)
	pdf.SetCreator("Steward", true)
	pdf.SetProducer("Steward", true)
	pdf.SetHeaderFunc(d.pageHeader)
	pdf.SetFooterFunc(d.pageFooter)
	pdf.AddPage()
	return d
}

// pageHeader runs at the top of every page; the first page has the title
// block instead of a running header.
func (d *pdfDoc) pageHeader() {
	pdf := d.pdf
	if pdf.PageNo() > 1 {
		pdf.SetFont(fontFamily, "", 8)
		setText(pdf, colMuted)
		if d.runningHeader == "" {
			// Computed once: encoding a long title on every one of
			// hundreds of pages would make rendering quadratic.
			left := d.r.Title
			if d.r.Tenant != "" {
				left += " — " + d.r.Tenant
			}
			d.runningHeader = fit(pdf, d.enc.encode(left), d.contentW)
		}
		pdf.SetXY(pageMargin, pageMargin-6)
		pdf.CellFormat(d.contentW, 4, d.runningHeader, "", 0, "L", false, 0, "")
		setDraw(pdf, colRule)
		pdf.SetLineWidth(0.2)
		pdf.Line(pageMargin, pageMargin-1.5, pageMargin+d.contentW, pageMargin-1.5)
		pdf.SetXY(pageMargin, pageMargin)
	}
	if d.table != nil {
		d.table.drawHeader(d)
	}
}

func (d *pdfDoc) pageFooter() {
	pdf := d.pdf
	y := d.pageH - pageMargin - footerHeight + 4
	setDraw(pdf, colRule)
	pdf.SetLineWidth(0.2)
	pdf.Line(pageMargin, y, pageMargin+d.contentW, y)
	pdf.SetFont(fontFamily, "", 8)
	setText(pdf, colMuted)
	pdf.SetXY(pageMargin, y+1.5)
	// The page number goes left: the total replaces the alias only when the
	// document closes, so right-aligning it would measure the wrong width.
	pageText := fmt.Sprintf("Page %d of %s", pdf.PageNo(), pageCountAlias)
	pageW := pdf.GetStringWidth(pageText) + 2
	pdf.CellFormat(pageW, 4, pageText, "", 0, "L", false, 0, "")
	if d.footerText == "" {
		d.footerText = d.enc.encode("Steward compliance report • generated " + d.stamp + " • confidential")
	}
	pdf.CellFormat(d.contentW-pageW, 4, fit(pdf, d.footerText, d.contentW-pageW), "", 0, "R", false, 0, "")
}

func (d *pdfDoc) titleBlock() {
	pdf := d.pdf
	setText(pdf, colText)
	pdf.SetFont(fontFamily, "B", 20)
	for _, line := range wrapMax(pdf, d.enc.encode(d.r.Title), d.contentW, 3) {
		pdf.CellFormat(d.contentW, 9, line, "", 1, "L", false, 0, "")
	}
	if d.r.Subtitle != "" {
		pdf.SetFont(fontFamily, "", 11)
		setText(pdf, colMuted)
		for _, line := range wrapMax(pdf, d.enc.encode(d.r.Subtitle), d.contentW, 3) {
			pdf.CellFormat(d.contentW, 5.5, line, "", 1, "L", false, 0, "")
		}
	}
	pdf.Ln(2)
	pdf.SetFont(fontFamily, "", 9)
	setText(pdf, colText)
	meta := "Generated " + d.stamp
	if d.r.Tenant != "" {
		meta = "Tenant: " + d.enc.encode(d.r.Tenant) + "      " + meta
	}
	pdf.CellFormat(d.contentW, 4.5, fit(pdf, meta, d.contentW), "", 1, "L", false, 0, "")
	pdf.Ln(2)
	setDraw(pdf, colText)
	pdf.SetLineWidth(0.5)
	pdf.Line(pageMargin, pdf.GetY(), pageMargin+d.contentW, pdf.GetY())
	pdf.Ln(4)
}

// heading starts a section titled title (UTF-8); space is the height the section's first block
// needs, so a heading is never stranded at the bottom of a page.
func (d *pdfDoc) heading(title string, space float64) {
	d.ensureSpace(9 + space)
	pdf := d.pdf
	pdf.SetFont(fontFamily, "B", 13)
	setText(pdf, colText)
	pdf.SetX(pageMargin)
	pdf.CellFormat(d.contentW, 7, d.enc.encode(title), "", 1, "L", false, 0, "")
	pdf.Ln(2)
}

// ensureSpace starts a new page unless h millimetres remain on this one.
func (d *pdfDoc) ensureSpace(h float64) {
	if d.pdf.GetY()+h > d.bottom() {
		d.pdf.AddPage()
	}
}

// bottom is the lowest y content may reach.
func (d *pdfDoc) bottom() float64 { return d.pageH - pageMargin - footerHeight }

// summary draws the metrics as tiles, a large value over a small label.
func (d *pdfDoc) summary() {
	if len(d.r.Summary) == 0 {
		return
	}
	const tileH, gap = 19.0, 4.0
	perRow := 4
	if d.contentW > 200 {
		perRow = 6
	}
	tileW := (d.contentW - gap*float64(perRow-1)) / float64(perRow)
	d.heading("Summary", tileH)
	pdf := d.pdf
	y := pdf.GetY()
	for i, m := range d.r.Summary {
		col := i % perRow
		if col == 0 {
			if i > 0 {
				pdf.SetY(y + tileH + gap)
			}
			d.ensureSpace(tileH)
			y = pdf.GetY()
		}
		x := pageMargin + float64(col)*(tileW+gap)
		setFill(pdf, colTileBox)
		setDraw(pdf, colGrid)
		pdf.SetLineWidth(0.2)
		pdf.Rect(x, y, tileW, tileH, "FD")
		setFill(pdf, palette[0])
		pdf.Rect(x, y, 1.2, tileH, "F") // accent bar
		pdf.SetFont(fontFamily, "B", 15)
		setText(pdf, colText)
		pdf.SetXY(x+3, y+2.5)
		pdf.CellFormat(tileW-5, 7, fit(pdf, d.enc.encode(m.Value), tileW-5), "", 0, "L", false, 0, "")
		pdf.SetFont(fontFamily, "", 8)
		setText(pdf, colMuted)
		for j, line := range wrapMax(pdf, d.enc.encode(m.Label), tileW-5, 2) {
			pdf.SetXY(x+3, y+10.5+float64(j)*3.6)
			pdf.CellFormat(tileW-5, 3.6, line, "", 0, "L", false, 0, "")
		}
	}
	pdf.SetXY(pageMargin, y+tileH+gap+2)
}

// controls lists the framework mappings as a three-column table that wraps
// long titles.
func (d *pdfDoc) controls() {
	if len(d.r.Controls) == 0 {
		return
	}
	pdf := d.pdf
	widths := []float64{42, 22, d.contentW - 64}
	const lineH = 4.5
	d.heading("Controls", 2*lineH)
	pdf.SetFont(fontFamily, "B", 9)
	d.wrappedRow([]string{"Framework", "Control", "Title"}, widths, lineH, &colHeader)
	pdf.SetFont(fontFamily, "", 9)
	for i, c := range d.r.Controls {
		var fill *rgb
		if i%2 == 1 {
			fill = &colZebra
		}
		d.wrappedRow([]string{d.enc.encode(c.Framework), d.enc.encode(c.ID), d.enc.encode(c.Title)}, widths, lineH, fill)
	}
	pdf.Ln(4)
}

// maxControlLines bounds a control row so it always fits on one page.
const maxControlLines = 4

// wrappedRow draws encoded cells side by side, each wrapped to its width,
// moving to a new page first when the row would not fit.
func (d *pdfDoc) wrappedRow(cells []string, widths []float64, lineH float64, fill *rgb) {
	pdf := d.pdf
	const pad = 1.5
	split := make([][]string, len(cells))
	lines := 1
	for i, c := range cells {
		split[i] = wrapMax(pdf, c, widths[i]-2*pad, maxControlLines)
		lines = max(lines, len(split[i]))
	}
	h := float64(lines)*lineH + 1
	d.ensureSpace(h)
	x, y := pageMargin, pdf.GetY()
	if fill != nil {
		setFill(pdf, *fill)
		pdf.Rect(x, y, sum(widths), h, "F")
	}
	setText(pdf, colText)
	for i := range cells {
		for j, line := range split[i] {
			pdf.SetXY(x+pad, y+0.5+float64(j)*lineH)
			pdf.CellFormat(widths[i]-2*pad, lineH, line, "", 0, "L", false, 0, "")
		}
		x += widths[i]
	}
	pdf.SetXY(pageMargin, y+h)
}

func (d *pdfDoc) notes() {
	if len(d.r.Notes) == 0 {
		return
	}
	pdf := d.pdf
	d.heading("Notes", 10)
	pdf.SetFont(fontFamily, "", 9)
	setText(pdf, colText)
	for _, n := range d.r.Notes {
		d.ensureSpace(5)
		y := pdf.GetY()
		pdf.SetXY(pageMargin, y)
		pdf.CellFormat(4, 4.5, d.enc.encode("•"), "", 0, "L", false, 0, "")
		pdf.SetXY(pageMargin+4, y)
		pdf.MultiCell(d.contentW-4, 4.5, d.enc.encode(n), "", "L", false)
		pdf.Ln(1)
	}
	pdf.Ln(3)
}

func sum(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}

// formatNumber prints whole numbers with thousands separators and other
// values with at most two decimals.
func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return humanize.Comma(int64(v))
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
