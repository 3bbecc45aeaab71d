package mdm_test

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/exporttest"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// shownPage is what an enrolment page showed: its summary's text as the
// person read it (visibleSummary), and the digest its form sends back.
type shownPage struct {
	summary, digest string
	changed         bool // the page says an acceptance was refused for a change
}

// openInvitation reads the enrolment page at link as the browser shows it.
func openInvitation(t *testing.T, ts *httptest.Server, link string) shownPage {
	t.Helper()
	resp, err := ts.Client().Get(link)
	if err != nil {
		t.Fatal(err)
	}
	return readShownPage(t, resp, http.StatusOK)
}

// readShownPage reads the summary and form of an enrolment page answered
// with status.
func readShownPage(t *testing.T, resp *http.Response, status int) shownPage {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	page := string(body)
	_, rest, ok := strings.Cut(page, "<h2>In plain words</h2><section>")
	summary, _, ok2 := strings.Cut(rest, "</section>")
	_, form, ok3 := strings.Cut(page, `name="summary_sha256" value="`)
	digest, _, _ := strings.Cut(form, `"`)
	if resp.StatusCode != status || !ok || !ok2 || !ok3 {
		t.Fatalf("enrolment page %d (want %d) without a summary and its digest:\n%s", resp.StatusCode, status, page)
	}
	inline := strings.NewReplacer("<strong>", "", "</strong>", "").Replace(summary)
	text := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(inline, " "))
	if strings.ContainsAny(text, "#*") {
		t.Errorf("the page shows the summary's markup: %s", text)
	}
	return shownPage{summary: strings.Join(strings.Fields(text), " "), digest: digest, changed: strings.Contains(page, "changed while you were reading")}
}

// visibleSummary is summary's text without its markup, as readShownPage
// reads it from a page.
func visibleSummary(summary string) string {
	markup := strings.NewReplacer("### ", " ", "- ", " ", "**", "")
	var words []string
	for line := range strings.Lines(summary) {
		words = append(words, strings.Fields(markup.Replace(" "+line))...)
	}
	return strings.Join(words, " ")
}

// submitPage posts the page's form as the browser does.
func submitPage(t *testing.T, ts *httptest.Server, link string, shown shownPage) *http.Response {
	t.Helper()
	resp, err := ts.Client().PostForm(link, url.Values{"language": {"en"}, "notice_version": {"1"}, "summary_sha256": {shown.digest}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// acceptOnPage submits the page's form and gives the answer's status.
func acceptOnPage(t *testing.T, ts *httptest.Server, link string, shown shownPage) int {
	t.Helper()
	resp := submitPage(t, ts, link, shown)
	resp.Body.Close()
	return resp.StatusCode
}

// consentTexts counts the tenant-level texts kept for consents.
func consentTexts(t *testing.T, st store.Store) int64 {
	t.Helper()
	db, ok := st.(*sqlstore.DB)
	if !ok {
		t.Fatalf("store is %T", st)
	}
	rows := int64(-1)
	err := db.Dump(context.Background(), nil, func(info sqlstore.DumpInfo) error {
		for _, tb := range info.Tables {
			if tb.Name == "consent_texts" {
				rows = tb.Rows
			}
		}
		return io.EOF // the counts are all we need
	}, nil)
	if !errors.Is(err, io.EOF) || rows < 0 {
		t.Fatalf("counting consent_texts: %v (rows %d)", err, rows)
	}
	return rows
}

// TestConsentKeepsTheSummaryShown: a consent proves which plain-words
// summary the person read (GDPR Art 7(1)), although the summary follows the
// tenant's settings and changes without a new notice version. Accepting on
// the enrolment page records the summary the page showed; after a change of
// retention the portal's consent records the new summary and the first
// keeps its own; the export gives both, word for word; a summary read by
// many is kept once; and an acceptance of a summary changed meanwhile is
// refused.
func TestConsentKeepsTheSummaryShown(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Personal)
		ts := f.serve()
		erika, jonas := f.subject("erika@acme.test"), f.subject("jonas@acme.test")

		erikaLink, jonasLink := f.invite(privacy.Personal, erika), f.invite(privacy.Personal, jonas)
		onPage := openInvitation(t, ts, erikaLink)
		if status := acceptOnPage(t, ts, erikaLink, onPage); status != http.StatusOK {
			t.Fatalf("accepting on the enrolment page: %d", status)
		}
		if status := acceptOnPage(t, ts, jonasLink, openInvitation(t, ts, jonasLink)); status != http.StatusOK {
			t.Fatalf("Jonas accepting on the enrolment page: %d", status)
		}
		notice, err := f.priv.CurrentNotice(f.ctx, f.tenant, privacy.Personal, "en")
		if err != nil {
			t.Fatal(err)
		}
		state, err := f.priv.Consents(f.ctx, f.tenant, erika)
		if err != nil {
			t.Fatal(err)
		}
		if len(state.Consents) != 1 {
			t.Fatalf("Erika's consents: %+v", state.Consents)
		}
		first := state.Consents[0]
		if visibleSummary(first.Summary) != onPage.summary || first.SummarySHA256 != privacy.TextDigest(first.Summary) ||
			first.SummarySHA256 != onPage.digest || first.Shown != store.ConsentShownNoticeAndSummary ||
			first.NoticeSHA256 != privacy.TextDigest(notice.Body) {
			t.Fatalf("the enrolment consent records %+v;\nthe page showed %q (digest %s)", first, onPage.summary, onPage.digest)
		}
		if n := consentTexts(t, st); n != 1 {
			t.Errorf("two consents to the same summary keep %d texts, want 1", n)
		}

		// A shorter retention changes the summary, not the notice version.
		stale, err := f.priv.ShownNotice(f.ctx, f.tenant, privacy.Personal, "en")
		if err != nil {
			t.Fatal(err)
		}
		mia := f.subject("mia@acme.test")
		miaLink := f.invite(privacy.Personal, mia)
		miaRead := openInvitation(t, ts, miaLink)
		if _, err := f.priv.SetRetention(f.ctx, f.tenant, map[privacy.Category]int{privacy.OS: 123}, "keep operating system versions shorter", admin.ID, admin); err != nil {
			t.Fatal(err)
		}
		// The refusal shows the changed page to read and accept again.
		reread := readShownPage(t, submitPage(t, ts, miaLink, miaRead), http.StatusConflict)
		if !reread.changed || reread.summary == miaRead.summary || !strings.Contains(reread.summary, "Kept 123 days.") {
			t.Errorf("accepting on a page whose summary changed meanwhile shows (changed: %v):\n%s", reread.changed, reread.summary)
		}
		if state, err := f.priv.Consents(f.ctx, f.tenant, mia); err != nil || len(state.Consents) != 0 {
			t.Errorf("a refused acceptance left consents %+v (%v)", state.Consents, err)
		}
		if status := acceptOnPage(t, ts, miaLink, reread); status != http.StatusOK {
			t.Errorf("accepting the page shown again: %d", status)
		}
		if state, err := f.priv.Consents(f.ctx, f.tenant, mia); err != nil || len(state.Consents) != 1 || visibleSummary(state.Consents[0].Summary) != reread.summary {
			t.Errorf("accepting the page shown again records %+v (%v)", state.Consents, err)
		}
		portal := iam.Actor{Type: store.ActorSubject, ID: erika}
		in := privacy.ConsentInput{Ownership: "personal", NoticeVersion: 1, Language: "en", Method: "portal",
			SummarySHA256: privacy.TextDigest(stale.Summary)}
		if _, err := f.priv.RecordConsent(f.ctx, f.tenant, erika, in, portal); !apperr.IsKind(err, apperr.KindConflict) {
			t.Fatalf("accepting a summary that changed while it was read: %v", err)
		}
		now, err := f.priv.ShownNotice(f.ctx, f.tenant, privacy.Personal, "en")
		if err != nil {
			t.Fatal(err)
		}
		if now.Version != 1 || now.Summary == stale.Summary || !strings.Contains(now.Summary, "Kept 123 days.") {
			t.Fatalf("after the retention change the portal shows version %d, summary:\n%s", now.Version, now.Summary)
		}
		in.SummarySHA256 = privacy.TextDigest(now.Summary)
		if _, err := f.priv.RecordConsent(f.ctx, f.tenant, erika, in, portal); err != nil {
			t.Fatal(err)
		}
		if state, err = f.priv.Consents(f.ctx, f.tenant, erika); err != nil {
			t.Fatal(err)
		}
		if len(state.Consents) != 2 || state.Consents[0].Summary != first.Summary || state.Consents[1].Summary != now.Summary ||
			state.Consents[1].SummarySHA256 == first.SummarySHA256 {
			t.Fatalf("after accepting again in the portal: %+v", state.Consents)
		}
		if n := consentTexts(t, st); n != 2 {
			t.Errorf("two different summaries keep %d texts, want 2", n)
		}

		arc, err := f.priv.ExportSubject(f.ctx, f.tenant, erika, "", portal)
		if err != nil {
			t.Fatal(err)
		}
		exp, dir, _ := exporttest.Open(t, arc)
		if len(exp.Consents) != 2 || exp.Consents[0].Summary != first.Summary || exp.Consents[1].Summary != now.Summary ||
			exp.Consents[0].SummarySHA256 != first.SummarySHA256 || exp.Consents[1].SummarySHA256 != privacy.TextDigest(now.Summary) {
			t.Fatalf("exported consents: %+v", exp.Consents)
		}
		readable, err := os.ReadFile(filepath.Join(dir, "summary.html"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readable), "Kept 123 days.") {
			t.Errorf("summary.html does not give the summary Erika accepted in the portal")
		}
	})
}
