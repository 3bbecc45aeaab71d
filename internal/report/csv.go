package report

import (
	"encoding/csv"
	"io"
	"strings"
)

// utf8BOM starts every CSV. Auditors open these files in spreadsheet
// programs, and Excel reads a CSV without a BOM in the legacy ANSI code page,
// which garbles every non-ASCII device or user name. Programmatic consumers
// should use the JSON export, whose encoding is unambiguous.
const utf8BOM = "\ufeff"

// CSV column titles appended after the report's own columns.
const (
	csvControlsTitle = "controls"
	csvStatusTitle   = "status"
)

// WriteCSV writes r's table as RFC 4180 CSV with CRLF line ends, preceded by
// a UTF-8 byte order mark (see utf8BOM for why). The header row holds the
// column titles followed by "controls" (the row's control IDs joined by
// "; ") and "status". Any field that a spreadsheet would read as a formula,
// one starting with = + - @ tab or carriage return, gets a leading apostrophe
// so that opening the file cannot run attacker-supplied formulas (device
// names and app names come from devices).
//
// It returns an error wrapping ErrInvalid, before writing anything, when r
// fails Validate, and otherwise only errors from w.
func WriteCSV(w io.Writer, r *Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if _, err := io.WriteString(w, utf8BOM); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	record := make([]string, 0, len(r.Columns)+2)
	for _, c := range r.Columns {
		record = append(record, neutralizeFormula(c.Title))
	}
	record = append(record, csvControlsTitle, csvStatusTitle)
	if err := cw.Write(record); err != nil {
		return err
	}
	for _, row := range r.Rows {
		record = record[:0]
		for _, cell := range row.Cells {
			record = append(record, neutralizeFormula(cell))
		}
		record = append(record, neutralizeFormula(strings.Join(row.Controls, "; ")), row.Status)
		if err := cw.Write(record); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// neutralizeFormula prefixes s with an apostrophe when a spreadsheet would
// treat it as a formula. The apostrophe is the spreadsheet convention for
// "this is text" and is hidden in the cell display. Negative numbers get it
// too: telling "-1" from "-1+cmd|..." safely is not worth the risk.
func neutralizeFormula(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
