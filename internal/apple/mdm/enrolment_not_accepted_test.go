package mdm_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestProfileBeforeAcceptingSaysSo: the profile of an enrolment whose
// notice nobody accepted yet is refused with that reason, not as a link
// already used, which would send the employee to IT for a new one.
func TestProfileBeforeAcceptingSaysSo(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	link := f.invite(privacy.Corporate, "")
	resp, err := ts.Client().Get(link + "/profile")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(b), "not been accepted yet") || strings.Contains(string(b), "already used") {
		t.Errorf("the profile before the notice was accepted: %d %q; want 409 asking to accept the notice first", resp.StatusCode, b)
	}
}
