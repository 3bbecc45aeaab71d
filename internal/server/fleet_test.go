package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
)

// fleet is a whole Steward (API and device endpoints) on a loopback TLS
// server, with simulated devices and admins signed in through the API.
type testFleet struct {
	t      *testing.T
	ctx    context.Context
	app    *App
	ts     *httptest.Server
	tenant string
	owner  string // session secrets
}

const fleetPassword = "Quasar-Lantern-Mosaic-47"

func newFleet(t *testing.T, st store.Store) *testFleet {
	t.Helper()
	ctx := context.Background()
	cfg := Config{Data: t.TempDir(), AllowMFAOptional: true, TrustedProxies: []string{"127.0.0.1/32"}, MDMClientCertHeader: "X-SSL-Client-Cert"}
	app, err := OpenWith(ctx, cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h, err := app.Handler(nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	app.MDM.SetPublicURL(ts.URL)
	owner, err := app.IAM.BootstrapDirect(ctx, iam.BootstrapInput{Organisation: "Fleet Org", Email: "owner@fleet.test",
		DisplayName: "Olive Owner", Password: fleetPassword})
	if err != nil {
		t.Fatal(err)
	}
	f := &testFleet{t: t, ctx: ctx, app: app, ts: ts, tenant: owner.TenantID}
	f.owner = f.signIn("owner@fleet.test", fleetPassword)
	for _, o := range []string{"corporate", "personal"} {
		f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: o,
			Translations: []privacy.Translation{{Language: "en", Title: "Devices", Body: "What we manage."}}}, nil)
	}
	pem, err := sim.PushCertificatePEM("com.apple.mgmt.External." + uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	f.must(200, f.owner, "PUT", f.path("/apple/push-certificate"), api.PushCertificateRequest{Certificate: base64.StdEncoding.EncodeToString(pem)}, nil)
	return f
}

func (f *testFleet) path(p string) string { return "/api/v1/tenants/" + f.tenant + p }

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (f *testFleet) do(secret, method, path string, body any, headers ...string) reply {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, f.ts.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: raw}
}

func (f *testFleet) must(want int, secret, method, path string, body, out any) reply {
	f.t.Helper()
	r := f.do(secret, method, path, body)
	if r.status != want {
		f.t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			f.t.Fatalf("decoding %s: %v", r.body, err)
		}
	}
	return r
}

func (f *testFleet) signIn(email, pw string) string {
	f.t.Helper()
	var lv api.LoginView
	f.must(200, "", "POST", "/api/v1/auth/login", api.LoginRequest{Email: email, Password: pw, Client: "cli"}, &lv)
	if lv.State != "complete" {
		f.t.Fatalf("login state %q", lv.State)
	}
	return lv.Secret
}

// admin invites an admin with a role (limited to groups when given) and
// signs them in; it returns their ID and session.
func (f *testFleet) admin(email, role string, groups ...string) (string, string) {
	f.t.Helper()
	var inv api.InviteView
	f.must(201, f.owner, "POST", f.path("/admins"), api.AdminInviteRequest{Email: email, DisplayName: "Test " + strings.Split(email, "@")[0]}, &inv)
	f.must(201, f.owner, "POST", f.path("/assignments"), api.AssignmentRequest{AdminID: inv.Admin.ID, RoleID: role, Groups: groups}, nil)
	f.must(200, "", "POST", "/api/v1/auth/setup", api.SetupRequest{Code: inv.SetupCode, Password: fleetPassword}, nil)
	return inv.Admin.ID, f.signIn(email, fleetPassword)
}

// enrol enrols a simulated device with an enrolment in group (may be "")
// and answers its initial inventory; it returns the device and its ID.
func (f *testFleet) enrol(ownership, subjectID, group string, adjust func(*sim.Device)) (*sim.Device, string) {
	f.t.Helper()
	d, id := f.enrolUnpolled(ownership, subjectID, group, adjust)
	f.poll(d)
	return d, id
}

// enrolUnpolled is enrol without the first poll: the device has answered
// no command yet, its first DeviceInformation included.
func (f *testFleet) enrolUnpolled(ownership, subjectID, group string, adjust func(*sim.Device)) (*sim.Device, string) {
	f.t.Helper()
	var enr api.NewEnrolmentView
	f.must(201, f.owner, "POST", f.path("/enrolments"), api.EnrolmentRequest{Ownership: ownership, SubjectID: subjectID, GroupID: group}, &enr)
	d, err := sim.New(f.ts.Client(), false)
	if err != nil {
		f.t.Fatal(err)
	}
	d.Personal = privacy.Ownership(ownership).PersonallyOwned()
	if adjust != nil {
		adjust(d)
	}
	if err := d.Enrol(f.ctx, enr.Link, false); err != nil {
		f.t.Fatalf("enrolment: %v", err)
	}
	var list api.List[api.EnrolmentView]
	f.must(200, f.owner, "GET", f.path("/enrolments?limit=1000"), nil, &list)
	for _, e := range list.Items {
		if e.ID == enr.Enrolment.ID {
			return d, e.DeviceID
		}
	}
	f.t.Fatal("the enrolment names no device")
	return nil, ""
}

// poll lets the device fetch and answer everything queued for it.
func (f *testFleet) poll(d *sim.Device) int {
	f.t.Helper()
	n, err := d.Poll(f.ctx)
	if err != nil {
		f.t.Fatalf("poll: %v", err)
	}
	return n
}

func (f *testFleet) device(secret, id string) api.DeviceView {
	f.t.Helper()
	var v api.DeviceDetailView
	f.must(200, secret, "GET", f.path("/devices/"+id), nil, &v)
	return v.DeviceView
}

func (f *testFleet) devices(secret, query string) []api.DeviceView {
	f.t.Helper()
	var l api.List[api.DeviceView]
	f.must(200, secret, "GET", f.path("/devices?"+query), nil, &l)
	return l.Items
}

func ids(vs []api.DeviceView) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}
