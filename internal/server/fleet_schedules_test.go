package server

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/notify/mail"
	"github.com/steward-mdm/steward/internal/notify/mail/mailtest"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestScheduledReports: a weekly report goes by e-mail to an auditor as a
// link; the archive behind it opens with the schedule's password in a
// stock tool, and the link stops working when it expires.
func TestScheduledReports(t *testing.T) {
	sevenZip, err := exec.LookPath("7z")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("7z not found; CI installs p7zip-full")
		}
		t.Skip("7z not found (apt-get install p7zip-full)")
	}
	f := newFleet(t, storetest.OpenSQLite(t))
	in := compliance.ScheduleInput{Kind: "inventory", Format: "csv", Every: "weekly"}
	auditorID, auditor := f.admin("auditor@fleet.test", "auditor")
	in.Recipients = []string{auditorID}
	if r := f.do(f.owner, "POST", f.path("/report-schedules"), in); r.status != 409 {
		t.Fatalf("a schedule without SMTP: %d %s", r.status, r.body)
	}
	smtpd := mailtest.Start(t)
	mailer, err := mail.New(smtpd.Config())
	if err != nil {
		t.Fatal(err)
	}
	f.app.Compliance.SetMailer(mailer, f.app.MDM.PublicURL)
	_, deviceID := f.enrol("corporate", "", "", nil)

	if r := f.do(f.owner, "POST", f.path("/report-schedules"), compliance.ScheduleInput{Kind: "inventory", Format: "csv", Every: "weekly",
		Recipients: []string{"00000000-0000-0000-0000-000000000000"}}); r.status != 400 {
		t.Errorf("an unknown recipient: %d", r.status)
	}
	// Reading reports is not enough to mail them or to stop someone else's mailing.
	if r := f.do(auditor, "POST", f.path("/report-schedules"), in); r.status != 403 {
		t.Errorf("an auditor scheduled a report: %d %s", r.status, r.body)
	}
	var created api.NewScheduleView
	f.must(201, f.owner, "POST", f.path("/report-schedules"), in, &created)
	if r := f.do(auditor, "DELETE", f.path("/report-schedules/"+created.Schedule.ID), nil); r.status != 403 {
		t.Errorf("an auditor stopped a schedule: %d %s", r.status, r.body)
	}
	if len(created.Password) < 16 {
		t.Fatalf("password: %q", created.Password)
	}
	if n, err := f.app.Compliance.RunDueSchedules(f.ctx); err != nil || n != 1 {
		t.Fatalf("run: %d %v", n, err)
	}
	if n, _ := f.app.Compliance.RunDueSchedules(f.ctx); n != 0 {
		t.Errorf("ran again before its time: %d", n)
	}
	msgs := smtpd.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "auditor@fleet.test" {
		t.Fatalf("mails: %+v", msgs)
	}
	parsed, err := netmail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(parsed.Body))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), created.Password) {
		t.Fatal("the mail carries the archive password")
	}
	link := regexp.MustCompile(`/api/v1/published-reports/srl_[A-Za-z0-9]+`).FindString(string(body))
	if link == "" {
		t.Fatalf("no link in the mail:\n%s", msgs[0].Data)
	}
	r := f.do("", "GET", link, nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/zip" {
		t.Fatalf("download: %d %s", r.status, r.body)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "report.zip")
	if err := os.WriteFile(archive, r.body, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sevenZip, "x", "-p"+created.Password, "-o"+dir, archive).CombinedOutput(); err != nil {
		t.Fatalf("7z x: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "steward-inventory-*.csv"))
	if len(files) != 1 {
		t.Fatalf("archive contents: %v", files)
	}
	if csv, _ := os.ReadFile(files[0]); !strings.Contains(string(csv), deviceID) {
		t.Error("the report misses the device")
	}
	if out, err := exec.Command(sevenZip, "t", "-pwrong-password-123", archive).CombinedOutput(); err == nil {
		t.Errorf("the archive opened with a wrong password:\n%s", out)
	}
	f.app.Compliance.SetClock(func() time.Time { return time.Now().Add(8 * 24 * time.Hour) })
	if r := f.do("", "GET", link, nil); r.status != 410 {
		t.Errorf("an expired link: %d", r.status)
	}
	if r := f.do("", "GET", "/api/v1/published-reports/srl_nonsense", nil); r.status != 404 {
		t.Errorf("a made-up link: %d", r.status)
	}
	// The auditor loses their role: the next run mails them nothing.
	var asgs api.List[api.AssignmentView]
	f.must(200, f.owner, "GET", f.path("/assignments"), nil, &asgs)
	for _, a := range asgs.Items {
		if a.AdminID == auditorID {
			f.must(204, f.owner, "DELETE", f.path("/assignments/"+a.ID), nil, nil)
		}
	}
	if n, err := f.app.Compliance.RunDueSchedules(f.ctx); err != nil || n != 1 {
		t.Fatalf("second run: %d %v", n, err)
	}
	if msgs := smtpd.Messages(); len(msgs) != 1 {
		t.Errorf("a former auditor still gets reports: %d mails", len(msgs))
	}
}
