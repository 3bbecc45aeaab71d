package mdm_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

const revokedWords = "revoked by your organisation"

// TestRevokedLinkIsRefused: a link revoked before anyone opened it is
// refused, in words saying so, by the invitation, its acceptance and the
// profile download; nobody's consent is recorded and no device enrols. The
// revocation is audited once: revoking again returns it unchanged.
func TestRevokedLinkIsRefused(t *testing.T) {
	storetest.ForEachEngine(t, testRevokedLinkIsRefused)
}

func testRevokedLinkIsRefused(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Personal)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	link := f.invite(privacy.Personal, erika)
	e := f.enrolmentOf(link)
	inv, err := f.svc.Invitation(f.ctx, path.Base(link), "en")
	if err != nil {
		t.Fatalf("the invitation before revoking: %v", err)
	}

	revoked, err := f.svc.RevokeEnrolment(f.ctx, f.tenant, e.ID, admin)
	if err != nil {
		t.Fatal(err)
	}
	if revoked.ID != e.ID || revoked.State != store.EnrolmentRevoked || f.enrolmentOf(link).State != store.EnrolmentRevoked {
		t.Fatalf("revoked: %+v; stored as %s", revoked, f.enrolmentOf(link).State)
	}

	wantRevokedPage(t, "the invitation", get(t, ts, link))
	accept := url.Values{"language": {"en"}, "notice_version": {strconv.FormatInt(inv.Notice.Version, 10)}}
	wantRevokedPage(t, "accepting the notice", postForm(t, ts, link, accept))
	wantRevokedPage(t, "the profile", get(t, ts, link+"/profile"))
	if _, err := f.svc.Accept(f.ctx, path.Base(link), mdm.AcceptInput{Language: "en", NoticeVersion: inv.Notice.Version}, "192.0.2.1"); !isRevoked(err) {
		t.Errorf("accepting by the service: %v; want the revocation", err)
	}
	if cs, err := f.priv.Consents(f.ctx, f.tenant, erika); err != nil || len(cs.Consents) != 0 {
		t.Errorf("consents recorded through a revoked link: %+v, %v", cs.Consents, err)
	}
	if err := personalPhone(t, ts).Enrol(f.ctx, link, false); err == nil {
		t.Error("a device enrolled with a revoked link")
	}
	if n := len(f.devices()); n != 0 {
		t.Errorf("%d devices registered through a revoked link", n)
	}

	again, err := f.svc.RevokeEnrolment(f.ctx, f.tenant, e.ID, admin)
	if err != nil || again.State != store.EnrolmentRevoked {
		t.Errorf("revoking again: %+v, %v; want the revoked enrolment", again, err)
	}
	entries := f.revocations(e.ID)
	if len(entries) != 1 || entries[0].ActorType != admin.Type || entries[0].ActorID != admin.ID || entries[0].TargetType != "enrolment" ||
		!strings.Contains(string(entries[0].Details), `"previous_state":"open"`) {
		t.Errorf("revocations audited: %+v; want one, by the admin, from open", entries)
	}

	if _, err := f.svc.RevokeEnrolment(f.ctx, f.tenant, store.NewID(), admin); !apperr.IsKind(err, apperr.KindNotFound) {
		t.Errorf("revoking an unknown enrolment: %v; want not found", err)
	}
	if _, err := f.svc.RevokeEnrolment(f.ctx, store.NewID(), e.ID, admin); !apperr.IsKind(err, apperr.KindNotFound) {
		t.Errorf("revoking the enrolment through another tenant: %v; want not found", err)
	}
}

// TestRevokedAfterDownload: once the link is revoked, a profile downloaded
// before gets no certificate from SCEP, and a device that obtained its
// identity before cannot authenticate with it: no device is registered.
func TestRevokedAfterDownload(t *testing.T) {
	storetest.ForEachEngine(t, testRevokedAfterDownload)
}

func testRevokedAfterDownload(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Personal)
	var logged lockedLog
	f.log = slog.New(slog.NewTextHandler(&logged, nil))
	ts := f.serve()
	link := f.invite(privacy.Personal, f.subject("erika@acme.test"))
	downloaded, prepared := personalPhone(t, ts), personalPhone(t, ts)
	if err := downloaded.Install(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	if err := prepared.Prepare(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	e := f.enrolmentOf(link)
	if e.State != mdm.EnrolmentAccepted {
		t.Fatalf("the enrolment is %s before revoking; want accepted", e.State)
	}
	if _, err := f.svc.RevokeEnrolment(f.ctx, f.tenant, e.ID, admin); err != nil {
		t.Fatal(err)
	}

	// The device is told only that SCEP refused; the log says why.
	var refused *sim.RefusedError
	if err := downloaded.ObtainIdentity(f.ctx); !errors.As(err, &refused) || !strings.Contains(logged.String(), "the enrolment link was revoked") {
		t.Errorf("SCEP for a profile downloaded before the revocation: %v; want a refusal logged as the revocation:\n%s", err, logged.String())
	}
	// The device is told only 409; the service says why.
	auth, err := plist.Marshal(map[string]any{"MessageType": "Authenticate", "Topic": prepared.Topic(), "UDID": prepared.UDID,
		"ProductName": prepared.ProductName, "OSVersion": prepared.OSVersion, "BuildVersion": "22B83"}, plist.XMLFormat)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Checkin(f.ctx, prepared.Certificate(), auth); !isRevoked(err) {
		t.Errorf("Authenticate with an identity obtained before the revocation: %v; want the revocation", err)
	}
	if err := prepared.Authenticate(f.ctx); status(t, err) != http.StatusConflict {
		t.Errorf("Authenticate with an identity obtained before the revocation: %v; want 409", err)
	}
	if n := len(f.devices()); n != 0 {
		t.Fatalf("%d devices registered through a revoked link", n)
	}
	if entries := f.revocations(e.ID); len(entries) != 1 || !strings.Contains(string(entries[0].Details), `"previous_state":"accepted"`) {
		t.Errorf("revocations audited: %+v; want one, from accepted", entries)
	}
}

// TestRevokingAUsedLinkIsRefused: a link a device enrolled with is used up;
// revoking it is refused, pointing at the device, and changes nothing.
func TestRevokingAUsedLinkIsRefused(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	link := f.invite(privacy.Personal, f.subject("erika@acme.test"))
	d := personalPhone(t, ts)
	if err := d.Enrol(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	e := f.enrolmentOf(link)
	_, err := f.svc.RevokeEnrolment(f.ctx, f.tenant, e.ID, admin)
	if !apperr.IsKind(err, apperr.KindConflict) || !strings.Contains(err.Error(), "retire") || !strings.Contains(err.Error(), e.DeviceID) {
		t.Fatalf("revoking a used link: %v; want a conflict saying to retire device %s", err, e.DeviceID)
	}
	if got := f.enrolmentOf(link); got.State != store.EnrolmentUsed {
		t.Errorf("a refused revocation left the enrolment %s", got.State)
	}
	if got := f.deviceState(e.DeviceID); got != store.DeviceEnrolled {
		t.Errorf("a refused revocation left the device %s", got)
	}
	if entries := f.revocations(e.ID); len(entries) != 0 {
		t.Errorf("a refused revocation was audited: %+v", entries)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Errorf("the enrolled device after a refused revocation: %v", err)
	}
}

// TestRevokingAFailedInstallation: a link whose installation failed (the
// device authenticated, then went quiet) may be revoked. Its pending record
// is deprovisioned with it, so the identity that attempt obtained cannot
// finish enrolling; the link can no longer be tried again. While the
// attempt may still finish, revoking is refused.
func TestRevokingAFailedInstallation(t *testing.T) {
	storetest.ForEachEngine(t, testRevokingAFailedInstallation)
}

func testRevokingAFailedInstallation(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Personal)
	ts := f.serve()
	link := f.invite(privacy.Personal, f.subject("erika@acme.test"))
	failed := personalPhone(t, ts)
	if err := failed.Prepare(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	if err := failed.Authenticate(f.ctx); err != nil {
		t.Fatal(err)
	}
	e := f.enrolmentOf(link)
	if _, err := f.svc.RevokeEnrolment(f.ctx, f.tenant, e.ID, admin); !apperr.IsKind(err, apperr.KindConflict) ||
		!strings.Contains(err.Error(), "enrolling with this link right now") {
		t.Fatalf("revoking while the installation may still finish: %v; want a conflict", err)
	}
	retry := personalPhone(t, ts) // the link forwarded: its holder would try again
	f.svc.SetClock(func() time.Time { return time.Now().Add(3 * time.Minute) })
	if err := retry.Install(f.ctx, link, false); err != nil {
		t.Fatalf("the link after a failed installation does not offer the profile again: %v", err)
	}

	revoked, err := f.svc.RevokeEnrolment(f.ctx, f.tenant, e.ID, admin)
	if err != nil {
		t.Fatalf("revoking after a failed installation: %v", err)
	}
	if revoked.State != store.EnrolmentRevoked || revoked.DeviceID != e.DeviceID {
		t.Errorf("revoked: %+v", revoked)
	}
	if got := f.deviceState(e.DeviceID); got != store.DeviceDeprovisioned {
		t.Errorf("the failed attempt's record is %s; want deprovisioned", got)
	}
	if _, err := failed.Checkin(f.ctx, failed.TokenUpdate()); err == nil {
		t.Error("the failed attempt's identity finished enrolling after the revocation")
	}
	wantRevokedPage(t, "the invitation after a failed installation", get(t, ts, link))
	if err := retry.ObtainIdentity(f.ctx); err == nil {
		t.Error("SCEP issued a retry's identity after the revocation")
	}
	if got := f.deviceState(e.DeviceID); got != store.DeviceDeprovisioned {
		t.Errorf("the record is %s after the retry; want deprovisioned", got)
	}
	entries := f.revocations(e.ID)
	if len(entries) != 1 || !strings.Contains(string(entries[0].Details), `"deprovisioned_device":"`+e.DeviceID+`"`) {
		t.Errorf("revocations audited: %+v; want one naming the deprovisioned record", entries)
	}
}

// TestRevokedAccountCode: account-driven User Enrollment refuses a revoked
// link's code at sign-in, and its access token, in words saying so.
func TestRevokedAccountCode(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	ts := f.serve()
	link := f.invite(privacy.UserEnrolled, f.subject("erika@acme.test"))
	if _, err := f.svc.RevokeEnrolment(f.ctx, f.tenant, f.enrolmentOf(link).ID, admin); err != nil {
		t.Fatal(err)
	}
	signIn := postForm(t, ts, ts.URL+"/enrol/account/sign-in", url.Values{"code": {path.Base(link)}, "user-identifier": {"erika@acme.test"}})
	if signIn.status != http.StatusForbidden || !strings.Contains(signIn.body, revokedWords) {
		t.Errorf("signing in with a revoked code: %d %s; want 403 saying it was revoked", signIn.status, signIn.body)
	}
	wantRevokedPage(t, "the access token", postForm(t, ts, link+"/account-token", nil))
	phone, _ := sim.New(ts.Client(), true)
	phone.Personal = true
	if err := phone.EnrolByAccount(f.ctx, ts.URL, "erika@acme.test", path.Base(link)); err == nil {
		t.Error("a device enrolled by account with a revoked code")
	}
}

// lockedLog is a log the server's goroutines write to while the test reads it.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.String() }

type pageAnswer struct {
	status int
	body   string
}

func get(t *testing.T, ts *httptest.Server, u string) pageAnswer {
	t.Helper()
	resp, err := ts.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, resp)
}

func postForm(t *testing.T, ts *httptest.Server, u string, form url.Values) pageAnswer {
	t.Helper()
	resp, err := ts.Client().PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, resp)
}

func readAnswer(t *testing.T, resp *http.Response) pageAnswer {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return pageAnswer{status: resp.StatusCode, body: string(b)}
}

func wantRevokedPage(t *testing.T, what string, a pageAnswer) {
	t.Helper()
	if a.status != http.StatusConflict || !strings.Contains(a.body, revokedWords) {
		t.Errorf("%s: %d %q; want 409 saying the link was revoked", what, a.status, a.body)
	}
}

func isRevoked(err error) bool {
	return apperr.IsKind(err, apperr.KindConflict) && strings.Contains(err.Error(), revokedWords)
}

// enrolmentOf returns the enrolment a link opens.
func (f *fixture) enrolmentOf(link string) store.Enrolment {
	f.t.Helper()
	_, hash, err := credential.Parse(path.Base(link))
	if err != nil {
		f.t.Fatal(err)
	}
	e, err := f.st.Read().Enrolments().GetBySecretHash(f.ctx, hash)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// revocations returns the audit entries of enrolment id's revocation.
func (f *fixture) revocations(id string) []store.AuditEntry {
	f.t.Helper()
	entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "enrolment.revoke", TargetID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	return entries
}

// TestIdentityPastItsLinkIsRefused: an identity obtained with a link, first
// used after the link expired and its profile's window passed, is refused.
// A backup restored once the link's revocation was forgotten by the vault
// would otherwise let it enrol; within the window it enrols as usual.
func TestIdentityPastItsLinkIsRefused(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Personal)
		ts := f.serve()
		f.svc.SetClock(func() time.Time { return f.now })
		late, onTime := personalPhone(t, ts), personalPhone(t, ts)
		lateLink, onTimeLink := f.invite(privacy.Personal, f.subject("erika@acme.test")), f.invite(privacy.Personal, f.subject("max@acme.test"))
		for _, d := range []struct {
			phone *sim.Device
			link  string
		}{{late, lateLink}, {onTime, onTimeLink}} {
			if err := d.phone.Prepare(f.ctx, d.link, false); err != nil {
				t.Fatal(err)
			}
		}
		expires := f.enrolmentOf(lateLink).ExpiresAt
		f.now = expires.Add(time.Hour + 10*time.Minute)
		if err := onTime.Authenticate(f.ctx); err != nil {
			t.Fatalf("Authenticate within the profile's window: %v", err)
		}
		f.now = expires.Add(time.Hour + 15*time.Minute)
		if err := late.Authenticate(f.ctx); status(t, err) != http.StatusConflict {
			t.Errorf("Authenticate with an identity first used after its link's window: %v; want 409", err)
		}
		if got := f.enrolmentOf(lateLink); got.State != mdm.EnrolmentAccepted || len(f.devices()) != 1 {
			t.Errorf("a refused late Authenticate changed the enrolment (%s) or registered a device (%d devices)", got.State, len(f.devices()))
		}
	})
}
