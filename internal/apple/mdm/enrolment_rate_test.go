package mdm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestEnrolmentPagesLimitedPerAddress: one client address gets a burst of
// 100 requests to the enrolment pages and is then refused with 429, while
// another address is not held back, nor are check-ins from the first.
func TestEnrolmentPagesLimitedPerAddress(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.serve()
	h, err := f.svc.Handler(mdm.HTTPConfig{Topic: func(context.Context, string) (string, error) { return testTopic, nil },
		EnrolmentRateLimit: 5})
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, path, peer string) int {
		req := httptest.NewRequest(method, "https://mdm.example.test"+path, strings.NewReader("<plist/>"))
		req.RemoteAddr = peer
		req.Header.Set("Content-Type", checkinType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	const invitation = "/enrol/stv1_not-a-real-link"
	refused := 0
	for i := range 110 {
		code := send("GET", invitation, "192.0.2.1:5000")
		if code == http.StatusTooManyRequests {
			if i < 100 {
				t.Fatalf("request %d of the burst refused", i+1)
			}
			refused++
		}
	}
	if refused < 9 {
		t.Errorf("%d of 10 requests past the burst refused", refused)
	}
	if got := send("POST", invitation, "192.0.2.1:5000"); got != http.StatusTooManyRequests {
		t.Errorf("an acceptance from the same address: HTTP %d, want 429", got)
	}
	if got := send("GET", invitation, "192.0.2.2:5000"); got == http.StatusTooManyRequests {
		t.Error("another address was held back")
	}
	if got := send("POST", "/mdm/"+f.tenant+"/checkin", "192.0.2.1:5000"); got == http.StatusTooManyRequests {
		t.Error("a check-in from the limited address was refused as too many")
	}
}
