package mdm_test

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestErasedPersonsInvitationIsClosed: erasing a person closes the
// invitations made for them: no page, no profile.
func TestErasedPersonsInvitationIsClosed(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	link := f.invite(privacy.Personal, erika)
	if _, err := f.svc.Accept(f.ctx, path.Base(link), mdm.AcceptInput{Language: "en", NoticeVersion: 1}, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.priv.EraseSubject(f.ctx, f.tenant, erika, "Art 17 request from the employee", admin); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{link, link + "/profile"} {
		resp, err := ts.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("GET %s after the erasure: %d, want 409", u, resp.StatusCode)
		}
	}
}

// TestAccountSignInNeedsTheAccount: the sign-in takes the code (or the
// whole invitation link pasted) only with the work account the device
// names, and its pages cannot be framed.
func TestAccountSignInNeedsTheAccount(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	ts := f.serve()
	link := f.invite(privacy.UserEnrolled, f.subject("erika@acme.test"))
	client := *ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	signIn := func(form url.Values) *http.Response {
		t.Helper()
		resp, err := client.PostForm(ts.URL+"/enrol/account/sign-in", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := signIn(url.Values{"code": {path.Base(link)}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("a code without the device's account: %d, want 403", r.StatusCode)
	}
	r := signIn(url.Values{"code": {link}, "user-identifier": {"erika@acme.test"}})
	if r.StatusCode != http.StatusSeeOther || !strings.HasSuffix(r.Header.Get("Location"), path.Base(link)+"?account=1") {
		t.Errorf("the invitation link pasted whole: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	page, err := ts.Client().Get(ts.URL + "/enrol/account/sign-in?user-identifier=erika%40acme.test")
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if !strings.Contains(page.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || page.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("the sign-in page can be framed: CSP %q, X-Frame-Options %q", page.Header.Get("Content-Security-Policy"), page.Header.Get("X-Frame-Options"))
	}
}
