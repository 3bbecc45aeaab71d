package mdm_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestCommandAuditNamesItsTarget: the audit entry of a queued command says
// which profile, app or OS version it acts on, so the audit log keeps
// what was installed or removed after the command is purged; a profile by
// its identifier and version, never its content or a digest of it, which
// could be matched against profiles rebuilt with guessed passwords.
func TestCommandAuditNamesItsTarget(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, dev := f.enrolled(ts, privacy.Corporate, "")
	const password = "wifi-password-canary-4711"
	profile := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PayloadIdentifier</key><string>com.acme.wifi</string>` +
		`<key>PayloadType</key><string>Configuration</string><key>PayloadUUID</key><string>5C4C0C5A-1B7E-4C1A-9C3E-2F1D6B7A8E90</string>` +
		`<key>PayloadVersion</key><integer>1</integer><key>PayloadContent</key><array><dict><key>Password</key><string>` + password +
		`</string></dict></array></dict></plist>`)
	for _, c := range []struct {
		req  mdmproto.Request
		want string
	}{
		{mdmproto.InstallProfile{Payload: profile}, `"profile":"com.acme.wifi"`},
		{mdmproto.RemoveProfile{Identifier: "com.acme.vpn"}, `"profile":"com.acme.vpn"`},
		{mdmproto.RemoveApplication{Identifier: "com.example.crm"}, `"app":"com.example.crm"`},
		{mdmproto.InstallApplication{ITunesStoreID: 361309726}, `"app_store_id":361309726`},
		{mdmproto.InstallApplication{ManifestURL: "https://apps.acme.test/crm.plist"}, `"manifest_url":"https://apps.acme.test/crm.plist"`},
	} {
		req, want := c.req, c.want
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, req, "", admin); err != nil {
			t.Fatalf("%s: %v", req.RequestType(), err)
		}
		entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.command.enqueue"})
		if err != nil || len(entries) == 0 {
			t.Fatalf("no audit entry: %v", err)
		}
		last := entries[len(entries)-1] // oldest first
		details := string(last.Details)
		if !strings.Contains(details, want) || !strings.Contains(details, string(req.RequestType())) {
			t.Errorf("%s's audit entry: %s; want %s", req.RequestType(), details, want)
		}
		if strings.Contains(details, password) {
			t.Errorf("the audit entry holds the profile's content: %s", details)
		}
		if _, ok := req.(mdmproto.InstallProfile); ok {
			var d struct {
				Target map[string]any `json:"target"`
			}
			if json.Unmarshal(last.Details, &d) != nil || d.Target["profile_uuid"] != "5C4C0C5A-1B7E-4C1A-9C3E-2F1D6B7A8E90" || len(d.Target) != 2 {
				t.Errorf("the profile's version, and nothing more: %s", details)
			}
		}
	}
}
