package api

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestLogsCarryNoPersonalDataOrSecrets drives the login, token, tenant and
// admin flows with recognisable personal values and fails if any of them, or
// any secret handed out, shows up in the logs.
func TestLogsCarryNoPersonalDataOrSecrets(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	const (
		email     = "zebulon.canaryfield@pii-canary.test"
		name      = "Zebulon Canaryfield"
		tenant    = "Canaryfield Holdings"
		tokName   = "canaryfield-sync-token"
		wrongPW   = "Canary-Wrong-Password-5521"
		ghostMail = "ghost.canary@pii-canary.test"
		clientIP  = "203.0.113.77"
	)
	canaries := []string{email, name, "Zebulon", "Canaryfield", tenant, tokName, wrongPW, ghostMail, "pii-canary", clientIP, ownerPassword, ownerEmail}

	c := e.customer(tenant)
	base := "/api/v1/tenants/" + c.ID
	var inv InviteView
	e.must(201, e.owner, "POST", base+"/admins", AdminInviteRequest{Email: email, DisplayName: name}, &inv)
	e.must(201, e.owner, "POST", base+"/assignments", AssignmentRequest{AdminID: inv.Admin.ID, RoleID: "administrator"}, nil)
	const pw = "Orchid-Tamarind-Velour-28"
	canaries = append(canaries, pw, inv.SetupCode)
	e.must(200, "", "POST", "/api/v1/auth/setup", SetupRequest{Code: inv.SetupCode, Password: pw}, nil)
	e.do("", "POST", "/api/v1/auth/login", LoginRequest{Email: email, Password: wrongPW, Client: "cli"}, fromIP(clientIP))
	e.do("", "POST", "/api/v1/auth/login", LoginRequest{Email: ghostMail, Password: wrongPW, Client: "cli"}, fromIP(clientIP))
	sec := e.signIn(email, pw)
	canaries = append(canaries, sec, e.owner)
	var nt NewTokenView
	e.must(201, sec, "POST", base+"/tokens", TokenRequest{Name: tokName, RoleID: "readonly"}, &nt)
	canaries = append(canaries, nt.Secret)
	e.must(200, nt.Secret, "GET", base+"/admins", nil, nil)
	newName := name + " Jr"
	e.must(200, e.owner, "PATCH", base+"/admins/"+inv.Admin.ID, AdminPatchRequest{DisplayName: &newName}, nil)
	e.do(sec, "POST", base+"/customers", TenantCreateRequest{Name: tenant + " Sub"}) // refused: customers have no customers
	e.must(200, e.owner, "GET", "/api/v1/tenants/"+e.rootID+"/audit?action=admin.*&actor_id="+email, nil, nil)
	var rs SetupCodeView
	e.must(200, e.owner, "POST", base+"/admins/"+inv.Admin.ID+"/reset-password", nil, &rs)
	canaries = append(canaries, rs.SetupCode)

	logs := e.logs.String()
	if !strings.Contains(logs, "http request") {
		t.Fatal("no request logs captured; the test would prove nothing")
	}
	for _, c := range canaries {
		if c != "" && strings.Contains(strings.ToLower(logs), strings.ToLower(c)) {
			t.Errorf("logs contain %q", c)
		}
	}
}
