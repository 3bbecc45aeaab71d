package api

import (
	"bytes"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// browser is a console client: cookie jar, CSRF token, same-origin headers.
type browser struct {
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := e.ts.Client()
	c.Jar = jar
	return &browser{e: e, c: c}
}

func (b *browser) do(method, path string, body []byte, csrf bool, origin string) response {
	b.e.t.Helper()
	req, _ := http.NewRequest(method, b.e.ts.URL+path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf {
		req.Header.Set(CSRFHeader, b.csrf)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}
}

func TestBrowserSessionCookieAndCSRF(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	b := e.browser()
	r := b.do("POST", "/api/v1/auth/login", []byte(`{"email":"`+ownerEmail+`","password":"`+ownerPassword+`","client":"browser"}`), false, e.ts.URL)
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	var lv LoginView
	r.decode(t, &lv)
	if lv.Secret != "" {
		t.Fatal("a browser login must not return the session secret in the body")
	}
	ck := r.header.Get("Set-Cookie")
	for _, want := range []string{SessionCookie + "=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %s", ck, want)
		}
	}
	if lv.State != "mfa_required" {
		t.Fatalf("state %q, want mfa_required", lv.State)
	}
	b.csrf = lv.CSRFToken
	// Pending session: no access beyond the second factor.
	if r := b.do("GET", "/api/v1/me", nil, false, ""); r.status != 401 || r.errorCode() != "mfa_required" {
		t.Fatalf("pending session reached /me: %d %s", r.status, r.body)
	}
	// State change without the CSRF header is refused.
	body := []byte(`{"code":"` + e.code(ownerEmail) + `"}`)
	if r := b.do("POST", "/api/v1/auth/mfa", body, false, ""); r.status != 403 {
		t.Fatalf("MFA without CSRF token: %d %s", r.status, r.body)
	}
	if r := b.do("POST", "/api/v1/auth/mfa", body, true, "https://evil.example"); r.status != 403 {
		t.Fatalf("cross-origin MFA: %d %s", r.status, r.body)
	}
	r = b.do("POST", "/api/v1/auth/mfa", body, true, "")
	if r.status != 200 {
		t.Fatalf("MFA: %d %s", r.status, r.body)
	}
	r.decode(t, &lv)
	old := b.csrf
	b.csrf = lv.CSRFToken
	if old == b.csrf {
		t.Fatal("the CSRF token must change with the session after MFA")
	}
	if r := b.do("GET", "/api/v1/me", nil, false, ""); r.status != 200 {
		t.Fatalf("/me after MFA: %d %s", r.status, r.body)
	}
	if r.header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS header")
	}
	create := []byte(`{"name":"Cookie Customer"}`)
	path := "/api/v1/tenants/" + e.rootID + "/customers"
	if r := b.do("POST", path, create, false, ""); r.status != 403 {
		t.Fatalf("create without CSRF: %d", r.status)
	}
	b.csrf, old = "sws_wrong", b.csrf
	if r := b.do("POST", path, create, true, ""); r.status != 403 {
		t.Fatalf("create with a wrong CSRF token: %d", r.status)
	}
	b.csrf = old
	if r := b.do("POST", path, create, true, e.ts.URL); r.status != 201 {
		t.Fatalf("create with CSRF: %d %s", r.status, r.body)
	}
	if r := b.do("POST", "/api/v1/auth/logout", nil, true, ""); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if r := b.do("GET", "/api/v1/me", nil, false, ""); r.status != 401 {
		t.Fatalf("after logout: %d", r.status)
	}
}

func TestLoginBackoffLockoutAndAudit(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		locked := false
		for i := 0; i < 12; i++ {
			r := e.do("", "POST", "/api/v1/auth/login", LoginRequest{Email: ownerEmail, Password: "Wrong-Password-Guess-1", Client: "cli"})
			if r.status == 423 || (r.status == 429 && r.errorCode() == "account_locked") {
				locked = true
				break
			}
			if r.status != 401 && r.status != 429 {
				t.Fatalf("attempt %d: %d %s", i, r.status, r.body)
			}
			e.clock.advance(2 * time.Minute) // past the back-off delay
		}
		if !locked {
			t.Fatal("no lockout after repeated failures")
		}
		// Even the right password is refused while locked.
		if r := e.do("", "POST", "/api/v1/auth/login", LoginRequest{Email: ownerEmail, Password: ownerPassword, Client: "cli"}); r.status < 400 {
			t.Fatalf("locked account signed in: %d", r.status)
		}
		var entries List[AuditEntryView]
		e.must(200, e.owner, "GET", "/api/v1/tenants/"+e.rootID+"/audit?action=auth.*&limit=100", nil, &entries)
		failures, lockouts := 0, 0
		for _, en := range entries.Items {
			if en.Action == "auth.login" && en.Outcome == "failure" {
				failures++
			}
			if en.Action == "auth.lockout" {
				lockouts++
			}
		}
		if failures < 3 || lockouts != 1 {
			t.Fatalf("audit has %d failed logins and %d lockouts", failures, lockouts)
		}
		// Past the lockout the password works again.
		e.clock.advance(16 * time.Minute)
		e.signIn(ownerEmail, ownerPassword)
	})
}

func TestAPITokens(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	base := "/api/v1/tenants/" + e.rootID
	var nt NewTokenView
	e.must(201, e.owner, "POST", base+"/tokens", TokenRequest{Name: "inventory sync", RoleID: "auditor", ExpiresInDays: 30}, &nt)
	if !strings.HasPrefix(nt.Secret, "stt_") {
		t.Fatalf("token secret %q", nt.Secret)
	}
	var listed List[TokenView]
	r := e.must(200, e.owner, "GET", base+"/tokens", nil, &listed)
	if bytes.Contains(r.body, []byte(nt.Secret)) {
		t.Fatal("token list shows the secret")
	}
	e.must(200, nt.Secret, "GET", base+"/audit", nil, nil)
	// Auditor tokens cannot manage anything.
	if r := e.do(nt.Secret, "POST", base+"/customers", TenantCreateRequest{Name: "Nope"}); r.status != 403 {
		t.Fatalf("auditor token created a tenant: %d", r.status)
	}
	// Tokens cannot mint tokens.
	if r := e.do(nt.Secret, "POST", base+"/tokens", TokenRequest{Name: "x", RoleID: "readonly"}); r.status != 403 {
		t.Fatalf("token created a token: %d", r.status)
	}
	var tv TokenView
	e.must(200, e.owner, "GET", base+"/tokens/"+nt.Token.ID, nil, &tv)
	if tv.LastUsedAt == nil || tv.LastUsedIP == "" {
		t.Fatalf("last use not recorded: %+v", tv)
	}
	e.must(204, e.owner, "DELETE", base+"/tokens/"+nt.Token.ID, nil, nil)
	if r := e.do(nt.Secret, "GET", base+"/audit", nil); r.status != 401 {
		t.Fatalf("revoked token works: %d", r.status)
	}
	// A help desk admin cannot hand out a role stronger than their own.
	_, hd := e.admin(e.rootID, "helen@steward.test", "helpdesk")
	if r := e.do(hd, "POST", base+"/tokens", TokenRequest{Name: "x", RoleID: "owner"}); r.status != 403 {
		t.Fatalf("help desk minted an owner token: %d %s", r.status, r.body)
	}
	if r := e.do(hd, "GET", base+"/admins", nil); r.status != 403 {
		t.Fatalf("help desk listed admins: %d", r.status)
	}
}

func TestIPAllowlist(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	c := e.customer("Allowlisted")
	_, sec := e.admin(c.ID, "ada@allow.test", "administrator")
	path := "/api/v1/tenants/" + c.ID
	// An allowlist that excludes the caller's own address is refused.
	if r := e.do(sec, "PATCH", path, map[string]any{"allowed_cidrs": []string{"10.9.0.0/16"}}); r.status != 400 {
		t.Fatalf("self-excluding allowlist: %d %s", r.status, r.body)
	}
	e.must(200, sec, "PATCH", path, map[string]any{"allowed_cidrs": []string{"127.0.0.1/32", "192.0.2.0/24"}}, nil)
	if r := e.do(sec, "GET", path, nil, fromIP("198.51.100.7")); r.status != 403 {
		t.Fatalf("request from outside the allowlist: %d", r.status)
	}
	if r := e.do(sec, "GET", path, nil, fromIP("192.0.2.9")); r.status != 200 {
		t.Fatalf("request from inside the allowlist: %d %s", r.status, r.body)
	}
	// The provider's owner, whose own tenant has no allowlist, meets the
	// customer's when addressing it.
	if r := e.do(e.owner, "GET", path, nil, fromIP("198.51.100.7")); r.status != 403 {
		t.Fatalf("provider's request from outside the customer's allowlist: %d", r.status)
	}
	if r := e.do(e.owner, "GET", path, nil, fromIP("192.0.2.9")); r.status != 200 {
		t.Fatalf("provider's request from inside the customer's allowlist: %d %s", r.status, r.body)
	}
	r := e.do("", "POST", "/api/v1/auth/login", LoginRequest{Email: "ada@allow.test", Password: "Velvet-Harbour-Tundra-93", Client: "cli"}, fromIP("198.51.100.7"))
	if r.status != 401 {
		t.Fatalf("login from outside the allowlist: %d %s (want the generic 401)", r.status, r.body)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		path := "/api/v1/tenants/" + e.rootID + "/customers"
		before := e.auditHead(e.rootID)
		cases := []struct {
			name   string
			body   []byte
			ctype  string
			status int
		}{
			{"malformed", []byte(`{"name":`), "application/json", 400},
			{"unknown field", []byte(`{"name":"X","colour":"red"}`), "application/json", 400},
			{"wrong type", []byte(`{"name":42}`), "application/json", 400},
			{"two objects", []byte(`{"name":"X"}{"name":"Y"}`), "application/json", 400},
			{"empty", []byte(``), "application/json", 400},
			{"array", []byte(`[1,2]`), "application/json", 400},
			{"oversized", append(append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), MaxBodyBytes)...), '"', '}'), "application/json", 413},
			{"not JSON", []byte(`name=X`), "application/x-www-form-urlencoded", 415},
			{"bad value", []byte(`{"name":"X","allowed_cidrs":["not-an-ip"]}`), "application/json", 400},
		}
		for _, c := range cases {
			req, _ := http.NewRequest("POST", e.ts.URL+path, bytes.NewReader(c.body))
			req.Header.Set("Content-Type", c.ctype)
			req.Header.Set("Authorization", "Bearer "+e.owner)
			req.Header.Set("X-Forwarded-For", "127.0.0.1")
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			r := response{status: resp.StatusCode, body: buf.Bytes()}
			if r.status != c.status || r.errorCode() == "" {
				t.Errorf("%s: status %d (want %d), body %s", c.name, r.status, c.status, r.body)
			}
		}
		for _, p := range []string{"/api/v1/tenants/" + e.rootID + "/admins/0190a0b0-0000-7000-8000-000000000000",
			"/api/v1/tenants/not-a-uuid", "/api/v1/tenants/" + e.rootID + "/roles/nope"} {
			if r := e.do(e.owner, "GET", p, nil); r.status != 404 || r.errorCode() != "not_found" {
				t.Errorf("GET %s: %d %s", p, r.status, r.body)
			}
		}
		if r := e.do(e.owner, "GET", "/api/v1/tenants/"+e.rootID+"/audit?limit=0", nil); r.status != 400 {
			t.Errorf("limit=0: %d", r.status)
		}
		var customers List[TenantView]
		e.must(200, e.owner, "GET", path, nil, &customers)
		if len(customers.Items) != 0 {
			t.Errorf("bad input created tenants: %+v", customers.Items)
		}
		if n := e.changesSince(e.rootID, before.Seq); n != 0 {
			t.Errorf("bad input wrote %d audit entries besides its refusals", n)
		}
		if e.auditHead(e.rootID).Seq == before.Seq {
			t.Error("refused changes were not audited")
		}
	})
}

func TestAuditAPI(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	base := "/api/v1/tenants/" + e.rootID
	for i := 0; i < 5; i++ {
		e.customer("Customer " + string(rune('A'+i)))
	}
	var page1, page2 List[AuditEntryView]
	e.must(200, e.owner, "GET", base+"/audit?action=tenant.create&limit=3", nil, &page1)
	if len(page1.Items) != 3 || page1.NextCursor == "" {
		t.Fatalf("first page: %+v", page1)
	}
	e.must(200, e.owner, "GET", base+"/audit?action=tenant.create&limit=3&cursor="+page1.NextCursor, nil, &page2)
	if len(page2.Items) < 2 || page2.Items[0].Seq >= page1.Items[2].Seq {
		t.Fatalf("second page does not continue the first: %+v", page2.Items)
	}
	var cp CheckpointView
	e.must(201, e.owner, "POST", base+"/audit/checkpoints", nil, &cp)
	var v VerifyView
	e.must(200, e.owner, "POST", base+"/audit/verify", nil, &v)
	if !v.OK || v.Checkpoints < 1 {
		t.Fatalf("verify: %+v", v)
	}
	r := e.must(200, e.owner, "GET", base+"/audit/export", nil, nil)
	if !bytes.Contains(r.body, []byte(`"checkpoint"`)) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/jsonl") {
		t.Fatalf("export: %s", r.header.Get("Content-Type"))
	}
	var pk PublicKeyView
	e.must(200, "", "GET", "/api/v1/audit/public-key", nil, &pk)
	if !strings.Contains(pk.PublicKeyPEM, "PUBLIC KEY") {
		t.Fatalf("public key: %+v", pk)
	}
}
