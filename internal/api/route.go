package api

import (
	"net/http"
	"strings"

	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/rbac"
	"github.com/steward-mdm/steward/internal/store"
)

// AccessKind is how a route decides who may call it.
type AccessKind string

const (
	// AccessPublic routes need no credential (login, health, the API document).
	AccessPublic AccessKind = "public"
	// AccessPending routes accept a session that has passed the password but
	// not yet the second factor (MFA verification and enrolment).
	AccessPending AccessKind = "pending"
	// AccessSelf routes act on the caller's own account; any full session.
	AccessSelf AccessKind = "self"
	// AccessPermission routes need Permission on the tenant in the path, or
	// on the caller's home tenant when the path names none.
	AccessPermission AccessKind = "permission"
	// AccessPortal routes are for employees, with a portal token; they act
	// on the token's own person only.
	AccessPortal AccessKind = "portal"
)

// Access is a route's authorisation rule. Every route declares one; a test
// fails for a route that declares none.
type Access struct {
	Kind       AccessKind
	Permission rbac.Permission
}

func public() Access                 { return Access{Kind: AccessPublic} }
func pending() Access                { return Access{Kind: AccessPending} }
func self() Access                   { return Access{Kind: AccessSelf} }
func needs(p rbac.Permission) Access { return Access{Kind: AccessPermission, Permission: p} }
func portal() Access                 { return Access{Kind: AccessPortal} }
func (a Access) declared() bool {
	return a.Kind != "" && (a.Kind != AccessPermission || rbac.Known(a.Permission))
}
func (a Access) authenticated() bool     { return a.Kind != AccessPublic }
func (a Access) acceptsPendingMFA() bool { return a.Kind == AccessPending }

// QueryParam documents a query string parameter.
type QueryParam struct {
	Name, Description string
	Type              string // "string", "integer", "boolean"
}

// Route is one operation of the API. The table of routes is the single
// source for the mux, authorisation, the OpenAPI document and the tests that
// enumerate routes.
type Route struct {
	Method  string
	Path    string // Go ServeMux pattern: /api/v1/tenants/{tenant}/admins/{admin}
	Access  Access
	Summary string
	Tag     string
	// SessionOnly routes refuse API tokens (password, MFA, sessions).
	SessionOnly bool
	// Scoped routes honour group-limited role assignments: a caller holding
	// the permission on some groups only may call them, and the handler
	// limits itself to Call.Scope().
	Scoped bool
	// InstallWide routes are authorised on the root provider tenant: what
	// they show spans every tenant, so a customer's Owner must not see it.
	InstallWide bool
	In          any // request body prototype, nil for none
	Out         any // response body prototype, nil for 204
	Query       []QueryParam
	Status      int    // success status; 200 when zero
	MaxBody     int64  // request body limit; MaxBodyBytes when zero
	Produces    string // response media type when not JSON
	Handle      func(*Call) (any, error)
}

// TenantScoped reports whether the path names a tenant.
func (rt Route) TenantScoped() bool { return strings.Contains(rt.Path, "{tenant}") }

// PathParams lists the {names} in the path, in order.
func (rt Route) PathParams() []string {
	var out []string
	for _, seg := range strings.Split(rt.Path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.Trim(seg, "{}"))
		}
	}
	return out
}

func (rt Route) bodyLimit() int64 {
	if rt.MaxBody > 0 {
		return rt.MaxBody
	}
	return MaxBodyBytes
}

func (rt Route) successStatus() int {
	if rt.Status != 0 {
		return rt.Status
	}
	if rt.Out == nil {
		return http.StatusNoContent
	}
	return http.StatusOK
}

// Call is one request on its way through a route's handler.
type Call struct {
	W         http.ResponseWriter
	R         *http.Request
	Principal *iam.Principal // nil on public routes
	// Perms is what the principal holds on Tenant (permission routes only).
	Perms rbac.Set
	// Grants adds the group-limited permissions to Perms.
	Grants iam.Grants
	Tenant string // the {tenant} path value, already authorised
	Actor  iam.Actor
	// Portal is the employee's token on portal routes.
	Portal  *store.PortalToken
	srv     *Server
	maxBody int64 // the route's body limit
}

// Decode reads the JSON body strictly into v.
func (c *Call) Decode(v any) error { return decodeJSON(c.R, v, c.maxBody) }

// Path returns a path parameter.
func (c *Call) Path(name string) string { return c.R.PathValue(name) }

// Query returns a query parameter.
func (c *Call) Query(name string) string { return c.R.URL.Query().Get(name) }
