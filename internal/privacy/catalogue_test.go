package privacy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestCatalogueDoc keeps docs/privacy/catalogue.md equal to the catalogue;
// STEWARD_UPDATE_DOCS=1 rewrites it.
func TestCatalogueDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "privacy", "catalogue.md")
	want := privacy.CatalogueMarkdown()
	if os.Getenv("STEWARD_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale: run STEWARD_UPDATE_DOCS=1 go test ./internal/privacy -run TestCatalogueDoc", path)
	}
}

func TestCatalogueIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range privacy.Catalogue {
		if seen[f.Key] {
			t.Errorf("%s declared twice", f.Key)
		}
		seen[f.Key] = true
		if _, ok := privacy.CategoryByName(f.Category); !ok {
			t.Errorf("%s: unknown category %q", f.Key, f.Category)
		}
		if f.Name == "" || f.Purpose == "" || f.LegalBasis == "" || len(f.Sources) == 0 {
			t.Errorf("%s lacks a name, purpose, legal basis or source", f.Key)
		}
		if f.Searchable && !f.Personal {
			t.Errorf("%s: only personal fields need a blind index", f.Key)
		}
		if !strings.HasPrefix(f.Key, strings.SplitN(string(f.Category), "_", 2)[0][:2]) && !strings.Contains(f.Key, ".") {
			t.Errorf("%s: keys are dotted", f.Key)
		}
	}
	// Every category of every ownership class has a default mode.
	for _, o := range privacy.Ownerships {
		for _, c := range privacy.Categories {
			if _, ok := privacy.DefaultPolicy()[o].Modes[c.Category]; !ok {
				t.Errorf("no default mode for %s/%s", o, c.Category)
			}
		}
	}
	p := privacy.DefaultPolicy()
	for _, o := range []privacy.Ownership{privacy.Personal, privacy.UserEnrolled} {
		if p.Mode(o, privacy.Location) != privacy.Drop || p.Mode(o, privacy.Telephony) != privacy.Drop || p[o].FullWipe {
			t.Errorf("%s defaults are not private", o)
		}
	}
	if p.Mode(privacy.Corporate, privacy.Location) != privacy.Hide {
		t.Error("corporate location must default to hidden")
	}
}

func TestRecordRenders(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	tenant, err := f.st.Read().Tenants().Get(f.ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.svc.Record(f.ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	page, err := rec.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{string(page), rec.Markdown()} {
		for _, want := range []string{"Location", "7 days", "Anonymous usage statistics", "none", "hide"} {
			if !strings.Contains(doc, want) {
				t.Errorf("the record lacks %q", want)
			}
		}
	}
}
