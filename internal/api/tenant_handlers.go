package api

import (
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

type TenantCreateRequest struct {
	Name         string   `json:"name"`
	Slug         string   `json:"slug,omitempty"`
	RequireMFA   bool     `json:"require_mfa,omitempty"`
	AllowedCIDRs []string `json:"allowed_cidrs,omitempty"`
}

type TenantPatchRequest struct {
	Name         *string   `json:"name,omitempty"`
	RequireMFA   *bool     `json:"require_mfa,omitempty"`
	AllowedCIDRs *[]string `json:"allowed_cidrs,omitempty"`
}

func (s *Server) listVisibleTenants(c *Call) (any, error) {
	ts, err := s.iam.VisibleTenants(c.R.Context(), c.Principal, "tenant.read")
	if err != nil {
		return nil, err
	}
	return pageOf(c, ts, tenantView, func(t store.Tenant) string { return t.ID })
}

func (s *Server) getTenant(c *Call) (any, error) {
	t, err := s.iam.GetTenant(c.R.Context(), c.Tenant)
	return tenantView(t), err
}

func (s *Server) updateTenant(c *Call) (any, error) {
	var in TenantPatchRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	t, err := s.iam.UpdateTenant(c.R.Context(), c.Tenant, iam.TenantPatch{Name: in.Name, RequireMFA: in.RequireMFA, AllowedCIDRs: in.AllowedCIDRs}, c.Actor)
	return tenantView(t), err
}

func (s *Server) deleteTenant(c *Call) (any, error) {
	return nil, s.iam.DeleteTenant(c.R.Context(), c.Tenant, c.Actor)
}

func (s *Server) listCustomers(c *Call) (any, error) {
	p, err := c.page()
	if err != nil {
		return nil, err
	}
	ts, err := s.iam.ListCustomers(c.R.Context(), c.Tenant, p)
	return listOf(ts, p.Limit, tenantView, func(t store.Tenant) string { return t.ID }), err
}

func (s *Server) createCustomer(c *Call) (any, error) {
	var in TenantCreateRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	t, err := s.iam.CreateCustomer(c.R.Context(), c.Tenant, iam.TenantInput{Name: in.Name, Slug: in.Slug,
		RequireMFA: in.RequireMFA, AllowedCIDRs: in.AllowedCIDRs}, c.Actor)
	return tenantView(t), err
}

type AdminInviteRequest struct {
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
}

type AdminPatchRequest struct {
	DisplayName *string `json:"display_name,omitempty"`
	Disabled    *bool   `json:"disabled,omitempty"`
}

// SetupCodeView is a one-time code the admin uses at POST /api/v1/auth/setup.
type SetupCodeView struct {
	SetupCode string    `json:"setup_code"`
	ExpiresAt time.Time `json:"expires_at"`
}

type InviteView struct {
	Admin AdminView `json:"admin"`
	SetupCodeView
}

func (s *Server) listAdmins(c *Call) (any, error) {
	p, err := c.page()
	if err != nil {
		return nil, err
	}
	as, err := s.iam.ListAdmins(c.R.Context(), c.Tenant, p)
	return listOf(as, p.Limit, adminView, func(a store.Admin) string { return a.ID }), err
}

func (s *Server) inviteAdmin(c *Call) (any, error) {
	var in AdminInviteRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	a, code, err := s.iam.InviteAdmin(c.R.Context(), c.Tenant, iam.AdminInput{Email: in.Email, DisplayName: in.DisplayName}, c.Actor)
	if err != nil {
		return nil, err
	}
	return InviteView{Admin: adminView(a), SetupCodeView: SetupCodeView{SetupCode: code.Code, ExpiresAt: code.ExpiresAt}}, nil
}

func (s *Server) getAdmin(c *Call) (any, error) {
	a, err := s.iam.GetAdmin(c.R.Context(), c.Tenant, c.Path("admin"))
	return adminView(a), err
}

func (s *Server) updateAdmin(c *Call) (any, error) {
	var in AdminPatchRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	a, err := s.iam.UpdateAdmin(c.R.Context(), c.Principal, c.Tenant, c.Path("admin"), iam.AdminPatch{DisplayName: in.DisplayName, Disabled: in.Disabled}, c.Actor)
	return adminView(a), err
}

func (s *Server) deleteAdmin(c *Call) (any, error) {
	return nil, s.iam.DeleteAdmin(c.R.Context(), c.Principal, c.Tenant, c.Path("admin"), c.Actor)
}

func (s *Server) unlockAdmin(c *Call) (any, error) {
	return nil, s.iam.UnlockAdmin(c.R.Context(), c.Tenant, c.Path("admin"), c.Actor)
}

func (s *Server) resetPassword(c *Call) (any, error) {
	code, err := s.iam.ResetPassword(c.R.Context(), c.Principal, c.Tenant, c.Path("admin"), c.Actor)
	return SetupCodeView{SetupCode: code.Code, ExpiresAt: code.ExpiresAt}, err
}

func (s *Server) resetMFA(c *Call) (any, error) {
	return nil, s.iam.ResetMFA(c.R.Context(), c.Principal, c.Tenant, c.Path("admin"), c.Actor)
}

type RoleRequest struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Permissions []string `json:"permissions"`
}

func (s *Server) listRoles(c *Call) (any, error) {
	rs, err := s.iam.ListRoles(c.R.Context(), c.Tenant)
	if err != nil {
		return nil, err
	}
	return pageOf(c, rs, roleView, func(r store.Role) string { return r.ID })
}

func (s *Server) createRole(c *Call) (any, error) {
	var in RoleRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	r, err := s.iam.CreateRole(c.R.Context(), c.Tenant, iam.RoleInput(in), c.Perms, c.Actor)
	return roleView(r), err
}

func (s *Server) getRole(c *Call) (any, error) {
	r, err := s.iam.GetRole(c.R.Context(), c.Tenant, c.Path("role"))
	return roleView(r), err
}

func (s *Server) updateRole(c *Call) (any, error) {
	var in RoleRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	r, err := s.iam.UpdateRole(c.R.Context(), c.Tenant, c.Path("role"), iam.RoleInput(in), c.Perms, c.Actor)
	return roleView(r), err
}

func (s *Server) deleteRole(c *Call) (any, error) {
	return nil, s.iam.DeleteRole(c.R.Context(), c.Tenant, c.Path("role"), c.Actor)
}

type AssignmentRequest struct {
	AdminID string `json:"admin_id"`
	RoleID  string `json:"role_id"`
	// Groups limits the role to devices in these groups (device
	// permissions only); empty means the whole tenant.
	Groups []string `json:"groups,omitempty"`
}

func (s *Server) listAssignments(c *Call) (any, error) {
	p, err := c.page()
	if err != nil {
		return nil, err
	}
	as, err := s.iam.ListAssignments(c.R.Context(), c.Tenant, p)
	return listOf(as, p.Limit, assignmentView, func(a store.Assignment) string { return a.ID }), err
}

func (s *Server) createAssignment(c *Call) (any, error) {
	var in AssignmentRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.AdminID == "" || in.RoleID == "" {
		return nil, apperr.Invalid("admin_id and role_id are required")
	}
	a, err := s.iam.Assign(c.R.Context(), c.Principal, c.Tenant, in.AdminID, in.RoleID, in.Groups, c.Actor)
	return assignmentView(a), err
}

func (s *Server) deleteAssignment(c *Call) (any, error) {
	return nil, s.iam.Unassign(c.R.Context(), c.Principal, c.Tenant, c.Path("assignment"), c.Actor)
}

type TokenRequest struct {
	Name          string `json:"name"`
	RoleID        string `json:"role_id"`
	ExpiresInDays int    `json:"expires_in_days,omitempty"`
}

func (s *Server) listTokens(c *Call) (any, error) {
	p, err := c.page()
	if err != nil {
		return nil, err
	}
	ts, err := s.iam.ListTokens(c.R.Context(), c.Tenant, p)
	return listOf(ts, p.Limit, tokenView, func(t store.APIToken) string { return t.ID }), err
}

func (s *Server) createToken(c *Call) (any, error) {
	var in TokenRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.ExpiresInDays < 0 || in.ExpiresInDays > 100000 {
		return nil, apperr.Invalid("expires_in_days must be a number of days within the token lifetime limit").With("field", "expires_in_days")
	}
	if in.RoleID == "" {
		return nil, apperr.Invalid("role_id is required").With("field", "role_id")
	}
	nt, err := s.iam.CreateToken(c.R.Context(), c.Principal, c.Tenant, iam.TokenInput{Name: in.Name, RoleID: in.RoleID,
		ExpiresIn: time.Duration(in.ExpiresInDays) * 24 * time.Hour}, c.Actor)
	if err != nil {
		return nil, err
	}
	return NewTokenView{Token: tokenView(nt.Token), Secret: nt.Secret}, nil
}

func (s *Server) getToken(c *Call) (any, error) {
	t, err := s.iam.GetToken(c.R.Context(), c.Tenant, c.Path("token"))
	return tokenView(t), err
}

func (s *Server) revokeToken(c *Call) (any, error) {
	return nil, s.iam.RevokeToken(c.R.Context(), c.Tenant, c.Path("token"), c.Actor)
}
