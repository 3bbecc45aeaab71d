package mdm_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestAccountDrivenUserEnrollment: a personal device enrols the way
// current iOS does BYOD, from the work account typed in Settings: service
// discovery, the 401 that starts the web sign-in, the invitation's code and
// the notice, the access token, the profile, SCEP and check-in.
func TestAccountDrivenUserEnrollment(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	f.publish(privacy.Corporate)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	invite := func(o privacy.Ownership, subjectID string) string { return path.Base(f.invite(o, subjectID)) }
	code := invite(privacy.UserEnrolled, erika)
	refused := func(what string, err error) {
		t.Helper()
		var se *sim.StatusError
		if !errors.As(err, &se) || se.Status == http.StatusUnauthorized || se.Status < 400 {
			t.Errorf("%s: %v, want a refusal that is not a 401", what, err)
		}
	}

	other, _ := sim.New(ts.Client(), true)
	refused("another account's code", other.EnrolByAccount(f.ctx, ts.URL, "max@acme.test", code))
	corporate, _ := sim.New(ts.Client(), true)
	refused("a corporate enrolment's code", corporate.EnrolByAccount(f.ctx, ts.URL, "erika@acme.test", invite(privacy.Corporate, "")))

	// A request whose body is not the device's MachineInfo halts with a 400,
	// before any sign-in, and spends nothing: the phone below enrols with
	// the same code.
	for name, body := range map[string]string{"empty": "", "not a plist": "LANGUAGE=en", "an array": "<plist><array/></plist>"} {
		for _, token := range []string{"", code} {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/enrol/account", strings.NewReader(body))
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("enrolment request with %s body (token %t): HTTP %d, want 400", name, token != "", resp.StatusCode)
			}
		}
	}

	phone, _ := sim.New(ts.Client(), true)
	phone.Personal = true
	if err := phone.EnrolByAccount(f.ctx, ts.URL, "Erika@acme.test", code); err != nil {
		t.Fatalf("account-driven enrolment: %v", err)
	}
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(phone.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := f.st.Read().Devices().Get(f.ctx, f.tenant, ch.DeviceID)
	if dev.State != store.DeviceEnrolled || dev.SubjectID != erika || dev.Ownership != string(privacy.UserEnrolled) {
		t.Fatalf("the enrolled device: %+v", dev)
	}
	if _, err := phone.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	if len(phone.Withheld) > 0 {
		t.Errorf("a User Enrollment was asked for %v, which Apple keeps from the organisation", phone.Withheld)
	}
	for field := range f.fields(dev.ID) {
		if strings.HasPrefix(field, "device.") || strings.HasPrefix(field, "telephony.") {
			t.Errorf("a user enrollment stored %s", field)
		}
	}
	// The token dies with the enrolment it opened.
	again, _ := sim.New(ts.Client(), true)
	refused("a used code", again.EnrolByAccount(f.ctx, ts.URL, "erika@acme.test", code))

	// Accounts not federated with the directory: the person's Managed Apple
	// Account is not their e-mail. Only it signs in, and the profile names
	// it, as the device requires of the account it signed in with.
	max, err := f.priv.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "max@acme.test", ManagedAppleID: "Max@appleid.acme.test"}, admin)
	if err != nil {
		t.Fatal(err)
	}
	maxCode := invite(privacy.UserEnrolled, max.ID)
	byMail, _ := sim.New(ts.Client(), true)
	refused("the e-mail of a person with another Managed Apple Account", byMail.EnrolByAccount(f.ctx, ts.URL, "max@acme.test", maxCode))
	tablet, _ := sim.New(ts.Client(), true)
	tablet.Personal = true
	if err := tablet.EnrolByAccount(f.ctx, ts.URL, "max@appleid.acme.test", maxCode); err != nil {
		t.Fatalf("enrolment with the Managed Apple Account: %v", err)
	}
}

// TestBearerSchemeInAnyCase: authentication schemes do not depend on
// case (RFC 7235), so an enrolment request whose access token comes as
// "bearer" or "BEARER" gets its profile; another scheme gets the 401 that
// starts the sign-in.
func TestBearerSchemeInAnyCase(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	ts := f.serve()
	scheme := &schemeRewriter{next: ts.Client().Transport}
	ts.Client().Transport = scheme // the client every simulated device of ts uses
	for i, c := range []struct {
		scheme string
		status int
	}{{"bearer", http.StatusOK}, {"BEARER", http.StatusOK}, {"Basic", http.StatusUnauthorized}} {
		account := fmt.Sprintf("erika%d@acme.test", i)
		code := path.Base(f.invite(privacy.UserEnrolled, f.subject(account)))
		scheme.as = c.scheme
		phone, _ := sim.New(ts.Client(), true)
		if err := phone.EnrolByAccount(f.ctx, ts.URL, account, code); status(t, err) != c.status {
			t.Errorf("the access token sent as %q: %v; want %d", c.scheme, err, c.status)
		}
	}
}

// schemeRewriter sends the Authorization header's scheme as as.
type schemeRewriter struct {
	next http.RoundTripper
	as   string
}

func (s *schemeRewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	if token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", s.as+" "+token)
	}
	return s.next.RoundTrip(req)
}

// TestUserEnrollmentHasNoDownload: a User Enrollment profile installs only
// through account-driven enrolment, so the invitation tells the employee
// to sign in from Settings instead and the download is refused; the same
// code then enrols the device by account.
func TestUserEnrollmentHasNoDownload(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	ts := f.serve()
	link := f.invite(privacy.UserEnrolled, f.subject("erika@acme.test"))
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := ts.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	resp, err := ts.Client().PostForm(link, url.Values{"language": {"en"}, "notice_version": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Sign In to Work or School Account") ||
		!strings.Contains(string(page), path.Base(link)) || strings.Contains(string(page), "/profile") {
		t.Fatalf("the accepted invitation (%d) does not send the employee to Settings with the code:\n%s", resp.StatusCode, page)
	}
	if status, body := get(link + "/profile"); status != http.StatusConflict || !strings.Contains(body, "Sign In to Work or School Account") {
		t.Fatalf("downloading a User Enrollment profile: %d %q, want 409 with the way to enrol", status, body)
	}
	if status, page := get(link); status != http.StatusOK || strings.Contains(page, "/profile") {
		t.Fatalf("the invitation opened again (%d) offers a download:\n%s", status, page)
	}
	phone, _ := sim.New(ts.Client(), true)
	if err := phone.EnrolByAccount(f.ctx, ts.URL, "erika@acme.test", path.Base(link)); err != nil {
		t.Fatalf("account-driven enrolment after the refused download: %v", err)
	}
}

// TestAccountChangeWaitsForUserEnrollments: Apple refuses an update of a
// User Enrollment's profile that changes the account it names, so the
// account of a person with a device enrolled that way, or with an accepted
// User Enrollment link, is not changed; once the device checked out it is.
func TestAccountChangeWaitsForUserEnrollments(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	ts := f.serve()
	max, err := f.priv.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "max@acme.test", ManagedAppleID: "max@appleid.acme.test"}, admin)
	if err != nil {
		t.Fatal(err)
	}
	change := func(account string) error {
		_, err := f.priv.UpdateSubject(f.ctx, f.tenant, max.ID, privacy.SubjectUpdate{ManagedAppleID: &account}, admin)
		return err
	}
	tablet, _ := sim.New(ts.Client(), true)
	tablet.Personal = true
	if err := tablet.EnrolByAccount(f.ctx, ts.URL, "max@appleid.acme.test", path.Base(f.invite(privacy.UserEnrolled, max.ID))); err != nil {
		t.Fatal(err)
	}
	for _, account := range []string{"maximilian@appleid.acme.test", "max@acme.test"} {
		if err := change(account); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("account changed to %s under a user-enrolled device: %v, want a conflict", account, err)
		}
	}
	// A person whose account is their e-mail, given a Managed Apple Account.
	erika := f.subject("erika@acme.test")
	phone, _ := sim.New(ts.Client(), true)
	phone.Personal = true
	if err := phone.EnrolByAccount(f.ctx, ts.URL, "erika@acme.test", path.Base(f.invite(privacy.UserEnrolled, erika))); err != nil {
		t.Fatal(err)
	}
	account := "erika@appleid.acme.test"
	if _, err := f.priv.UpdateSubject(f.ctx, f.tenant, erika, privacy.SubjectUpdate{ManagedAppleID: &account}, admin); !apperr.IsKind(err, apperr.KindConflict) {
		t.Errorf("an account that was the e-mail changed under a user-enrolled device: %v, want a conflict", err)
	}
	if _, err := tablet.Checkin(f.ctx, tablet.CheckOut()); err != nil {
		t.Fatal(err)
	}

	link := path.Base(f.invite(privacy.UserEnrolled, max.ID))
	inv, err := f.svc.Invitation(f.ctx, link, "en")
	if err != nil {
		t.Fatal(err)
	}
	if err := change("maximilian@appleid.acme.test"); err != nil {
		t.Fatalf("account changed with the device gone and a link not accepted: %v", err)
	}
	if _, err := f.svc.Accept(f.ctx, link, mdm.AcceptInput{Language: "en", NoticeVersion: inv.Notice.Version}, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if err := change("max@acme.test"); !apperr.IsKind(err, apperr.KindConflict) {
		t.Errorf("account changed under an accepted User Enrollment link: %v, want a conflict", err)
	}
	// Once the link expired, and the time a profile downloaded from it
	// could still install, it names nothing that could be installed.
	inv, err = f.svc.Invitation(f.ctx, link, "en")
	if err != nil {
		t.Fatal(err)
	}
	f.now = inv.Enrolment.ExpiresAt.Add(time.Hour + 16*time.Minute)
	f.svc.SetClock(func() time.Time { return f.now })
	if err := change("max@acme.test"); err != nil {
		t.Errorf("account changed after the accepted link expired: %v", err)
	}
}
