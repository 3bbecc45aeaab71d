package api

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/proxy"
	"github.com/steward-mdm/steward/internal/rbac"
	"github.com/steward-mdm/steward/internal/store"
)

const tagCompliance = "Compliance"

// DeviceTokenHeader carries a device access token to the access check.
const DeviceTokenHeader = "X-Steward-Device-Token"

func (s *Server) complianceRoutes() []Route {
	const v1 = "/api/v1"
	const t = v1 + "/tenants/{tenant}"
	return []Route{
		{Method: "POST", Path: t + "/compliance/policies", Access: needs("device.manage"), Tag: tagCompliance, Summary: "Create a compliance policy; devices are evaluated at once", In: compliance.PolicyInput{}, Out: PolicyView{}, Status: http.StatusCreated, Handle: s.createPolicy},
		{Method: "GET", Path: t + "/compliance/policies", Access: needs("device.read"), Tag: tagCompliance, Summary: "List compliance policies", Query: pageQuery, Out: List[PolicyView]{}, Handle: s.listPolicies},
		{Method: "GET", Path: t + "/compliance/policies/{policy}", Access: needs("device.read"), Tag: tagCompliance, Summary: "A compliance policy", Out: PolicyView{}, Handle: s.getPolicy},
		{Method: "PUT", Path: t + "/compliance/policies/{policy}", Access: needs("device.manage"), Tag: tagCompliance, Summary: "Replace a compliance policy; devices are re-evaluated", In: compliance.PolicyInput{}, Out: PolicyView{}, Handle: s.updatePolicy},
		{Method: "DELETE", Path: t + "/compliance/policies/{policy}", Access: needs("device.manage"), Tag: tagCompliance, Summary: "Delete a compliance policy", Handle: s.deletePolicy},
		{Method: "POST", Path: t + "/compliance/evaluate", Access: needs("device.manage"), Tag: tagCompliance, Summary: "Evaluate every device now", Out: compliance.EvaluationResult{}, Handle: s.evaluateNow},
		{Method: "GET", Path: t + "/devices/{device}/compliance", Access: needs("device.read"), Scoped: true, Tag: tagCompliance, Summary: "The device's standing under each policy, and its history", Out: DeviceComplianceView{}, Handle: s.deviceCompliance},
		{Method: "POST", Path: t + "/devices/{device}/access-token", Access: needs("device.manage"), Tag: tagCompliance, Summary: "Mint a device token for conditional access (shown once)", In: AccessTokenRequest{}, Out: AccessTokenView{}, Status: http.StatusCreated, Handle: s.issueAccessToken},
		{Method: "GET", Path: v1 + "/access/{organisation}/check", Access: public(), Tag: tagCompliance, Summary: "Conditional access: may this device reach corporate data? 200 allowed, 403 refused with reasons (for nginx auth_request and identity providers)", Out: compliance.AccessDecision{}, Handle: s.checkAccess},
	}
}

type PolicyView struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Platform  string          `json:"platform,omitempty"`
	Ownership string          `json:"ownership,omitempty"`
	GroupID   string          `json:"group_id,omitempty"`
	Rules     json.RawMessage `json:"rules"`
	Ladder    json.RawMessage `json:"ladder"`
	Enabled   bool            `json:"enabled"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Standings map[string]int  `json:"standings,omitempty"`
}

func policyView(p store.CompliancePolicy) PolicyView {
	return PolicyView{ID: p.ID, Name: p.Name, Platform: p.Platform, Ownership: p.Ownership, GroupID: p.GroupID, Rules: json.RawMessage(p.Rules),
		Ladder: json.RawMessage(p.Ladder), Enabled: p.Enabled, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

type StandingView struct {
	PolicyID    string                 `json:"policy_id"`
	State       string                 `json:"state"`
	Violations  []compliance.Violation `json:"violations"`
	Since       time.Time              `json:"since"`
	StepsTaken  int                    `json:"steps_taken"`
	NextStepAt  *time.Time             `json:"next_step_at,omitempty"`
	EvaluatedAt time.Time              `json:"evaluated_at"`
}

type ComplianceEventView struct {
	PolicyID string    `json:"policy_id"`
	State    string    `json:"state"`
	Action   string    `json:"action,omitempty"`
	At       time.Time `json:"at"`
}

type DeviceComplianceView struct {
	Compliance string                `json:"compliance"`
	Standings  []StandingView        `json:"standings"`
	History    []ComplianceEventView `json:"history"`
}

type AccessTokenRequest struct {
	// TTLHours defaults to 90 days.
	TTLHours int `json:"ttl_hours,omitempty"`
}

type AccessTokenView struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) complianceSvc() (*compliance.Engine, error) {
	if s.opts.Compliance == nil {
		return nil, apperr.New(apperr.KindUnavailable, "compliance is not configured")
	}
	return s.opts.Compliance, nil
}

func (s *Server) createPolicy(c *Call) (any, error) {
	e, err := s.complianceSvc()
	if err != nil {
		return nil, err
	}
	var in compliance.PolicyInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if err := c.mayLadder(in.Ladder); err != nil {
		return nil, err
	}
	p, err := e.CreatePolicy(c.R.Context(), c.Tenant, in, c.Principal.AdminID, c.Actor)
	if err != nil {
		return nil, err
	}
	return policyView(p), nil
}

func (s *Server) listPolicies(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	ps, err := s.st.Read().Compliance().ListPolicies(c.R.Context(), c.Tenant, page)
	if err != nil {
		return nil, err
	}
	return listOf(ps, page.Limit, policyView, func(p store.CompliancePolicy) string { return p.ID }), nil
}

func (s *Server) getPolicy(c *Call) (any, error) {
	q := s.st.Read()
	p, err := q.Compliance().GetPolicy(c.R.Context(), c.Tenant, c.Path("policy"))
	if err != nil {
		return nil, notFoundAs(err, "policy")
	}
	v := policyView(p)
	standings, err := q.Compliance().ForPolicy(c.R.Context(), c.Tenant, p.ID)
	if err != nil {
		return nil, err
	}
	v.Standings = map[string]int{}
	for _, st := range standings {
		v.Standings[st.State]++
	}
	return v, nil
}

func (s *Server) updatePolicy(c *Call) (any, error) {
	e, err := s.complianceSvc()
	if err != nil {
		return nil, err
	}
	var in compliance.PolicyInput
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if err := c.mayLadder(in.Ladder); err != nil {
		return nil, err
	}
	p, err := e.UpdatePolicy(c.R.Context(), c.Tenant, c.Path("policy"), in, c.Principal.AdminID, c.Actor)
	if err != nil {
		return nil, err
	}
	return policyView(p), nil
}

func (s *Server) deletePolicy(c *Call) (any, error) {
	e, err := s.complianceSvc()
	if err != nil {
		return nil, err
	}
	return nil, e.DeletePolicy(c.R.Context(), c.Tenant, c.Path("policy"), c.Actor)
}

func (s *Server) evaluateNow(c *Call) (any, error) {
	e, err := s.complianceSvc()
	if err != nil {
		return nil, err
	}
	return e.EvaluateTenant(c.R.Context(), c.Tenant, nil)
}

func (s *Server) deviceCompliance(c *Call) (any, error) {
	q := s.st.Read()
	id := c.Path("device")
	d, err := q.Devices().Get(c.R.Context(), c.Tenant, id)
	if err != nil {
		return nil, notFoundAs(err, "device")
	}
	if err := s.requireDevice(c, "device.read", id); err != nil {
		return nil, err
	}
	return s.complianceOf(c, d)
}

// complianceOf is device d's standing under each policy, and its history.
func (s *Server) complianceOf(c *Call, d store.Device) (DeviceComplianceView, error) {
	q := s.st.Read()
	standings, err := q.Compliance().Standings(c.R.Context(), d.TenantID, d.ID)
	if err != nil {
		return DeviceComplianceView{}, err
	}
	out := DeviceComplianceView{Compliance: d.Compliance, Standings: []StandingView{}, History: []ComplianceEventView{}}
	for _, st := range standings {
		v := StandingView{PolicyID: st.PolicyID, State: st.State, Since: st.Since, StepsTaken: st.Steps,
			NextStepAt: optTime(st.NextStepAt), EvaluatedAt: st.EvaluatedAt, Violations: []compliance.Violation{}}
		_ = json.Unmarshal(st.Violations, &v.Violations)
		out.Standings = append(out.Standings, v)
	}
	events, err := q.Compliance().History(c.R.Context(), d.TenantID, d.ID, store.Page{Limit: 100})
	if err != nil {
		return DeviceComplianceView{}, err
	}
	for _, e := range events {
		out.History = append(out.History, ComplianceEventView{PolicyID: e.PolicyID, State: e.State, Action: e.Action, At: e.At})
	}
	return out, nil
}

func (s *Server) issueAccessToken(c *Call) (any, error) {
	e, err := s.complianceSvc()
	if err != nil {
		return nil, err
	}
	var in AccessTokenRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	ttl := 90 * 24 * time.Hour
	if in.TTLHours > 0 {
		ttl = time.Duration(in.TTLHours) * time.Hour
	}
	token, expires, err := e.IssueAccessToken(c.R.Context(), c.Tenant, c.Path("device"), ttl, c.Actor)
	if err != nil {
		return nil, err
	}
	c.W.Header().Set("Cache-Control", "no-store")
	return AccessTokenView{Token: token, ExpiresAt: expires}, nil
}

// checkAccess identifies the device by a TLS client certificate, by the
// certificate a trusted proxy forwards, or by a device token. A refusal is
// a 403 with the reasons, also in X-Steward-Access-Reason for proxies.
func (s *Server) checkAccess(c *Call) (any, error) {
	e, err := s.complianceSvc()
	if err != nil {
		return nil, err
	}
	cert, err := s.presentedCertificate(c.R)
	if err != nil {
		return nil, err
	}
	d, err := e.CheckAccess(c.R.Context(), c.R.PathValue("organisation"), cert, c.R.Header.Get(DeviceTokenHeader))
	if err != nil {
		return nil, err
	}
	c.W.Header().Set("Cache-Control", "no-store")
	if !d.Allowed {
		if len(d.Reasons) > 0 {
			c.W.Header().Set("X-Steward-Access-Reason", d.Reasons[0])
		}
		writeJSON(c.W, http.StatusForbidden, d)
		return streamed, nil
	}
	return d, nil
}

// presentedCertificate returns the client certificate of the connection,
// or the one a trusted proxy forwarded (URL-escaped PEM, as nginx's
// $ssl_client_escaped_cert); nil when there is none. Through a trusted
// proxy that forwards certificates, the TLS peer's own is the proxy's, as
// the MDM endpoints take it.
func (s *Server) presentedCertificate(r *http.Request) (*x509.Certificate, error) {
	trusted := proxy.Trusted(s.opts.TrustedProxies)
	forwarding := s.opts.ClientCertHeader != "" && trusted.FromProxy(r)
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && !forwarding {
		return r.TLS.PeerCertificates[0], nil
	}
	cert, err := trusted.ForwardedCertificate(r, s.opts.ClientCertHeader)
	if errors.Is(err, proxy.ErrUntrustedForward) {
		return nil, apperr.Forbidden("%s", err.Error())
	}
	if err != nil {
		return nil, apperr.Invalid("%s", err.Error())
	}
	return cert, nil
}

// mayLadder: a ladder locks or retires devices as its author could, so the
// author must hold those permissions on the whole tenant.
func (c *Call) mayLadder(l *compliance.Ladder) error {
	for _, perm := range compliance.LadderPermissions(l) {
		if !c.Perms.Has(rbac.Permission(perm)) {
			return apperr.Forbidden("a ladder that can %s devices needs the %q permission", strings.TrimPrefix(perm, "device."), perm)
		}
	}
	return nil
}
