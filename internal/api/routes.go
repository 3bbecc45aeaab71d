package api

import (
	"net/http"
	"slices"
)

const (
	tagAuth    = "Authentication"
	tagMe      = "My account"
	tagTenants = "Tenants"
	tagAdmins  = "Admins"
	tagRoles   = "Roles and assignments"
	tagTokens  = "API tokens"
	tagAudit   = "Audit log"
	tagMeta    = "Meta"
)

var pageQuery = []QueryParam{
	{Name: "cursor", Type: "string", Description: "next_cursor from the previous page"},
	{Name: "limit", Type: "integer", Description: "page size, 1 to 1000 (default 100)"},
}

// routeTable is every operation of /api/v1. Add a route here and it is
// served, authorised, documented and covered by the isolation tests.
func (s *Server) routeTable() []Route {
	const v1 = "/api/v1"
	const t = v1 + "/tenants/{tenant}"
	return append([]Route{
		// Meta
		{Method: "GET", Path: v1 + "/openapi.json", Access: public(), Tag: tagMeta, Summary: "This API's OpenAPI 3.1 document", Out: map[string]any{}, Handle: s.openAPIDocument},
		{Method: "GET", Path: v1 + "/permissions", Access: self(), Tag: tagMeta, Summary: "Every permission and built-in role", Out: PermissionsView{}, Handle: s.listPermissions},
		{Method: "GET", Path: v1 + "/audit/public-key", Access: public(), Tag: tagAudit, Summary: "The public key that signs audit checkpoints", Out: PublicKeyView{}, Handle: s.auditPublicKey},
		{Method: "GET", Path: "/metrics", Access: needs("system.metrics"), InstallWide: true, Tag: tagMeta, Summary: "Prometheus metrics", Out: "", Produces: "text/plain", Handle: s.metrics},

		// Authentication
		{Method: "POST", Path: v1 + "/bootstrap", Access: public(), Tag: tagAuth, Summary: "Create the first owner with the code printed at first start", In: BootstrapRequest{}, Out: AdminView{}, Status: http.StatusCreated, Handle: s.bootstrap},
		{Method: "POST", Path: v1 + "/auth/login", Access: public(), Tag: tagAuth, Summary: "Sign in with email and password", In: LoginRequest{}, Out: LoginView{}, Handle: s.login},
		{Method: "POST", Path: v1 + "/auth/mfa", Access: pending(), SessionOnly: true, Tag: tagAuth, Summary: "Finish signing in with a TOTP or recovery code", In: MFARequest{}, Out: LoginView{}, Handle: s.verifyMFA},
		{Method: "POST", Path: v1 + "/auth/setup", Access: public(), Tag: tagAuth, Summary: "Choose a password with a one-time setup code", In: SetupRequest{}, Out: AdminView{}, Handle: s.completeSetup},
		{Method: "POST", Path: v1 + "/auth/logout", Access: pending(), SessionOnly: true, Tag: tagAuth, Summary: "End this session", Handle: s.logout},

		// My account
		{Method: "GET", Path: v1 + "/me", Access: self(), Tag: tagMe, Summary: "Who I am and what I may do", Out: MeView{}, Handle: s.me},
		{Method: "POST", Path: v1 + "/me/password", Access: self(), SessionOnly: true, Tag: tagMe, Summary: "Change my password", In: PasswordChangeRequest{}, Handle: s.changePassword},
		{Method: "GET", Path: v1 + "/me/sessions", Access: self(), SessionOnly: true, Tag: tagMe, Summary: "List my sessions", Query: pageQuery, Out: List[SessionView]{}, Handle: s.listSessions},
		{Method: "DELETE", Path: v1 + "/me/sessions/{session}", Access: self(), SessionOnly: true, Tag: tagMe, Summary: "End one of my sessions", Handle: s.revokeSession},
		{Method: "POST", Path: v1 + "/me/sessions/revoke-others", Access: self(), SessionOnly: true, Tag: tagMe, Summary: "End all my other sessions", Out: CountView{}, Handle: s.revokeOtherSessions},
		{Method: "POST", Path: v1 + "/me/mfa/enroll", Access: pending(), SessionOnly: true, Tag: tagMe, Summary: "Start enrolling an authenticator app", Out: MFAEnrollView{}, Handle: s.beginMFA},
		{Method: "POST", Path: v1 + "/me/mfa/confirm", Access: pending(), SessionOnly: true, Tag: tagMe, Summary: "Confirm the authenticator with a code; returns recovery codes", In: CodeRequest{}, Out: MFAConfirmView{}, Handle: s.confirmMFA},
		{Method: "POST", Path: v1 + "/me/mfa/recovery-codes", Access: self(), SessionOnly: true, Tag: tagMe, Summary: "Replace my recovery codes", In: CodeRequest{}, Out: RecoveryCodesView{}, Handle: s.regenerateRecoveryCodes},
		{Method: "POST", Path: v1 + "/me/mfa/disable", Access: self(), SessionOnly: true, Tag: tagMe, Summary: "Remove my authenticator (where MFA is optional)", In: CodeRequest{}, Handle: s.disableMFA},

		// Tenants
		{Method: "GET", Path: v1 + "/tenants", Access: self(), Tag: tagTenants, Summary: "List the tenants I can see", Query: pageQuery, Out: List[TenantView]{}, Handle: s.listVisibleTenants},
		{Method: "GET", Path: t, Access: needs("tenant.read"), Tag: tagTenants, Summary: "Get a tenant", Out: TenantView{}, Handle: s.getTenant},
		{Method: "PATCH", Path: t, Access: needs("tenant.manage"), Tag: tagTenants, Summary: "Change a tenant's name, MFA rule or IP allowlist", In: TenantPatchRequest{}, Out: TenantView{}, Handle: s.updateTenant},
		{Method: "DELETE", Path: t, Access: needs("tenant.delete"), Tag: tagTenants, Summary: "Delete a customer tenant with its data and keys; its audit log stays. Refused while it has admins, customers or managed devices", Handle: s.deleteTenant},
		{Method: "GET", Path: t + "/customers", Access: needs("tenant.read"), Tag: tagTenants, Summary: "List a provider's customer tenants", Query: pageQuery, Out: List[TenantView]{}, Handle: s.listCustomers},
		{Method: "POST", Path: t + "/customers", Access: needs("tenant.manage"), Tag: tagTenants, Summary: "Create a customer tenant", In: TenantCreateRequest{}, Out: TenantView{}, Status: http.StatusCreated, Handle: s.createCustomer},

		// Admins
		{Method: "GET", Path: t + "/admins", Access: needs("admin.read"), Tag: tagAdmins, Summary: "List the tenant's admins", Query: pageQuery, Out: List[AdminView]{}, Handle: s.listAdmins},
		{Method: "POST", Path: t + "/admins", Access: needs("admin.manage"), Tag: tagAdmins, Summary: "Invite an admin; returns their one-time setup code", In: AdminInviteRequest{}, Out: InviteView{}, Status: http.StatusCreated, Handle: s.inviteAdmin},
		{Method: "GET", Path: t + "/admins/{admin}", Access: needs("admin.read"), Tag: tagAdmins, Summary: "Get an admin", Out: AdminView{}, Handle: s.getAdmin},
		{Method: "PATCH", Path: t + "/admins/{admin}", Access: needs("admin.manage"), Tag: tagAdmins, Summary: "Rename, disable or enable an admin", In: AdminPatchRequest{}, Out: AdminView{}, Handle: s.updateAdmin},
		{Method: "DELETE", Path: t + "/admins/{admin}", Access: needs("admin.manage"), Tag: tagAdmins, Summary: "Delete an admin", Handle: s.deleteAdmin},
		{Method: "POST", Path: t + "/admins/{admin}/unlock", Access: needs("admin.manage"), Tag: tagAdmins, Summary: "Clear a lockout after failed logins", Handle: s.unlockAdmin},
		{Method: "POST", Path: t + "/admins/{admin}/reset-password", Access: needs("admin.manage"), Tag: tagAdmins, Summary: "Issue a new setup code; the old password stops working", Out: SetupCodeView{}, Handle: s.resetPassword},
		{Method: "POST", Path: t + "/admins/{admin}/reset-mfa", Access: needs("admin.manage"), Tag: tagAdmins, Summary: "Remove an admin's authenticator so they enrol again", Handle: s.resetMFA},

		// Roles and assignments
		{Method: "GET", Path: t + "/roles", Access: needs("role.read"), Tag: tagRoles, Summary: "List built-in and custom roles", Query: pageQuery, Out: List[RoleView]{}, Handle: s.listRoles},
		{Method: "POST", Path: t + "/roles", Access: needs("role.manage"), Tag: tagRoles, Summary: "Create a custom role", In: RoleRequest{}, Out: RoleView{}, Status: http.StatusCreated, Handle: s.createRole},
		{Method: "GET", Path: t + "/roles/{role}", Access: needs("role.read"), Tag: tagRoles, Summary: "Get a role", Out: RoleView{}, Handle: s.getRole},
		{Method: "PUT", Path: t + "/roles/{role}", Access: needs("role.manage"), Tag: tagRoles, Summary: "Replace a custom role", In: RoleRequest{}, Out: RoleView{}, Handle: s.updateRole},
		{Method: "DELETE", Path: t + "/roles/{role}", Access: needs("role.manage"), Tag: tagRoles, Summary: "Delete an unused custom role", Handle: s.deleteRole},
		{Method: "GET", Path: t + "/assignments", Access: needs("admin.read"), Tag: tagRoles, Summary: "List role assignments on the tenant", Query: pageQuery, Out: List[AssignmentView]{}, Handle: s.listAssignments},
		{Method: "POST", Path: t + "/assignments", Access: needs("role.manage"), Tag: tagRoles, Summary: "Give an admin a role on the tenant", In: AssignmentRequest{}, Out: AssignmentView{}, Status: http.StatusCreated, Handle: s.createAssignment},
		{Method: "DELETE", Path: t + "/assignments/{assignment}", Access: needs("role.manage"), Tag: tagRoles, Summary: "Remove a role assignment", Handle: s.deleteAssignment},

		// API tokens
		{Method: "GET", Path: t + "/tokens", Access: needs("token.read"), Tag: tagTokens, Summary: "List API tokens (never their secrets)", Query: pageQuery, Out: List[TokenView]{}, Handle: s.listTokens},
		{Method: "POST", Path: t + "/tokens", Access: needs("token.manage"), SessionOnly: true, Tag: tagTokens, Summary: "Create an API token; its secret is shown once", In: TokenRequest{}, Out: NewTokenView{}, Status: http.StatusCreated, Handle: s.createToken},
		{Method: "GET", Path: t + "/tokens/{token}", Access: needs("token.read"), Tag: tagTokens, Summary: "Get an API token", Out: TokenView{}, Handle: s.getToken},
		{Method: "DELETE", Path: t + "/tokens/{token}", Access: needs("token.manage"), Tag: tagTokens, Summary: "Revoke an API token", Handle: s.revokeToken},

		// Audit log
		{Method: "GET", Path: t + "/audit", Access: needs("audit.read"), Tag: tagAudit, Summary: "Read the audit log, newest first unless order=asc", Query: auditQuery, Out: List[AuditEntryView]{}, Handle: s.listAudit},
		{Method: "GET", Path: t + "/audit/checkpoints", Access: needs("audit.read"), Tag: tagAudit, Summary: "List signed checkpoints", Query: pageQuery, Out: List[CheckpointView]{}, Handle: s.listCheckpoints},
		{Method: "POST", Path: t + "/audit/checkpoints", Access: needs("audit.checkpoint"), Tag: tagAudit, Summary: "Sign a checkpoint of the chain now", Out: CheckpointView{}, Status: http.StatusCreated, Handle: s.createCheckpoint},
		{Method: "POST", Path: t + "/audit/verify", Access: needs("audit.read"), Tag: tagAudit, Summary: "Verify the chain and its checkpoints", Out: VerifyView{}, Handle: s.verifyAudit},
		{Method: "GET", Path: t + "/audit/export", Access: needs("audit.export"), Tag: tagAudit, Summary: "Export the chain and checkpoints as JSON Lines for offline verification", Out: "", Produces: "application/jsonl", Handle: s.exportAudit},
	}, slices.Concat(s.privacyRoutes(), s.appleRoutes(), s.deviceRoutes(), s.actionRoutes(), s.departedPINRoutes(), s.complianceRoutes(), s.reportRoutes(), s.appRoutes())...)
}
