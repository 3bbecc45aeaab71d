package mdm_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// A tenant's device CA is created with its first enrolment profile, an
// admin's doing. Device-facing requests before that (a scanner, a device of
// another server) are refused and leave nothing behind: no CA key is
// generated for them.
func TestDeviceRequestsDoNotCreateTheCA(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	ts := f.serve()
	caKeys := []string{"scep-ca:" + f.tenant, "scep-issuer:" + f.tenant}
	for name, c := range map[string]struct {
		method, path, contentType string
		want                      int
	}{
		"GetCACaps":    {"GET", "/scep/" + f.tenant + "?operation=GetCACaps", "", http.StatusNotFound},
		"GetCACert":    {"GET", "/scep/" + f.tenant + "?operation=GetCACert", "", http.StatusNotFound},
		"PKIOperation": {"GET", "/scep/" + f.tenant + "?operation=PKIOperation&message=AAAA", "", 0},
		"check-in":     {"PUT", "/mdm/" + f.tenant + "/checkin", checkinType, http.StatusForbidden},
		"connect":      {"PUT", "/mdm/" + f.tenant + "/connect", connectType, http.StatusForbidden},
	} {
		req, _ := http.NewRequest(c.method, ts.URL+c.path, bytes.NewReader([]byte("<plist/>")))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || (c.want != 0 && resp.StatusCode != c.want) {
			t.Errorf("%s before any profile: HTTP %d, want %d", name, resp.StatusCode, c.want)
		}
		for _, key := range caKeys {
			if _, err := f.st.Read().Settings().Get(f.ctx, key); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s before any profile stored %s (%v)", name, key, err)
			}
		}
	}

	// The first profile creates the CA, and the device it enrols is served.
	f.publish(privacy.Personal)
	phone, _ := f.enrolled(ts, privacy.Personal, f.subject("erika@acme.test"))
	if _, err := phone.Poll(f.ctx); err != nil {
		t.Fatalf("a device enrolled with the first profile: %v", err)
	}
	for _, key := range caKeys {
		if _, err := f.st.Read().Settings().Get(f.ctx, key); err != nil {
			t.Errorf("after the first profile, %s: %v", key, err)
		}
	}
}
