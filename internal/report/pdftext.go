package report

import (
	"strings"

	"github.com/go-pdf/fpdf"
)

// rgb is a colour for fpdf's integer colour setters.
type rgb struct{ r, g, b int }

// palette is Okabe & Ito's colour-blind-safe set (Color Universal Design),
// in an order where neighbours contrast strongly. Black is left out: it is
// the text colour.
//
// The first three run blue, orange, vermillion, so series ordered from best
// to worst state (compliant, warning, failing) read naturally.
var palette = []rgb{
	{0, 114, 178},   // blue
	{230, 159, 0},   // orange
	{213, 94, 0},    // vermillion
	{86, 180, 233},  // sky blue
	{0, 158, 115},   // bluish green
	{204, 121, 167}, // reddish purple
	{240, 228, 66},  // yellow
	{102, 102, 102}, // grey stands in for black
}

// Neutral colours of the layout.
var (
	colText    = rgb{33, 33, 33}
	colMuted   = rgb{100, 100, 100}
	colRule    = rgb{190, 190, 190}
	colGrid    = rgb{225, 225, 225}
	colHeader  = rgb{235, 238, 242}
	colZebra   = rgb{247, 247, 247}
	colTileBox = rgb{245, 247, 250}
)

// Status marks differ in shape as well as colour (Okabe-Ito green, orange,
// vermillion) and carry a word, so they survive colour blindness and
// black-and-white printing.
var statusStyle = map[string]struct {
	colour rgb
	word   string
}{
	StatusOK:      {rgb{0, 158, 115}, "OK"},
	StatusWarning: {rgb{230, 159, 0}, "Warning"},
	StatusFailing: {rgb{213, 94, 0}, "Failing"},
}

// ellipsis is U+2026 in Windows-1252, the encoding of fpdf's core fonts.
const ellipsis = "\x85"

// textEncoder turns UTF-8 into the Windows-1252 bytes fpdf's core fonts
// draw. Characters the code page lacks become '?', control characters
// become spaces, so foreign scripts, emoji and broken UTF-8 degrade visibly
// instead of failing the report.
type textEncoder struct {
	toCP1252 func(string) string
}

func newTextEncoder(pdf *fpdf.Fpdf) textEncoder {
	return textEncoder{toCP1252: pdf.UnicodeTranslatorFromDescriptor("cp1252")}
}

// encode returns s in Windows-1252. fpdf's translator writes exactly one
// byte per rune and '.' for runes it cannot map; those are rewritten to '?'
// by walking the input runes alongside the output bytes.
func (e textEncoder) encode(s string) string {
	if s == "" {
		return s
	}
	out := []byte(e.toCP1252(s))
	i := 0
	for _, r := range s {
		if i >= len(out) {
			break
		}
		switch {
		case r < 0x20 || r == 0x7f:
			out[i] = ' '
		case out[i] == '.' && r != '.':
			out[i] = '?'
		}
		i++
	}
	return string(out)
}

// fit shortens encoded text s so it is at most width wide in the current
// font, ending it with an ellipsis when anything was cut.
func fit(pdf *fpdf.Fpdf, s string, width float64) string {
	if pdf.GetStringWidth(s) <= width {
		return s
	}
	return truncate(pdf, s, width)
}

// truncate returns the longest prefix of encoded text s that fits width
// together with an ellipsis, plus the ellipsis.
func truncate(pdf *fpdf.Fpdf, s string, width float64) string {
	// Binary search for the longest prefix that fits with the ellipsis.
	// Encoded text is one byte per character, so any byte index is a
	// character boundary.
	lo, hi := 0, len(s)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if pdf.GetStringWidth(s[:mid]+ellipsis) <= width {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return strings.TrimRight(s[:lo], " ") + ellipsis
}

// wrap breaks encoded text s into lines at most width wide in the current
// font, at spaces where possible. It always returns at least one line.
// fpdf's SplitText is not usable here: it decodes its input as UTF-8 and
// panics on Windows-1252 bytes above 0x7f.
func wrap(pdf *fpdf.Fpdf, s string, width float64) []string {
	// SplitLines subtracts the cell margin on both sides; add it back so
	// width means the text width.
	raw := pdf.SplitLines([]byte(s), width+2*pdf.GetCellMargin())
	if len(raw) == 0 {
		return []string{""}
	}
	lines := make([]string, len(raw))
	for i, l := range raw {
		lines[i] = string(l)
	}
	return lines
}

// wrapMax is wrap limited to maxLines; when text is left over, the last
// line ends in an ellipsis. It bounds the space any one text can take.
func wrapMax(pdf *fpdf.Fpdf, s string, width float64, maxLines int) []string {
	lines := wrap(pdf, s, width)
	if len(lines) <= maxLines {
		return lines
	}
	lines = lines[:maxLines]
	lines[maxLines-1] = truncate(pdf, lines[maxLines-1]+" ", width)
	return lines
}

func setFill(pdf *fpdf.Fpdf, c rgb) { pdf.SetFillColor(c.r, c.g, c.b) }
func setDraw(pdf *fpdf.Fpdf, c rgb) { pdf.SetDrawColor(c.r, c.g, c.b) }
func setText(pdf *fpdf.Fpdf, c rgb) { pdf.SetTextColor(c.r, c.g, c.b) }

// drawStatusMark draws the status symbol centred at (x, y) with size d:
// a disc for ok, a triangle for warning, a square for failing.
func drawStatusMark(pdf *fpdf.Fpdf, status string, x, y, d float64) {
	st, ok := statusStyle[status]
	if !ok {
		return
	}
	setFill(pdf, st.colour)
	switch status {
	case StatusOK:
		pdf.Circle(x, y, d/2, "F")
	case StatusWarning:
		pdf.Polygon([]fpdf.PointType{{X: x, Y: y - d/2}, {X: x + d/2, Y: y + d/2}, {X: x - d/2, Y: y + d/2}}, "F")
	case StatusFailing:
		pdf.Rect(x-d/2*0.9, y-d/2*0.9, d*0.9, d*0.9, "F")
	}
}
