package api

import (
	"net/http"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/rbac"
	"github.com/steward-mdm/steward/internal/store"
)

type BootstrapRequest struct {
	Code         string `json:"code"`
	Organisation string `json:"organisation"`
	Email        string `json:"email"`
	DisplayName  string `json:"display_name"`
	Password     string `json:"password"`
}

type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// Client is "browser" (cookie + CSRF token) or "cli" (bearer secret).
	Client string `json:"client"`
}

// LoginView says what the session may do next. Secret is returned to CLI
// clients only; browsers get it as an HttpOnly cookie.
type LoginView struct {
	State     string    `json:"state"`
	SessionID string    `json:"session_id"`
	Secret    string    `json:"secret,omitempty"`
	CSRFToken string    `json:"csrf_token,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

type MFARequest struct {
	Code         string `json:"code,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
}

type SetupRequest struct {
	Code     string `json:"code"`
	Password string `json:"password"`
}

func (s *Server) bootstrap(c *Call) (any, error) {
	var in BootstrapRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	a, err := s.iam.Bootstrap(c.R.Context(), in.Code, iam.BootstrapInput{Organisation: in.Organisation, Email: in.Email,
		DisplayName: in.DisplayName, Password: in.Password}, c.Actor)
	if err != nil {
		return nil, err
	}
	return adminView(a), nil
}

func (s *Server) login(c *Call) (any, error) {
	var in LoginRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.Client == "" {
		in.Client = string(store.SessionBrowser)
	}
	if in.Client == string(store.SessionBrowser) && !sameOrigin(c.R) {
		return nil, errOrigin
	}
	res, err := s.iam.Login(c.R.Context(), in.Email, in.Password, store.SessionKind(in.Client), c.Actor)
	if err != nil {
		return nil, err
	}
	return s.startSession(c, res), nil
}

// startSession hands a new session to the client: a cookie for browsers, the
// secret in the body for the CLI.
func (s *Server) startSession(c *Call, res iam.LoginResult) LoginView {
	v := LoginView{State: string(res.State), SessionID: res.Session.ID, ExpiresAt: res.Session.AbsExpiry}
	if res.Session.Kind == store.SessionCLI {
		v.Secret = res.Secret
		return v
	}
	v.CSRFToken = res.CSRFToken
	http.SetCookie(c.W, &http.Cookie{Name: SessionCookie, Value: res.Secret, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Expires: res.Session.AbsExpiry})
	return v
}

func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

func (s *Server) verifyMFA(c *Call) (any, error) {
	var in MFARequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	res, err := s.iam.VerifyMFA(c.R.Context(), c.Principal, in.Code, in.RecoveryCode, c.Actor)
	if err != nil {
		return nil, err
	}
	return s.startSession(c, res), nil
}

func (s *Server) completeSetup(c *Call) (any, error) {
	var in SetupRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	a, err := s.iam.CompleteSetup(c.R.Context(), in.Code, in.Password, c.Actor)
	if err != nil {
		return nil, err
	}
	return adminView(a), nil
}

func (s *Server) logout(c *Call) (any, error) {
	if err := s.iam.Logout(c.R.Context(), c.Principal, c.Actor); err != nil {
		return nil, err
	}
	clearSessionCookie(c.W)
	return nil, nil
}

// MeView is the caller, with what they hold on their home tenant.
type MeView struct {
	Admin       AdminView    `json:"admin"`
	Via         string       `json:"via"` // "session" or "token"
	Session     *SessionView `json:"session,omitempty"`
	TokenID     string       `json:"token_id,omitempty"`
	HomeTenant  TenantView   `json:"home_tenant"`
	Permissions []string     `json:"permissions"`
}

func (s *Server) me(c *Call) (any, error) {
	ctx := c.R.Context()
	p := c.Principal
	a, err := s.iam.GetAdminByID(ctx, p.AdminID)
	if err != nil {
		return nil, err
	}
	home, err := s.iam.GetTenant(ctx, p.HomeTenant)
	if err != nil {
		return nil, err
	}
	perms, err := s.iam.Permissions(ctx, p, p.HomeTenant)
	if err != nil {
		return nil, err
	}
	v := MeView{Admin: adminView(a), Via: "session", HomeTenant: tenantView(home), Permissions: permStrings(perms)}
	if p.Token != nil {
		v.Via, v.TokenID = "token", p.Token.ID
	} else {
		sv := sessionView(*p.Session, p.Session.ID)
		v.Session = &sv
	}
	return v, nil
}

func permStrings(set rbac.Set) []string {
	out := []string{}
	for _, p := range set.Sorted() {
		out = append(out, string(p))
	}
	return out
}

type PasswordChangeRequest struct {
	Current string `json:"current_password"`
	New     string `json:"new_password"`
}

func (s *Server) changePassword(c *Call) (any, error) {
	var in PasswordChangeRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return nil, s.iam.ChangePassword(c.R.Context(), c.Principal, in.Current, in.New, c.Actor)
}

func (s *Server) listSessions(c *Call) (any, error) {
	rows, err := s.iam.ListSessions(c.R.Context(), c.Principal)
	if err != nil {
		return nil, err
	}
	current := c.Principal.Session.ID
	return pageOf(c, rows, func(x store.Session) SessionView { return sessionView(x, current) }, func(x store.Session) string { return x.ID })
}

func (s *Server) revokeSession(c *Call) (any, error) {
	return nil, s.iam.RevokeSession(c.R.Context(), c.Principal, c.Path("session"), c.Actor)
}

type CountView struct {
	Count int `json:"count"`
}

func (s *Server) revokeOtherSessions(c *Call) (any, error) {
	n, err := s.iam.RevokeOtherSessions(c.R.Context(), c.Principal, c.Actor)
	return CountView{Count: n}, err
}

type MFAEnrollView struct {
	Secret string `json:"secret"`
	URI    string `json:"otpauth_uri"`
}

type CodeRequest struct {
	Code string `json:"code"`
}

type MFAConfirmView struct {
	RecoveryCodes []string   `json:"recovery_codes"`
	Login         *LoginView `json:"login,omitempty"`
}

type RecoveryCodesView struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

func (s *Server) beginMFA(c *Call) (any, error) {
	e, err := s.iam.BeginMFAEnrollment(c.R.Context(), c.Principal, c.Actor)
	return MFAEnrollView{Secret: e.Secret, URI: e.URI}, err
}

func (s *Server) confirmMFA(c *Call) (any, error) {
	var in CodeRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	res, err := s.iam.ConfirmMFA(c.R.Context(), c.Principal, in.Code, c.Actor)
	if err != nil {
		return nil, err
	}
	v := MFAConfirmView{RecoveryCodes: res.RecoveryCodes}
	if res.Login != nil {
		lv := s.startSession(c, *res.Login)
		v.Login = &lv
	}
	return v, nil
}

func (s *Server) regenerateRecoveryCodes(c *Call) (any, error) {
	var in CodeRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	codes, err := s.iam.RegenerateRecoveryCodes(c.R.Context(), c.Principal, in.Code, c.Actor)
	return RecoveryCodesView{RecoveryCodes: codes}, err
}

func (s *Server) disableMFA(c *Call) (any, error) {
	var in CodeRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return nil, s.iam.DisableMFA(c.R.Context(), c.Principal, in.Code, c.Actor)
}

// PermissionsView documents the permission vocabulary for custom roles.
type PermissionsView struct {
	Permissions []PermissionDoc `json:"permissions"`
	Roles       []RoleView      `json:"builtin_roles"`
}

type PermissionDoc struct {
	Permission  string `json:"permission"`
	Description string `json:"description"`
}

func (s *Server) listPermissions(c *Call) (any, error) {
	v := PermissionsView{}
	for _, d := range rbac.All {
		v.Permissions = append(v.Permissions, PermissionDoc{Permission: string(d.Permission), Description: d.Description})
	}
	for _, b := range rbac.Builtin {
		v.Roles = append(v.Roles, roleView(iam.BuiltinRole(b)))
	}
	return v, nil
}

func (s *Server) metrics(c *Call) (any, error) {
	if s.opts.Metrics == nil {
		return nil, apperr.New(apperr.KindNotFound, "metrics are not enabled on this listener")
	}
	s.opts.Metrics.ServeHTTP(c.W, c.R)
	return streamed, nil
}
