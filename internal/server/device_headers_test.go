package server

import (
	"net/http"
	"testing"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestDevicePathsSendTransportHeaders: the pages employees open from a mail
// on their phone, and the device endpoints, get HSTS and nosniff as the API
// does, whatever they answer.
func TestDevicePathsSendTransportHeaders(t *testing.T) {
	f := newFleet(t, storetest.OpenSQLite(t))
	var enr api.NewEnrolmentView
	f.must(201, f.owner, "POST", f.path("/enrolments"), api.EnrolmentRequest{Ownership: "corporate"}, &enr)
	for _, path := range []string{
		enr.Link[len(f.ts.URL):],
		"/enrol/sel_not-a-link",
		"/scep/" + f.tenant + "?operation=GetCACaps",
		"/mdm/" + f.tenant + "/checkin",
		"/.well-known/com.apple.remotemanagement",
	} {
		r := f.do("", http.MethodGet, path, nil)
		if r.header.Get("Strict-Transport-Security") != "max-age=63072000; includeSubDomains" || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s (%d): HSTS %q, nosniff %q", path, r.status, r.header.Get("Strict-Transport-Security"), r.header.Get("X-Content-Type-Options"))
		}
	}
}
