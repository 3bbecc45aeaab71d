package api

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

const tagReports = "Reports"

func (s *Server) reportRoutes() []Route {
	const t = "/api/v1/tenants/{tenant}"
	return []Route{
		{Method: "GET", Path: t + "/reports", Access: needs("report.read"), Tag: tagReports, Summary: "The reports Steward builds and the controls they evidence", Out: List[ReportKindView]{}, Handle: s.listReports},
		{Method: "GET", Path: t + "/reports/{kind}", Access: needs("report.read"), Tag: tagReports, Summary: "Build a report now: compliance, inventory, software, encryption or stale; as JSON, CSV or PDF with charts",
			Query: []QueryParam{{Name: "format", Type: "string", Description: "json (default), csv or pdf"}}, Out: "", Produces: "application/pdf", Handle: s.getReport},
		{Method: "POST", Path: t + "/report-schedules", Access: needs("report.schedule"), Tag: tagReports, Summary: "Mail a report to admins daily, weekly or monthly, as a password-protected archive behind an expiring link; the password is shown once", In: compliance.ScheduleInput{}, Out: NewScheduleView{}, Status: http.StatusCreated, Handle: s.createSchedule},
		{Method: "GET", Path: t + "/report-schedules", Access: needs("report.read"), Tag: tagReports, Summary: "List report schedules", Query: pageQuery, Out: List[ScheduleView]{}, Handle: s.listSchedules},
		{Method: "DELETE", Path: t + "/report-schedules/{schedule}", Access: needs("report.schedule"), Tag: tagReports, Summary: "Stop a report schedule", Handle: s.deleteSchedule},
		{Method: "GET", Path: "/api/v1/published-reports/{link}", Access: public(), Tag: tagReports, Summary: "Download a published report archive until its link expires (410 after)", Out: "", Produces: "application/zip", Handle: s.publishedReport},
	}
}

type ScheduleView struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Format     string     `json:"format"`
	Recipients []string   `json:"recipients"`
	Every      string     `json:"every"`
	LinkDays   int        `json:"link_days"`
	NextRunAt  time.Time  `json:"next_run_at"`
	LastRunAt  *time.Time `json:"last_run_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
}

func scheduleView(s store.ReportSchedule) ScheduleView {
	return ScheduleView{ID: s.ID, Kind: s.Kind, Format: s.Format, Recipients: s.Recipients, Every: s.Every, LinkDays: s.LinkDays,
		NextRunAt: s.NextRunAt, LastRunAt: optTime(s.LastRunAt), CreatedAt: s.CreatedAt}
}

type NewScheduleView struct {
	Schedule ScheduleView `json:"schedule"`
	// Password opens every archive of this schedule. It is shown once:
	// give it to the recipients by another channel than e-mail.
	Password string `json:"password"`
}

// createSchedule checks every recipient may read this tenant's reports:
// the schedule must not mail a report to someone who could not fetch it.
func (s *Server) createSchedule(c *Call) (any, error) {
	e, err := s.complianceSvc()
	if err != nil {
		return nil, err
	}
	var in compliance.ScheduleInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	for _, id := range in.Recipients {
		perms, err := s.iam.Permissions(c.R.Context(), &iam.Principal{Type: store.ActorAdmin, AdminID: id}, c.Tenant)
		if err != nil {
			return nil, err
		}
		if !perms.Has("report.read") {
			return nil, apperr.Invalid("recipient %s is not an admin who may read this tenant's reports", id).With("field", "recipients")
		}
	}
	sched, password, err := e.CreateSchedule(c.R.Context(), c.Tenant, in, c.Actor)
	if err != nil {
		return nil, err
	}
	c.W.Header().Set("Cache-Control", "no-store")
	return NewScheduleView{Schedule: scheduleView(sched), Password: password}, nil
}

func (s *Server) listSchedules(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	ss, err := s.st.Read().Reports().ListSchedules(c.R.Context(), c.Tenant, page)
	if err != nil {
		return nil, err
	}
	return listOf(ss, page.Limit, scheduleView, func(s store.ReportSchedule) string { return s.ID }), nil
}

func (s *Server) deleteSchedule(c *Call) (any, error) {
	return nil, s.st.Tx(c.R.Context(), func(q store.Queries) error {
		if err := q.Reports().DeleteSchedule(c.R.Context(), c.Tenant, c.Path("schedule")); err != nil {
			return notFoundAs(err, "report schedule")
		}
		return audit.Append(c.R.Context(), q, c.Actor.Entry(c.Tenant, "report.schedule.delete", "report_schedule", c.Path("schedule"), audit.OutcomeSuccess))
	})
}

// publishedReport serves an archive to whoever holds its link: the link is
// the credential (long, random, stored hashed) and the archive needs the
// schedule's password besides. Each download is audited.
func (s *Server) publishedReport(c *Call) (any, error) {
	e, err := s.complianceSvc()
	if err != nil {
		return nil, err
	}
	p, err := e.PublishedArchive(c.R.Context(), c.Path("link"))
	if err != nil {
		return nil, err
	}
	err = s.st.Tx(c.R.Context(), func(q store.Queries) error {
		return audit.Append(c.R.Context(), q, c.Actor.Entry(p.TenantID, "report.download", "published_report", p.ID, audit.OutcomeSuccess))
	})
	if err != nil {
		return nil, err
	}
	c.W.Header().Set("Content-Type", "application/zip")
	c.W.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"steward-report-%s.zip\"", p.CreatedAt.Format("20060102")))
	c.W.Header().Set("Cache-Control", "no-store")
	_, _ = c.W.Write(p.Archive)
	return streamed, nil
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

var reportTypes = map[string]string{"json": "application/json", "csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}

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
	contentType, ok := reportTypes[format]
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
	if err := compliance.Writers[format](&buf, r); err != nil {
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
	c.W.Header().Set("Content-Type", contentType)
	c.W.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"steward-%s-%s.%s\"", kind, r.GeneratedAt.Format("20060102"), format))
	c.W.Header().Set("Cache-Control", "no-store")
	_, _ = c.W.Write(buf.Bytes())
	return streamed, nil
}
