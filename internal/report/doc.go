// Package report turns compliance evidence into documents an auditor can
// file: a compliance overview, device inventory (CIS Controls v8 Control 1),
// software inventory (CIS Control 2), encryption and passcode status
// (ISO/IEC 27001:2022 A.8.1) and stale devices.
//
// Queries elsewhere build a Report; this package only validates and renders
// it, in three formats from the same value:
//
//   - WriteJSON for machines: a documented, versioned shape (JSONSchema).
//   - WriteCSV for spreadsheets: UTF-8 with a byte order mark, with
//     formula injection neutralised.
//   - WritePDF for people: A4 with summary tiles, charts drawn with fpdf
//     primitives in a colour-blind-safe palette, the framework controls, and
//     the table with its header on every page.
//
// Reports carry device and user data. Nothing here logs, and errors name
// the offending part of a report (row index, column key) but never a value.
package report
