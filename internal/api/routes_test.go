package api

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/rbac"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// sampleBodies are valid request bodies, so that a route's answer to a
// foreign ID is not masked by a validation error.
var sampleBodies = map[reflect.Type]any{
	reflect.TypeOf(RoleRequest{}):         RoleRequest{Name: "Sample", Permissions: []string{"device.read"}},
	reflect.TypeOf(TenantCreateRequest{}): TenantCreateRequest{Name: "Sample"},
	reflect.TypeOf(AdminInviteRequest{}):  AdminInviteRequest{Email: "sample@steward.test", DisplayName: "Sample"},
	reflect.TypeOf(TokenRequest{}):        TokenRequest{Name: "sample", RoleID: "readonly"},
	reflect.TypeOf(AssignmentRequest{}):   AssignmentRequest{AdminID: "00000000-0000-0000-0000-000000000000", RoleID: "readonly"},
	reflect.TypeOf(CodeRequest{}):         CodeRequest{Code: "000000"},
	reflect.TypeOf(ReasonRequest{}):       ReasonRequest{Reason: "sample reason for the isolation test"},
	reflect.TypeOf(DecisionRequest{}):     DecisionRequest{Approve: true},
	reflect.TypeOf(RevealRequest{}):       RevealRequest{Fields: []string{"device.serial_number"}, Reason: "sample reason for the isolation test"},
	reflect.TypeOf(WithdrawRequest{}):     WithdrawRequest{ConsentID: "00000000-0000-0000-0000-000000000000"},
	reflect.TypeOf(PortalTokenRequest{}):  PortalTokenRequest{TTLHours: 24},
	reflect.TypeOf(ConsentRequest{}):      ConsentRequest{Ownership: "personal", NoticeVersion: 1, Language: "en"},
	reflect.TypeOf(CommandRequest{}):      CommandRequest{RequestType: "SecurityInfo"},
}

func reflectType(v any) reflect.Type { return reflect.TypeOf(v) }

func sampleBody(rt Route) any {
	if rt.In == nil {
		return nil
	}
	if b, ok := sampleBodies[reflectType(rt.In)]; ok {
		return b
	}
	return rt.In
}

func TestEveryRouteDeclaresAccess(t *testing.T) {
	s := New(Options{})
	seen := map[string]bool{}
	for _, rt := range s.Routes() {
		key := rt.Method + " " + rt.Path
		if !rt.Access.declared() {
			t.Errorf("%s declares no access rule (or an unknown permission %q)", key, rt.Access.Permission)
		}
		if rt.Access.Kind == AccessPermission && !rbac.Known(rt.Access.Permission) {
			t.Errorf("%s needs unknown permission %q", key, rt.Access.Permission)
		}
		if rt.TenantScoped() && rt.Access.Kind != AccessPermission {
			t.Errorf("%s names a tenant but is not authorised by a permission on it", key)
		}
		if rt.Handle == nil || rt.Summary == "" || rt.Tag == "" {
			t.Errorf("%s lacks a handler, summary or tag", key)
		}
		if seen[key] {
			t.Errorf("%s is declared twice", key)
		}
		seen[key] = true
	}
}

// TestTenantIsolation is generated from the route table: an admin of tenant
// A (on portal routes, a person of tenant A) gets 404 for every route
// addressing tenant B or B's objects.
func TestTenantIsolation(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		a, b := e.customer("Alpha Customer"), e.customer("Bravo Customer")
		_, aSecret := e.admin(a.ID, "alice@alpha.test", "owner")
		var aPerson SubjectView
		e.must(201, aSecret, "POST", "/api/v1/tenants/"+a.ID+"/subjects", SubjectRequest{Email: "ann@alpha.test"}, &aPerson)
		var aPortal PortalTokenView
		e.must(201, aSecret, "POST", "/api/v1/tenants/"+a.ID+"/subjects/"+aPerson.ID+"/portal-tokens", PortalTokenRequest{}, &aPortal)
		bAdmin, bSecret := e.admin(b.ID, "bob@bravo.test", "owner")

		var role RoleView
		e.must(201, bSecret, "POST", "/api/v1/tenants/"+b.ID+"/roles", sampleBodies[reflect.TypeOf(RoleRequest{})], &role)
		var tok NewTokenView
		e.must(201, bSecret, "POST", "/api/v1/tenants/"+b.ID+"/tokens", TokenRequest{Name: "bravo", RoleID: "readonly"}, &tok)
		var asgs List[AssignmentView]
		e.must(200, bSecret, "GET", "/api/v1/tenants/"+b.ID+"/assignments", nil, &asgs)
		var sessions List[SessionView]
		e.must(200, bSecret, "GET", "/api/v1/me/sessions", nil, &sessions)
		pf := e.privacyFixtures(b.ID, bSecret)
		mf := e.manageFixtures(b.ID, bSecret, pf.device)
		cmd := store.Command{ID: store.NewID(), TenantID: b.ID, DeviceID: pf.device, RequestType: "SecurityInfo", Payload: []byte("sealed"),
			State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: time.Now()}
		channel := store.AppleUserChannel{ID: store.NewID(), TenantID: b.ID, DeviceID: pf.device, UserIndex: []byte("u"), AccountIndex: []byte("a"),
			UpdatedAt: time.Now()}
		action := store.DeviceAction{ID: store.NewID(), TenantID: b.ID, BatchID: store.NewID(), DeviceID: pf.device, Action: "lock",
			Reason: "bravo's lock", RequestedBy: "admin:x", State: store.ActionQueued, SealedPIN: []byte("sealed"), CreatedAt: time.Now(),
			UpdatedAt: time.Now()}
		enrolment := store.Enrolment{ID: store.NewID(), TenantID: b.ID, Ownership: "corporate", NoticeVersion: 1, SecretHash: []byte("bravo's link"),
			State: store.EnrolmentOpen, CreatedBy: "admin:x", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := st.Tx(context.Background(), func(q store.Queries) error {
			if _, err := q.AppleUserChannels().Open(context.Background(), channel); err != nil {
				return err
			}
			if err := q.Enrolments().Create(context.Background(), enrolment); err != nil {
				return err
			}
			if err := q.Actions().Create(context.Background(), []store.DeviceAction{action}); err != nil {
				return err
			}
			return q.Commands().Enqueue(context.Background(), []store.Command{cmd}, 10)
		}); err != nil {
			t.Fatal(err)
		}
		foreign := map[string]string{
			"tenant": b.ID, "admin": bAdmin, "role": role.ID, "token": tok.Token.ID,
			"assignment": asgs.Items[0].ID, "session": sessions.Items[0].ID,
			"subject": pf.subject, "device": pf.device, "approval": pf.approval, "erasure": pf.erasure,
			"group": mf.group, "profile": mf.profile, "policy": mf.policy, "batch": mf.batch, "app": mf.app, "schedule": mf.schedule,
			"command": cmd.ID, "channel": channel.ID, "action": action.ID, "enrolment": enrolment.ID,
			"kind": "inventory", // a report kind: the same in every tenant, not an object
		}

		for _, rt := range e.srv.Routes() {
			params := rt.PathParams()
			if len(params) == 0 || !rt.Access.authenticated() {
				continue // public routes answer anyone alike; see their own tests
			}
			key := rt.Method + " " + rt.Path
			// Everything foreign: tenant B and B's objects.
			path := rt.Path
			for _, p := range params {
				id, ok := foreign[p]
				if !ok {
					t.Fatalf("%s: no foreign fixture for {%s}; add one to this test", key, p)
				}
				path = strings.Replace(path, "{"+p+"}", id, 1)
			}
			secret := aSecret
			if rt.Access.Kind == AccessPortal {
				secret = aPortal.Token // a person of tenant A
			}
			if r := e.do(secret, rt.Method, path, sampleBody(rt)); r.status != http.StatusNotFound {
				t.Errorf("%s as tenant A's owner (or person) on tenant B: status %d, want 404: %s", key, r.status, r.body)
			}
			// Own tenant, foreign object.
			if rt.TenantScoped() && len(params) > 1 && !slices.Contains(params, "kind") {
				path = strings.Replace(rt.Path, "{tenant}", a.ID, 1)
				for _, p := range params[1:] {
					path = strings.Replace(path, "{"+p+"}", foreign[p], 1)
				}
				if r := e.do(aSecret, rt.Method, path, sampleBody(rt)); r.status != http.StatusNotFound {
					t.Errorf("%s on tenant A with B's object: status %d, want 404: %s", key, r.status, r.body)
				}
			}
		}

		// Object IDs in bodies: assigning B's admin on A.
		r := e.do(aSecret, "POST", "/api/v1/tenants/"+a.ID+"/assignments", AssignmentRequest{AdminID: bAdmin, RoleID: "readonly"})
		if r.status != http.StatusNotFound {
			t.Errorf("assigning tenant B's admin on A: status %d, want 404: %s", r.status, r.body)
		}
		// The tenant list shows A only.
		var visible List[TenantView]
		e.must(200, aSecret, "GET", "/api/v1/tenants", nil, &visible)
		if len(visible.Items) != 1 || visible.Items[0].ID != a.ID {
			t.Errorf("tenant A's owner sees %+v, want only tenant A", visible.Items)
		}
		// B's objects are untouched.
		if got, err := st.Read().Enrolments().Get(context.Background(), b.ID, enrolment.ID); err != nil || got.State != store.EnrolmentOpen {
			t.Errorf("tenant B's enrolment after tenant A's requests: %+v, %v", got, err)
		}
		e.must(200, bSecret, "GET", "/api/v1/tenants/"+b.ID+"/tokens/"+tok.Token.ID, nil, nil)
		e.must(200, bSecret, "GET", "/api/v1/tenants/"+b.ID+"/roles/"+role.ID, nil, nil)
	})
}

// TestUnauthenticatedRoutes checks that every non-public route refuses a
// request without credentials.
func TestUnauthenticatedRoutes(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	for _, rt := range e.srv.Routes() {
		if !rt.Access.authenticated() {
			continue
		}
		path := rt.Path
		for _, p := range rt.PathParams() {
			path = strings.Replace(path, "{"+p+"}", e.rootID, 1)
		}
		if r := e.do("", rt.Method, path, sampleBody(rt)); r.status != http.StatusUnauthorized || r.errorCode() != "unauthenticated" {
			t.Errorf("%s %s without credentials: status %d %s", rt.Method, rt.Path, r.status, r.body)
		}
	}
}

func TestOpenAPIDocumentMatchesRoutes(t *testing.T) {
	s := New(Options{})
	generated := s.OpenAPIJSON()
	const file = "../../docs/openapi.json"
	if os.Getenv("STEWARD_UPDATE_OPENAPI") == "1" {
		if err := os.WriteFile(file, generated, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v; generate it with STEWARD_UPDATE_OPENAPI=1 go test ./internal/api -run TestOpenAPI", err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(committed, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	ops := 0
	for _, rt := range s.Routes() {
		if _, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]; !ok {
			t.Errorf("%s %s is served but missing from docs/openapi.json", rt.Method, rt.Path)
		}
	}
	for _, methods := range doc.Paths {
		ops += len(methods)
	}
	if ops != len(s.Routes()) {
		t.Errorf("docs/openapi.json documents %d operations, the API serves %d", ops, len(s.Routes()))
	}
	if string(committed) != string(generated) {
		t.Errorf("docs/openapi.json differs from the routes; regenerate with STEWARD_UPDATE_OPENAPI=1 go test ./internal/api -run TestOpenAPI")
	}
	e := newEnv(t, storetest.OpenSQLite(t))
	if r := e.do("", "GET", "/api/v1/openapi.json", nil); r.status != 200 || string(r.body) != string(generated) {
		t.Errorf("served document differs from the generated one (status %d)", r.status)
	}
}

// TestActionRoutesListEveryAction: the remote-action routes' summaries and
// the OpenAPI document's action values come from the actions table, so an
// action added there (os_update was once missing) is documented too.
func TestActionRoutesListEveryAction(t *testing.T) {
	s := New(Options{})
	kinds := actions.Kinds()
	if len(kinds) == 0 || !slices.Contains(kinds, string(actions.OSUpdate)) {
		t.Fatalf("actions.Kinds() = %v", kinds)
	}
	for _, path := range []string{"/api/v1/tenants/{tenant}/devices/{device}/actions", "/api/v1/tenants/{tenant}/actions"} {
		i := slices.IndexFunc(s.Routes(), func(rt Route) bool { return rt.Method == "POST" && rt.Path == path })
		if i < 0 {
			t.Fatalf("no route POST %s", path)
		}
		for _, k := range kinds {
			// As a word: lost_mode is also inside end_lost_mode.
			if !regexp.MustCompile(`\b` + k + `\b`).MatchString(s.Routes()[i].Summary) {
				t.Errorf("POST %s: the summary %q leaves out %s", path, s.Routes()[i].Summary, k)
			}
		}
	}
	for _, schema := range []string{"DeviceActionRequest", "Request", "Batch"} {
		if got := openAPIEnum(t, s, schema, "action"); !slices.Equal(got, kinds) {
			t.Errorf("%s.action lists %v, want %v", schema, got, kinds)
		}
	}
}

// openAPIEnum returns the enum the OpenAPI document of s gives property of
// schema.
func openAPIEnum(t *testing.T, s *Server, schema, property string) []string {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(s.OpenAPIJSON(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas[schema].Properties[property].Enum
}

// TestOpenAPIRequiresOnlyWhatIsAlwaysThere: a field left out when empty
// (omitempty, omitzero) or a pointer is optional in the document, so a
// client validating responses or requests against it does not refuse what
// the API sends or takes.
func TestOpenAPIRequiresOnlyWhatIsAlwaysThere(t *testing.T) {
	type sample struct {
		Always    string    `json:"always"`
		WhenSet   string    `json:"when_set,omitempty"`
		WhenZero  time.Time `json:"when_zero,omitzero"`
		MaybeNone *int      `json:"maybe_none"`
	}
	g := &schemaGen{components: map[string]any{}}
	got := g.structSchema(reflect.TypeOf(sample{}))
	if req, _ := got["required"].([]string); !slices.Equal(req, []string{"always"}) {
		t.Errorf("required %v, want [always]", req)
	}
}
