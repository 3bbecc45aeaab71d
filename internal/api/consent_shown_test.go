package api

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPortalConsentRecordsTheSummaryShown: the portal shows the notice with
// its plain-words summary; a consent records that summary and the notice's
// digest, refuses a summary changed while it was read, and each consent
// keeps its own summary in the portal and the admin listing after the
// tenant's retention changed. An admin-recorded consent says Steward showed
// nothing.
func TestPortalConsentRecordsTheSummaryShown(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		base := "/api/v1/tenants/" + e.rootID
		var sub SubjectView
		e.must(201, e.owner, "POST", base+"/subjects", SubjectRequest{Email: "erika@acme.test", Name: "Erika"}, &sub)
		e.must(201, e.owner, "POST", base+"/privacy/notices", NoticeRequest{Ownership: "personal", Translations: []privacy.Translation{
			{Language: "en", Title: "Your device and us", Body: "We manage your work apps."}}}, nil)
		var tok PortalTokenView
		e.must(201, e.owner, "POST", base+"/subjects/"+sub.ID+"/portal-tokens", PortalTokenRequest{}, &tok)
		read := func() PortalNoticeView {
			t.Helper()
			var n PortalNoticeView
			e.must(200, tok.Token, "GET", "/api/v1/portal/notice?ownership=personal&language=en", nil, &n)
			if n.Summary == "" || n.SummarySHA256 != privacy.TextDigest(n.Summary) || n.BodySHA256 != privacy.TextDigest(n.Body) {
				t.Fatalf("the portal's notice: %+v", n)
			}
			return n
		}
		accept := func(n PortalNoticeView, want int) ConsentView {
			t.Helper()
			var c ConsentView
			e.must(want, tok.Token, "POST", "/api/v1/portal/consents", ConsentRequest{Ownership: "personal", NoticeVersion: n.Version,
				Language: "en", SummarySHA256: n.SummarySHA256}, &c)
			return c
		}

		before := read()
		first := accept(before, 201)
		if first.Shown != store.ConsentShownNoticeAndSummary || first.Summary != before.Summary ||
			first.SummarySHA256 != before.SummarySHA256 || first.NoticeSHA256 != before.BodySHA256 {
			t.Fatalf("the portal consent records %+v;\nthe portal showed %+v", first, before)
		}
		e.must(200, e.owner, "PUT", base+"/privacy/retention", RetentionRequest{Reason: "keep operating system versions shorter",
			RetentionDays: map[privacy.Category]int{privacy.OS: 123}}, nil)
		accept(before, 409) // read before the change
		after := read()
		if after.Version != before.Version || after.SummarySHA256 == before.SummarySHA256 || !strings.Contains(after.Summary, "Kept 123 days.") {
			t.Fatalf("after the retention change the portal shows %+v", after)
		}
		second := accept(after, 201)

		var listed ConsentStateView
		e.must(200, e.owner, "GET", base+"/subjects/"+sub.ID+"/consents", nil, &listed)
		var me PortalMeView
		e.must(200, tok.Token, "GET", "/api/v1/portal/me", nil, &me)
		for who, cs := range map[string][]ConsentView{"the admin listing": listed.Consents, "the portal": me.Consents.Consents} {
			if len(cs) != 2 || cs[0].ID != first.ID || cs[0].Summary != before.Summary || cs[1].ID != second.ID ||
				cs[1].Summary != after.Summary || cs[1].SummarySHA256 != after.SummarySHA256 {
				t.Errorf("%s gives the consents %+v", who, cs)
			}
		}

		// A client that sends no digest has not said it showed the summary.
		var bare ConsentView
		e.must(201, tok.Token, "POST", "/api/v1/portal/consents", ConsentRequest{Ownership: "personal", NoticeVersion: after.Version,
			Language: "en"}, &bare)
		if bare.Shown != store.ConsentShownNoticeOnly || bare.Summary != "" || bare.SummarySHA256 != "" || bare.NoticeSHA256 != after.BodySHA256 {
			t.Errorf("a portal consent without the summary's digest: %+v", bare)
		}

		var recorded ConsentView
		e.must(201, e.owner, "POST", base+"/subjects/"+sub.ID+"/consents", ConsentRequest{Ownership: "personal", NoticeVersion: 1,
			Language: "en"}, &recorded)
		if recorded.Shown != store.ConsentShownOutsideSteward || recorded.Summary != "" || recorded.SummarySHA256 != "" ||
			recorded.NoticeSHA256 != before.BodySHA256 {
			t.Errorf("an admin-recorded consent: %+v", recorded)
		}
		e.must(400, e.owner, "POST", base+"/subjects/"+sub.ID+"/consents", ConsentRequest{Ownership: "personal", NoticeVersion: 1,
			Language: "en", SummarySHA256: after.SummarySHA256}, nil)
	})
}
