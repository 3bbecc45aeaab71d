package compliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/notify/mail"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/securezip"
	"github.com/steward-mdm/steward/internal/report"
	"github.com/steward-mdm/steward/internal/store"
)

// ScheduleInput asks for a report to be mailed at a cadence.
type ScheduleInput struct {
	Kind   string `json:"kind"`
	Format string `json:"format"` // pdf, csv or json
	// Recipients are admin IDs: the report goes to their account e-mail.
	Recipients []string `json:"recipients"`
	Every      string   `json:"every"` // daily, weekly or monthly
	// LinkDays is how long the published link works (1 to 30; default 7).
	LinkDays int `json:"link_days,omitempty"`
}

var cadences = []string{"daily", "weekly", "monthly"}

// Writers renders a report in one of the formats.
var Writers = map[string]func(*bytes.Buffer, *report.Report) error{
	"json": func(b *bytes.Buffer, r *report.Report) error { return report.WriteJSON(b, r) },
	"csv":  func(b *bytes.Buffer, r *report.Report) error { return report.WriteCSV(b, r) },
	"pdf":  func(b *bytes.Buffer, r *report.Report) error { return report.WritePDF(b, r) },
}

func next(every string, after, now time.Time) time.Time {
	t := after
	for !t.After(now) {
		switch every {
		case "daily":
			t = t.AddDate(0, 0, 1)
		case "weekly":
			t = t.AddDate(0, 0, 7)
		default:
			t = t.AddDate(0, 1, 0)
		}
	}
	return t
}

func scheduleAD(tenantID, id string) []byte { return []byte("report-schedule:" + tenantID + ":" + id) }

// SetMailer enables scheduled reports (they need SMTP); publicURL gives
// the address published links start with.
func (e *Engine) SetMailer(m privacy.Mailer, publicURL func() string) {
	e.mailer, e.publicURL = m, publicURL
}

// SetRecipientCheck tells the engine who may still read a tenant's
// reports: a recipient who lost the right since the schedule was made
// gets no more links.
func (e *Engine) SetRecipientCheck(may func(ctx context.Context, tenantID, adminID string) (bool, error)) {
	e.mayReadReports = may
}

// CreateSchedule stores a schedule and returns the archive password,
// shown this once: the mails carry only a link, so whoever reads a
// recipient's mailbox still cannot open the report. Recipients must be
// admins allowed to read reports on the tenant (checked by the caller).
func (e *Engine) CreateSchedule(ctx context.Context, tenantID string, in ScheduleInput, actor iam.Actor) (store.ReportSchedule, string, error) {
	if e.mailer == nil {
		return store.ReportSchedule{}, "", apperr.Conflict("scheduled reports go out by e-mail: configure SMTP (--smtp-host) first")
	}
	if !slices.ContainsFunc(ReportKinds, func(k struct{ Kind, Title, Purpose string }) bool { return k.Kind == in.Kind }) {
		return store.ReportSchedule{}, "", apperr.Invalid("unknown report kind %q", in.Kind)
	}
	if Writers[in.Format] == nil {
		return store.ReportSchedule{}, "", apperr.Invalid("format must be pdf, csv or json")
	}
	if !slices.Contains(cadences, in.Every) {
		return store.ReportSchedule{}, "", apperr.Invalid("every must be daily, weekly or monthly")
	}
	if in.LinkDays == 0 {
		in.LinkDays = 7
	}
	if in.LinkDays < 1 || in.LinkDays > 30 {
		return store.ReportSchedule{}, "", apperr.Invalid("link_days must be between 1 and 30")
	}
	if len(in.Recipients) == 0 || len(in.Recipients) > 20 {
		return store.ReportSchedule{}, "", apperr.Invalid("name 1 to 20 recipients (admin IDs)")
	}
	password := securezip.GeneratePassword()
	now := e.clock()
	s := store.ReportSchedule{ID: store.NewID(), TenantID: tenantID, Kind: in.Kind, Format: in.Format, Recipients: in.Recipients,
		Every: in.Every, LinkDays: in.LinkDays, NextRunAt: now, CreatedBy: actor.Ref(), CreatedAt: now}
	var err error
	if s.PasswordSealed, err = e.sealer.Seal([]byte(password), scheduleAD(tenantID, s.ID)); err != nil {
		return store.ReportSchedule{}, "", err
	}
	err = e.st.Tx(ctx, func(q store.Queries) error {
		if err := q.Reports().CreateSchedule(ctx, s); err != nil {
			return err
		}
		rec := actor.Entry(tenantID, "report.schedule.create", "report_schedule", s.ID, audit.OutcomeSuccess)
		rec.Details = map[string]any{"kind": s.Kind, "format": s.Format, "every": s.Every, "recipients": s.Recipients}
		return audit.Append(ctx, q, rec)
	})
	return s, password, err
}

// RunDueSchedules builds, publishes and mails every due report; a run that
// fails is retried at the next pass (the schedule is advanced only after
// its mails went out).
func (e *Engine) RunDueSchedules(ctx context.Context) (int, error) {
	if e.mailer == nil {
		return 0, nil
	}
	due, err := e.st.Read().Reports().DueSchedules(ctx, e.clock(), 20)
	if err != nil {
		return 0, err
	}
	ran := 0
	for _, s := range due {
		if err := e.runSchedule(ctx, s); err != nil {
			e.log.Warn("a scheduled report failed", "tenant", s.TenantID, "schedule", s.ID, "error", err.Error())
			continue
		}
		ran++
	}
	return ran, nil
}

func (e *Engine) runSchedule(ctx context.Context, s store.ReportSchedule) error {
	q := e.st.Read()
	tenant, err := q.Tenants().Get(ctx, s.TenantID)
	if err != nil {
		return err
	}
	r, err := e.BuildReport(ctx, s.TenantID, tenant.Name, s.Kind)
	if err != nil {
		return err
	}
	var file bytes.Buffer
	if err := Writers[s.Format](&file, r); err != nil {
		return err
	}
	password, err := e.sealer.Open(s.PasswordSealed, scheduleAD(s.TenantID, s.ID))
	if err != nil {
		return err
	}
	var archive bytes.Buffer
	zw, err := securezip.NewWriter(&archive, string(password))
	if err != nil {
		return err
	}
	name := fmt.Sprintf("steward-%s-%s.%s", s.Kind, r.GeneratedAt.Format("20060102"), s.Format)
	w, err := zw.Create(name, r.GeneratedAt)
	if err != nil {
		return err
	}
	if _, err := w.Write(file.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	token, hash, err := credential.New(credential.ReportLink)
	if err != nil {
		return err
	}
	now := e.clock()
	p := store.PublishedReport{ID: store.NewID(), TenantID: s.TenantID, ScheduleID: s.ID, TokenHash: hash, Archive: archive.Bytes(),
		ExpiresAt: now.AddDate(0, 0, s.LinkDays), CreatedAt: now}
	var to []string
	for _, id := range s.Recipients {
		a, err := q.Admins().GetByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && a.Disabled) {
			continue // left or disabled since: they get nothing
		}
		if err != nil {
			return err
		}
		if e.mayReadReports != nil {
			if ok, err := e.mayReadReports(ctx, s.TenantID, id); err != nil {
				return err
			} else if !ok {
				continue
			}
		}
		to = append(to, a.Email)
	}
	err = e.st.Tx(ctx, func(q store.Queries) error {
		if err := q.Reports().Publish(ctx, p); err != nil {
			return err
		}
		rec := ladderActor.Entry(s.TenantID, "report.publish", "report_schedule", s.ID, audit.OutcomeSuccess)
		rec.Details = map[string]any{"kind": s.Kind, "rows": len(r.Rows), "recipients": len(to), "expires_at": p.ExpiresAt}
		return audit.Append(ctx, q, rec)
	})
	if err != nil {
		return err
	}
	if len(to) > 0 {
		body := fmt.Sprintf("The %s report of %s is ready:\n\n  %s/api/v1/published-reports/%s\n\n"+
			"The link works until %s. The archive is protected by the password shown when the schedule was created;\n"+
			"ask the admin who set it up if you do not have it.\n", r.Title, tenant.Name, e.publicURL(), token,
			p.ExpiresAt.Format("2 January 2006 15:04 MST"))
		if err := e.mailer.Send(ctx, mail.Message{To: to, Subject: "Steward report: " + r.Title, Text: body}); err != nil {
			return err
		}
	}
	return e.st.Tx(ctx, func(q store.Queries) error {
		return q.Reports().MarkRun(ctx, s.TenantID, s.ID, now, next(s.Every, s.NextRunAt, now))
	})
}

// PublishedArchive returns a published report's archive for its link;
// expired links answer 410 Gone, unknown ones 404.
func (e *Engine) PublishedArchive(ctx context.Context, token string) (store.PublishedReport, error) {
	kind, hash, err := credential.Parse(token)
	if err != nil || kind != credential.ReportLink {
		return store.PublishedReport{}, apperr.NotFound("report")
	}
	p, err := e.st.Read().Reports().PublishedByToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return p, apperr.NotFound("report")
	}
	if err != nil {
		return p, err
	}
	if !e.clock().Before(p.ExpiresAt) {
		return p, apperr.New(apperr.KindGone, "this report link expired on %s", p.ExpiresAt.Format(time.RFC3339))
	}
	return p, nil
}
