package api

import (
	"bytes"
	"fmt"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/report"
	"github.com/steward-mdm/steward/internal/store"
)

const tagReports = "Reports"

func (s *Server) reportRoutes() []Route {
	const t = "/api/v1/tenants/{tenant}"
	return []Route{
		{Method: "GET", Path: t + "/reports", Access: needs("report.read"), Tag: tagReports, Summary: "The reports Steward builds and the controls they evidence", Out: List[ReportKindView]{}, Handle: s.listReports},
		{Method: "GET", Path: t + "/reports/{kind}", Access: needs("report.read"), Tag: tagReports, Summary: "Build a report now: compliance, inventory, software, encryption or stale; as JSON, CSV or PDF with charts",
			Query: []QueryParam{{Name: "format", Type: "string", Description: "json (default), csv or pdf"}}, Out: "", Produces: "application/pdf", Handle: s.getReport},
	}
}

type ReportKindView struct {
	Kind    string `json:"kind"`
	Title   string `json:"title"`
	Purpose string `json:"purpose"`
}

func (s *Server) listReports(c *Call) (any, error) {
	out := List[ReportKindView]{Items: []ReportKindView{}}
	for _, k := range compliance.ReportKinds {
		out.Items = append(out.Items, ReportKindView{Kind: k.Kind, Title: k.Title, Purpose: k.Purpose})
	}
	return out, nil
}

var reportFormats = map[string]struct {
	contentType string
	write       func(*bytes.Buffer, *report.Report) error
}{
	"json": {"application/json", func(b *bytes.Buffer, r *report.Report) error { return report.WriteJSON(b, r) }},
	"csv":  {"text/csv; charset=utf-8", func(b *bytes.Buffer, r *report.Report) error { return report.WriteCSV(b, r) }},
	"pdf":  {"application/pdf", func(b *bytes.Buffer, r *report.Report) error { return report.WritePDF(b, r) }},
}

// getReport builds the report in memory first, so a failure is a clean
// error and not a truncated file; taking it away is audited.
func (s *Server) getReport(c *Call) (any, error) {
	e, err := s.complianceSvc()
	if err != nil {
		return nil, err
	}
	format := c.Query("format")
	if format == "" {
		format = "json"
	}
	f, ok := reportFormats[format]
	if !ok {
		return nil, apperr.Invalid("format must be json, csv or pdf").With("field", "format")
	}
	tenant, err := s.st.Read().Tenants().Get(c.R.Context(), c.Tenant)
	if err != nil {
		return nil, err
	}
	kind := c.Path("kind")
	r, err := e.BuildReport(c.R.Context(), c.Tenant, tenant.Name, kind)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := f.write(&buf, r); err != nil {
		return nil, err
	}
	err = s.st.Tx(c.R.Context(), func(q store.Queries) error {
		rec := c.Actor.Entry(c.Tenant, "report.export", "report", kind, audit.OutcomeSuccess)
		rec.Details = map[string]any{"format": format, "rows": len(r.Rows)}
		return audit.Append(c.R.Context(), q, rec)
	})
	if err != nil {
		return nil, err
	}
	c.W.Header().Set("Content-Type", f.contentType)
	c.W.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"steward-%s-%s.%s\"", kind, r.GeneratedAt.Format("20060102"), format))
	c.W.Header().Set("Cache-Control", "no-store")
	_, _ = c.W.Write(buf.Bytes())
	return streamed, nil
}
