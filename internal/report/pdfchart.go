package report

import (
	"math"
	"strconv"
	"strings"

	"github.com/go-pdf/fpdf"
)

// Chart geometry in millimetres. Bars run horizontally: category labels
// on the left stay readable however long they are, unlike rotated labels
// under vertical bars.
const (
	chartTitleH   = 7.0
	chartFont     = 8.0
	legendRowH    = 5.0
	barThickness  = 4.2
	barGap        = 2.2
	axisH         = 6.0
	pieDiameter   = 52.0
	pieLegendRowH = 5.5
	chartSpacing  = 7.0
	// minLabelledBar is the thinnest bar that still gets its value printed.
	minLabelledBar = 2.4
)

func (d *pdfDoc) charts() {
	for i, c := range d.r.Charts {
		h := d.chartHeight(c)
		if i == 0 {
			d.heading("Charts", h)
		} else {
			d.ensureSpace(h)
		}
		d.chartTitle(c.Title)
		switch c.Kind {
		case ChartPie:
			d.pieChart(c)
		default:
			d.barChart(c)
		}
		d.pdf.SetXY(pageMargin, d.pdf.GetY()+chartSpacing)
	}
}

// chartHeight is the space chart c takes, title included.
func (d *pdfDoc) chartHeight(c Chart) float64 {
	if c.Kind == ChartPie {
		return chartTitleH + max(pieDiameter, float64(len(c.Labels))*pieLegendRowH) + 2
	}
	return chartTitleH + d.legendHeight(c) + float64(len(c.Labels))*d.barRowH(c) + axisH
}

func (d *pdfDoc) legendHeight(c Chart) float64 {
	if len(c.Series) < 2 {
		return 0
	}
	return legendRowH * float64(len(d.legendRows(c)))
}

// barRowH is the height of one label's band. Many grouped series could
// make a chart taller than a page, so bands shrink until it fits on one.
func (d *pdfDoc) barRowH(c Chart) float64 {
	natural := barThickness + barGap
	if c.Kind == ChartBar && len(c.Series) > 1 {
		natural = float64(len(c.Series))*barThickness*0.8 + barGap
	}
	const headingH = 9 // room for the section heading above the first chart
	pageRoom := d.bottom() - pageMargin - headingH - chartTitleH - d.legendHeight(c) - axisH
	return min(natural, pageRoom/float64(len(c.Labels)))
}

func (d *pdfDoc) chartTitle(title string) {
	pdf := d.pdf
	pdf.SetFont(fontFamily, "B", 10)
	setText(pdf, colText)
	pdf.SetX(pageMargin)
	pdf.CellFormat(d.contentW, chartTitleH-1, fit(pdf, d.enc.encode(title), d.contentW), "", 1, "L", false, 0, "")
	pdf.Ln(1)
}

// legendRows lays out series names left to right, wrapping to new rows;
// each entry is the series index.
func (d *pdfDoc) legendRows(c Chart) [][]int {
	pdf := d.pdf
	pdf.SetFont(fontFamily, "", chartFont)
	var rows [][]int
	var row []int
	x := 0.0
	for i, s := range c.Series {
		w := min(pdf.GetStringWidth(d.enc.encode(s.Name)), d.contentW/2) + 9
		if x+w > d.contentW && len(row) > 0 {
			rows, row, x = append(rows, row), nil, 0
		}
		row = append(row, i)
		x += w
	}
	return append(rows, row)
}

func (d *pdfDoc) legend(c Chart) {
	if len(c.Series) < 2 {
		return
	}
	pdf := d.pdf
	y := pdf.GetY()
	for _, row := range d.legendRows(c) {
		x := pageMargin
		for _, i := range row {
			setFill(pdf, palette[i%len(palette)])
			pdf.Rect(x, y+1, 3.2, 3.2, "F")
			name := fit(pdf, d.enc.encode(c.Series[i].Name), d.contentW/2)
			setText(pdf, colText)
			pdf.SetXY(x+4.2, y)
			pdf.CellFormat(pdf.GetStringWidth(name)+1, legendRowH, name, "", 0, "L", false, 0, "")
			x += pdf.GetStringWidth(name) + 9
		}
		y += legendRowH
	}
	pdf.SetXY(pageMargin, y)
}

// barChart draws horizontal bars: one per label for a single series,
// grouped for several series of kind bar, stacked for stacked_bar. A value
// axis with gridlines runs below; each bar ends in its value.
func (d *pdfDoc) barChart(c Chart) {
	pdf := d.pdf
	d.legend(c)
	stacked := c.Kind == ChartStackedBar
	maxV := 0.0
	for li := range c.Labels {
		total := 0.0
		for _, s := range c.Series {
			if stacked {
				total += s.Values[li]
			} else {
				total = max(total, s.Values[li])
			}
		}
		maxV = max(maxV, total)
	}
	step, top := niceScale(maxV)
	ticks := int(math.Round(top / step))

	pdf.SetFont(fontFamily, "", chartFont)
	labelW := 0.0
	for _, l := range c.Labels {
		labelW = max(labelW, pdf.GetStringWidth(d.enc.encode(l)))
	}
	labelW = min(labelW+3, d.contentW*0.32)
	valueW := pdf.GetStringWidth(formatNumber(top)) + 3 // room for the value after the longest bar
	x0 := pageMargin + labelW
	plotW := d.contentW - labelW - valueW
	rowH := d.barRowH(c)
	y0 := pdf.GetY()
	plotH := float64(len(c.Labels)) * rowH
	scale := plotW / top

	// Gridlines and tick labels first, so bars paint over them.
	pdf.SetLineWidth(0.15)
	setDraw(pdf, colGrid)
	setText(pdf, colMuted)
	for k := 0; k <= ticks; k++ {
		v := float64(k) * step
		x := x0 + v*scale
		pdf.Line(x, y0, x, y0+plotH)
		tick := formatNumber(v)
		tw := pdf.GetStringWidth(tick)
		pdf.SetXY(x-tw/2-0.5, y0+plotH+0.8)
		pdf.CellFormat(tw+1, 4, tick, "", 0, "C", false, 0, "")
	}
	setDraw(pdf, colMuted)
	pdf.SetLineWidth(0.3)
	pdf.Line(x0, y0, x0, y0+plotH)
	pdf.Line(x0, y0+plotH, x0+plotW, y0+plotH)

	for li, label := range c.Labels {
		y := y0 + float64(li)*rowH + barGap/2
		setText(pdf, colText)
		pdf.SetXY(pageMargin, y)
		pdf.CellFormat(labelW-2, rowH-barGap, fit(pdf, d.enc.encode(label), labelW-3), "", 0, "R", false, 0, "")
		switch {
		case stacked:
			d.stackedBar(c, li, x0, y, scale)
		default:
			thick := (rowH - barGap) / float64(len(c.Series))
			for si, s := range c.Series {
				v := s.Values[li]
				by := y + float64(si)*thick
				setFill(pdf, palette[si%len(palette)])
				pdf.Rect(x0, by+0.15, v*scale, thick-0.3, "F")
				if thick >= minLabelledBar { // thinner bars would get overlapping numbers
					d.barValue(v, x0+v*scale, by, thick)
				}
			}
		}
	}
	pdf.SetXY(pageMargin, y0+plotH+axisH)
}

func (d *pdfDoc) stackedBar(c Chart, li int, x0, y, scale float64) {
	pdf := d.pdf
	x, total := x0, 0.0
	for si, s := range c.Series {
		v := s.Values[li]
		w := v * scale
		total += v
		if w <= 0 {
			continue
		}
		colour := palette[si%len(palette)]
		setFill(pdf, colour)
		pdf.Rect(x, y, w, barThickness, "F")
		// Label a segment only when the number fits inside it.
		label := formatNumber(v)
		if pdf.GetStringWidth(label)+1.5 < w {
			setText(pdf, contrastText(colour))
			pdf.SetXY(x, y)
			pdf.CellFormat(w, barThickness, label, "", 0, "C", false, 0, "")
		}
		x += w
	}
	d.barValue(total, x, y, barThickness)
}

// barValue prints v just after a bar's end.
func (d *pdfDoc) barValue(v, xEnd, y, h float64) {
	pdf := d.pdf
	setText(pdf, colText)
	pdf.SetFont(fontFamily, "", chartFont-0.5)
	label := formatNumber(v)
	pdf.SetXY(xEnd+0.8, y)
	pdf.CellFormat(pdf.GetStringWidth(label)+1, h, label, "", 0, "L", false, 0, "")
	pdf.SetFont(fontFamily, "", chartFont)
}

// pieChart draws the slices clockwise from twelve o'clock with a legend that
// gives each slice's value and percentage; slices of 7 % or more also show
// their percentage inside.
func (d *pdfDoc) pieChart(c Chart) {
	pdf := d.pdf
	values := c.Series[0].Values
	total := sum(values)
	y0 := pdf.GetY()
	r := pieDiameter / 2
	cx, cy := pageMargin+r+2, y0+r
	if total <= 0 {
		setDraw(pdf, colRule)
		pdf.SetLineWidth(0.3)
		pdf.Circle(cx, cy, r, "D")
		pdf.SetFont(fontFamily, "", 9)
		setText(pdf, colMuted)
		pdf.SetXY(cx-r, cy-2)
		pdf.CellFormat(2*r, 4, "No data", "", 0, "C", false, 0, "")
	} else {
		angle := 90.0 // degrees counter-clockwise from three o'clock
		setDraw(pdf, rgb{255, 255, 255})
		pdf.SetLineWidth(0.4)
		for i, v := range values {
			if v <= 0 {
				continue
			}
			sweep := v / total * 360
			colour := palette[i%len(palette)]
			setFill(pdf, colour)
			pdf.Polygon(sector(cx, cy, r, angle-sweep, angle), "FD")
			if v/total >= 0.07 {
				mid := (angle - sweep/2) * math.Pi / 180
				tx, ty := cx+0.62*r*math.Cos(mid), cy-0.62*r*math.Sin(mid)
				pdf.SetFont(fontFamily, "B", chartFont)
				setText(pdf, contrastText(colour))
				pdf.SetXY(tx-7, ty-2)
				pdf.CellFormat(14, 4, percent(v, total), "", 0, "C", false, 0, "")
			}
			angle -= sweep
		}
	}

	// Legend to the right: swatch, label, value and share.
	pdf.SetFont(fontFamily, "", 9)
	lx := pageMargin + pieDiameter + 14
	legendW := min(d.contentW-(lx-pageMargin), 110) // keeps figures near their labels
	ly := y0 + max(0, (pieDiameter-float64(len(c.Labels))*pieLegendRowH)/2)
	for i, label := range c.Labels {
		y := ly + float64(i)*pieLegendRowH
		setFill(pdf, palette[i%len(palette)])
		pdf.Rect(lx, y+1.1, 3.4, 3.4, "F")
		figures := formatNumber(values[i])
		if total > 0 {
			figures += "  (" + percent(values[i], total) + ")"
		}
		setText(pdf, colText)
		fw := pdf.GetStringWidth(figures) + 2
		pdf.SetXY(lx+5, y)
		pdf.CellFormat(legendW-5-fw, pieLegendRowH, fit(pdf, d.enc.encode(label), legendW-7-fw), "", 0, "L", false, 0, "")
		pdf.CellFormat(fw, pieLegendRowH, figures, "", 0, "R", false, 0, "")
	}
	pdf.SetXY(pageMargin, y0+max(pieDiameter, float64(len(c.Labels))*pieLegendRowH)+2)
}

// sector approximates the pie slice between two angles (degrees,
// counter-clockwise from three o'clock) as a polygon: fine enough that the
// edge looks round at print resolution.
func sector(cx, cy, r, from, to float64) []fpdf.PointType {
	steps := max(2, int(math.Ceil((to-from)/2)))
	pts := make([]fpdf.PointType, 0, steps+2)
	if to-from < 359.99 {
		pts = append(pts, fpdf.PointType{X: cx, Y: cy})
	}
	for i := 0; i <= steps; i++ {
		a := (from + (to-from)*float64(i)/float64(steps)) * math.Pi / 180
		pts = append(pts, fpdf.PointType{X: cx + r*math.Cos(a), Y: cy - r*math.Sin(a)})
	}
	return pts
}

func percent(v, total float64) string {
	p := v / total * 100
	if p > 0 && p < 0.1 {
		return "<0.1 %"
	}
	return formatPercent(p)
}

// formatPercent prints p with one decimal, dropping a trailing ".0".
func formatPercent(p float64) string {
	s := strconv.FormatFloat(p, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " %"
}

// niceScale picks a tick step of 1, 2 or 5 times a power of ten giving at
// most about six ticks, and the axis end as the first tick at or above maxV.
func niceScale(maxV float64) (step, top float64) {
	if maxV <= 0 || math.IsNaN(maxV) {
		return 1, 1
	}
	if math.IsInf(maxV, 0) {
		maxV = math.MaxFloat64
	}
	raw := maxV / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch n := raw / mag; {
	case n <= 1:
		step = mag
	case n <= 2:
		step = 2 * mag
	case n <= 5:
		step = 5 * mag
	default:
		step = 10 * mag
	}
	if maxV >= 1 && step < 1 {
		step = 1 // counts are whole numbers; half-device ticks read oddly
	}
	top = math.Ceil(maxV/step) * step
	if math.IsInf(top, 0) || math.IsNaN(top) || top/step > 10 {
		// Values near the float64 limit: no round axis end exists, so
		// scale to the data and draw five plain ticks.
		return maxV / 5, maxV
	}
	return step, top
}

// contrastText returns black or white, whichever reads better on bg
// (relative luminance threshold as in WCAG).
func contrastText(bg rgb) rgb {
	lum := 0.2126*linear(bg.r) + 0.7152*linear(bg.g) + 0.0722*linear(bg.b)
	if lum > 0.179 {
		return rgb{0, 0, 0}
	}
	return rgb{255, 255, 255}
}

func linear(c int) float64 {
	v := float64(c) / 255
	if v <= 0.04045 {
		return v / 12.92
	}
	return math.Pow((v+0.04045)/1.055, 2.4)
}
