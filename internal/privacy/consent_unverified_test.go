package privacy_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestAlteredSummaryIsNotShownNorFatal: a kept summary changed behind
// Steward's back is not given as what the person read, and the person's
// consents and export still come, saying so.
func TestAlteredSummaryIsNotShownNorFatal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "steward.db")
	f := newFixture(t, storetest.OpenSQLiteAt(t, path))
	erika := f.person("erika@acme.test")
	f.publishNotice(privacy.Personal)
	shown := privacy.PlainSummary(f.settings(), privacy.Personal)
	if _, err := f.svc.RecordConsent(f.ctx, f.tenant, erika.ID, privacy.ConsentInput{Ownership: string(privacy.Personal), NoticeVersion: 1,
		Language: "en", Method: "portal", SummarySHA256: privacy.TextDigest(shown)}, iam.Actor{Type: store.ActorSubject, ID: erika.ID}); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE consent_texts SET body = 'Everything is kept forever.'`); err != nil {
		t.Fatal(err)
	}

	state, err := f.svc.Consents(f.ctx, f.tenant, erika.ID)
	if err != nil || len(state.Consents) != 1 {
		t.Fatalf("consents after the text was altered: %+v, %v", state, err)
	}
	if c := state.Consents[0]; !c.SummaryUnverified || c.Summary != "" {
		t.Errorf("a consent whose kept summary was altered: %+v; want it unverified, with no summary", c)
	}
	if _, err := f.svc.ExportSubject(f.ctx, f.tenant, erika.ID, "subject access request", iam.Actor{Type: store.ActorSubject, ID: erika.ID}); err != nil {
		t.Errorf("the export after the text was altered: %v", err)
	}
}
