package mdm_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestInvitationSpeaksThePhonesLanguage: the enrolment page shows the
// notice in the translation that fits the browser's Accept-Language, with
// its weights and regional tags as phones send them ("de-DE,de;q=0.9"),
// falls back to English, follows the page's own language links, and offers
// the other translations.
func TestInvitationSpeaksThePhonesLanguage(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	if _, err := f.priv.PublishNotice(f.ctx, f.tenant, privacy.NoticeInput{Ownership: "corporate", Translations: []privacy.Translation{
		{Language: "en", Title: "Your work device", Body: "English body"},
		{Language: "de", Title: "Ihr Arbeitsgerät", Body: "Deutscher Text"},
		{Language: "fr", Title: "Votre appareil", Body: "Texte français"},
	}}, admin); err != nil {
		t.Fatal(err)
	}
	ts := f.serve()
	link := f.invite(privacy.Corporate, "")
	page := func(url, acceptLanguage string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if acceptLanguage != "" {
			req.Header.Set("Accept-Language", acceptLanguage)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s (%q): %d %s", url, acceptLanguage, resp.StatusCode, body)
		}
		return string(body)
	}
	for accept, want := range map[string]string{
		"de-DE,de;q=0.9,en;q=0.8": "Ihr Arbeitsgerät", // iOS Safari in Germany
		"de-CH":                   "Ihr Arbeitsgerät",
		"DE":                      "Ihr Arbeitsgerät",
		"en-US,en;q=0.9,de;q=0.8": "Your work device", // English first
		"it-IT,fr;q=0.5":          "Votre appareil",   // the best available, not the first
		"ja-JP":                   "Your work device", // none fits: English
		"":                        "Your work device",
		"not a language;;;q=x":    "Your work device",
	} {
		if got := page(link, accept); !strings.Contains(got, "<h1>"+want+"</h1>") {
			t.Errorf("Accept-Language %q: want %q, got\n%s", accept, want, got)
		}
	}
	shown := page(link, "de-DE")
	if !strings.Contains(shown, `<html lang="de">`) || !strings.Contains(shown, `name="language" value="de"`) {
		t.Errorf("the German page does not say so in its markup or its form:\n%s", shown)
	}
	for _, other := range []string{`href="?lang=en"`, `href="?lang=fr"`} {
		if !strings.Contains(shown, other) {
			t.Errorf("the German page does not offer %s:\n%s", other, shown)
		}
	}
	if strings.Contains(shown, `href="?lang=de"`) {
		t.Error("the German page links to itself")
	}
	if got := page(link+"?lang=fr", "de-DE"); !strings.Contains(got, "<h1>Votre appareil</h1>") {
		t.Errorf("the page's own link to French: %s", got)
	}
}
