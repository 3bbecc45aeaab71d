package mdm_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestProfileNeedsConsentInForce: an accepted enrolment hands out its
// profile only while its person consents to the current notice. When the
// employee withdraws before installing, or the notice changes, the
// invitation shows the notice again and the download is refused until they
// accept it; accepting again can take the full-wipe permission back but
// not add it.
func TestProfileNeedsConsentInForce(t *testing.T) {
	f, ts, erika, link := personalInvitation(t)
	secret := path.Base(link)
	accept := func(version int64, wipe bool) {
		t.Helper()
		if _, err := f.svc.Accept(f.ctx, secret, mdm.AcceptInput{Language: "en", NoticeVersion: version, AllowFullWipe: wipe}, "192.0.2.1"); err != nil {
			t.Fatalf("accepting version %d: %v", version, err)
		}
	}
	download := func() (int, mdmproto.AccessRights) {
		t.Helper()
		resp, err := ts.Client().Get(link + "/profile")
		if err != nil {
			t.Fatal(err)
		}
		signed, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, 0
		}
		rights, err := sim.ProfileAccessRights(signed)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, mdmproto.AccessRights(rights)
	}
	offersNotice := func(version int64) bool {
		t.Helper()
		page := invitationPage(t, ts, link)
		return strings.Contains(page, `name="notice_version" value="`+strconv.FormatInt(version, 10)+`"`) && !strings.Contains(page, "/profile")
	}
	current := func() int64 {
		t.Helper()
		inv, err := f.svc.Invitation(f.ctx, secret, "en")
		if err != nil {
			t.Fatal(err)
		}
		return inv.Notice.Version
	}

	v := current()
	accept(v, true)
	if status, rights := download(); status != http.StatusOK || rights&mdmproto.AccessDeviceErase == 0 {
		t.Fatalf("after accepting with the wipe permission: %d, rights %d", status, rights)
	}

	// Withdrawn before installing: the notice again, no profile.
	cs, err := f.priv.Consents(f.ctx, f.tenant, erika)
	if err != nil || len(cs.Consents) != 1 {
		t.Fatalf("consents: %+v, %v", cs, err)
	}
	if _, err := f.priv.WithdrawConsent(f.ctx, f.tenant, erika, cs.Consents[0].ID, admin); err != nil {
		t.Fatal(err)
	}
	if status, _ := download(); status != http.StatusConflict {
		t.Errorf("the profile after the consent was withdrawn: HTTP %d, want 409", status)
	}
	if !offersNotice(v) {
		t.Error("the invitation does not ask for consent again after it was withdrawn")
	}
	// Accepted again without the wipe permission: the profile grants no erase.
	resp, err := ts.Client().PostForm(link, url.Values{"language": {"en"}, "notice_version": {strconv.FormatInt(v, 10)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if status, rights := download(); status != http.StatusOK || rights&mdmproto.AccessDeviceErase != 0 {
		t.Errorf("accepted again without the wipe permission: %d, rights %d", status, rights)
	}

	// A new notice before installing: it must be read and accepted first.
	f.publish(privacy.Personal)
	if current() == v {
		t.Fatal("publishing did not make a new notice version")
	}
	if status, _ := download(); status != http.StatusConflict {
		t.Errorf("the profile under a superseded notice: HTTP %d, want 409", status)
	}
	if !offersNotice(current()) {
		t.Error("the invitation does not show the new notice to accept")
	}
	// Accepting the superseded version on a page left open shows the new one.
	resp, err = ts.Client().PostForm(link, url.Values{"language": {"en"}, "notice_version": {strconv.FormatInt(v, 10)}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(page), "changed while you were reading") ||
		!strings.Contains(string(page), `name="notice_version" value="`+strconv.FormatInt(current(), 10)+`"`) {
		t.Errorf("accepting a superseded notice: HTTP %d, page:\n%s", resp.StatusCode, page)
	}
	accept(current(), false)
	if status, rights := download(); status != http.StatusOK || rights&mdmproto.AccessDeviceErase != 0 {
		t.Errorf("after accepting the new notice: %d, rights %d", status, rights)
	}
	cs, _ = f.priv.Consents(f.ctx, f.tenant, erika)
	live := 0
	for _, c := range cs.Consents {
		if c.WithdrawnAt.IsZero() {
			live++
		}
	}
	if len(cs.Consents) != 3 || live != 2 {
		t.Errorf("consents recorded: %+v; want three, one withdrawn", cs.Consents)
	}
}

// TestAcceptingAgainCannotAddAFullWipe: the full-wipe permission belongs
// to the enrolment. One accepted without it and accepted again (after a
// withdrawal) is not asked for it, and cannot be given it.
func TestAcceptingAgainCannotAddAFullWipe(t *testing.T) {
	f, ts, erika, link := personalInvitation(t)
	if !strings.Contains(invitationPage(t, ts, link), "allow_full_wipe") {
		t.Fatal("a personal enrolment is not asked for the full-wipe permission while the policy allows it")
	}
	inv, err := f.svc.Invitation(f.ctx, path.Base(link), "en")
	if err != nil {
		t.Fatal(err)
	}
	in := mdm.AcceptInput{Language: "en", NoticeVersion: inv.Notice.Version}
	if _, err := f.svc.Accept(f.ctx, path.Base(link), in, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	cs, _ := f.priv.Consents(f.ctx, f.tenant, erika)
	if _, err := f.priv.WithdrawConsent(f.ctx, f.tenant, erika, cs.Consents[0].ID, admin); err != nil {
		t.Fatal(err)
	}
	if page := invitationPage(t, ts, link); strings.Contains(page, "allow_full_wipe") {
		t.Error("accepting again asks for a full-wipe permission the enrolment never had")
	}
	in.AllowFullWipe = true
	if _, err := f.svc.Accept(f.ctx, path.Base(link), in, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	cs, _ = f.priv.Consents(f.ctx, f.tenant, erika)
	for _, c := range cs.Consents {
		if c.AllowFullWipe {
			t.Errorf("a consent allows a full wipe the enrolment never had: %+v", c)
		}
	}
}

// TestAcceptingAgainWithoutAFullWipeTakesItBack: accepting again without
// the permission takes it back from the enrolment for good; a portal
// consent with it afterwards does not restore it.
func TestAcceptingAgainWithoutAFullWipeTakesItBack(t *testing.T) {
	f, _, erika, link := personalInvitation(t)
	inv, err := f.svc.Invitation(f.ctx, path.Base(link), "en")
	if err != nil {
		t.Fatal(err)
	}
	in := mdm.AcceptInput{Language: "en", NoticeVersion: inv.Notice.Version, AllowFullWipe: true}
	e, err := f.svc.Accept(f.ctx, path.Base(link), in, "192.0.2.1")
	if err != nil || !e.AllowFullWipe {
		t.Fatalf("accepted with the permission: %+v, %v", e, err)
	}
	cs, _ := f.priv.Consents(f.ctx, f.tenant, erika)
	if _, err := f.priv.WithdrawConsent(f.ctx, f.tenant, erika, cs.Consents[0].ID, admin); err != nil {
		t.Fatal(err)
	}
	in.AllowFullWipe = false
	if _, err := f.svc.Accept(f.ctx, path.Base(link), in, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	f.acceptAgain(erika, true)
	if e, err = f.st.Read().Enrolments().Get(f.ctx, f.tenant, e.ID); err != nil || e.AllowFullWipe {
		t.Fatalf("enrolment after the permission was taken back and a portal consent with it: %+v, %v", e, err)
	}
}

// personalInvitation is a personal enrolment's link for Erika, under a
// policy that allows full wipes.
func personalInvitation(t *testing.T) (*fixture, *httptest.Server, string, string) {
	t.Helper()
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	f.allowFullWipe(true)
	erika := f.subject("erika@acme.test")
	return f, f.serve(), erika, f.inviteByMail(privacy.Personal, erika)
}

// TestConsentForAnotherDeviceDoesNotCount: a consent to the new notice
// given for one of the person's devices leaves another device's
// enrolment asking again.
func TestConsentForAnotherDeviceDoesNotCount(t *testing.T) {
	f, _, dev, erika := wipeableDevice(t, storetest.OpenSQLite(t))
	link := f.invite(privacy.Personal, erika)
	inv, err := f.svc.Invitation(f.ctx, path.Base(link), "en")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Accept(f.ctx, path.Base(link), mdm.AcceptInput{Language: "en", NoticeVersion: inv.Notice.Version}, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	f.publish(privacy.Personal)
	cs, err := f.priv.Consents(f.ctx, f.tenant, erika)
	if err != nil {
		t.Fatal(err)
	}
	version := cs.Consents[0].NoticeVersion + 1
	if _, err := f.priv.RecordConsent(f.ctx, f.tenant, erika, privacy.ConsentInput{Ownership: string(privacy.Personal), DeviceID: dev.ID,
		NoticeVersion: version, Language: "en", Method: "portal"}, iam.Actor{Type: store.ActorSubject, ID: erika}); err != nil {
		t.Fatal(err)
	}
	if inv, err = f.svc.Invitation(f.ctx, path.Base(link), "en"); err != nil || inv.Consented {
		t.Fatalf("the second device's invitation after a consent for the first: consented %v, %v; want it to ask again", inv.Consented, err)
	}
}

// TestProfileDownloadsAreBounded: each download stores a challenge for an
// hour and costs a signature, so one enrolment gets a few per hour; a
// script looping on the link is told to wait, and other links still work.
func TestProfileDownloadsAreBounded(t *testing.T) {
	f, ts, _, link := personalInvitation(t)
	other := f.invite(privacy.Personal, f.subject("max@acme.test"))
	for _, l := range []string{link, other} {
		inv, err := f.svc.Invitation(f.ctx, path.Base(l), "en")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Accept(f.ctx, path.Base(l), mdm.AcceptInput{Language: "en", NoticeVersion: inv.Notice.Version}, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	status := func(l string) int {
		t.Helper()
		resp, err := ts.Client().Get(l + "/profile")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 10 {
		if got := status(link); got != http.StatusOK {
			t.Fatalf("download %d: HTTP %d", i+1, got)
		}
	}
	if got := status(link); got != http.StatusTooManyRequests {
		t.Errorf("the 11th download in an hour: HTTP %d, want 429", got)
	}
	if got := status(other); got != http.StatusOK {
		t.Errorf("another enrolment's download: HTTP %d", got)
	}
	// Ten an hour: one more every six minutes.
	f.svc.SetClock(func() time.Time { return f.now.Add(6*time.Minute + time.Second) })
	if got := status(link); got != http.StatusOK {
		t.Errorf("a download six minutes later: HTTP %d", got)
	}
	if got := status(link); got != http.StatusTooManyRequests {
		t.Errorf("a second one then: HTTP %d, want 429", got)
	}
}
