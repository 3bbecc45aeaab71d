package api

import (
	"slices"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

func (s *Server) privacySvc() (*privacy.Service, error) {
	if s.opts.Privacy == nil {
		return nil, apperr.New(apperr.KindUnavailable, "the privacy service is not configured")
	}
	return s.opts.Privacy, nil
}

func (s *Server) catalogue(*Call) (any, error) {
	v := CatalogueView{Fields: privacy.Catalogue, Ownerships: privacy.Ownerships, DefaultPolicy: privacy.DefaultPolicy(), Flows: privacy.Flows}
	for _, c := range privacy.Categories {
		v.Categories = append(v.Categories, CategoryView{Category: c.Category, Name: c.Name, Description: c.Description, RetentionDays: c.RetentionDays()})
	}
	return v, nil
}

func (s *Server) processingRecord(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	tenant, err := s.st.Read().Tenants().Get(c.R.Context(), c.Tenant)
	if err != nil {
		return nil, err
	}
	rec, err := p.Record(c.R.Context(), tenant)
	if err != nil {
		return nil, err
	}
	switch c.Query("format") {
	case "", "json":
		return rec, nil
	case "md", "markdown":
		c.W.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, _ = c.W.Write([]byte(rec.Markdown()))
		return streamed, nil
	case "html":
		page, err := rec.HTML()
		if err != nil {
			return nil, err
		}
		c.W.Header().Set("Content-Type", "text/html; charset=utf-8")
		c.W.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_, _ = c.W.Write(page)
		return streamed, nil
	}
	return nil, apperr.Invalid("format must be json, md or html").With("field", "format")
}

func (s *Server) privacySettings(c *Call) (any, error) {
	settings, _, err := privacy.LoadSettings(c.R.Context(), s.st.Read(), c.Tenant)
	if err != nil {
		return nil, err
	}
	return settingsView(settings), nil
}

func (s *Server) requestPolicyChange(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in PolicyChangeRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	res, err := p.RequestPolicyChange(c.R.Context(), c.Tenant, in, c.Principal.AdminID, c.Actor)
	if err != nil {
		return nil, err
	}
	return policyChangeView(res), nil
}

func (s *Server) setRetention(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in RetentionRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	res, err := p.SetRetention(c.R.Context(), c.Tenant, in.RetentionDays, in.Reason, c.Principal.AdminID, c.Actor)
	if err != nil {
		return nil, err
	}
	return retentionChangeView(res), nil
}

func (s *Server) setFlow(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in FlowRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	settings, err := p.SetFlow(c.R.Context(), c.Tenant, in.Flow, in.Enabled, in.Reason, c.Actor)
	if err != nil {
		return nil, err
	}
	return settingsView(settings), nil
}

func (s *Server) listNotices(c *Call) (any, error) {
	o := c.Query("ownership")
	if o != "" && !privacy.Ownership(o).Valid() {
		return nil, apperr.Invalid("unknown ownership class %q", o).With("field", "ownership")
	}
	ns, err := s.st.Read().Notices().List(c.R.Context(), c.Tenant, o)
	if err != nil {
		return nil, err
	}
	return pageOf(c, ns, noticeView, func(n store.Notice) string { return n.ID })
}

func (s *Server) publishNotice(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in NoticeRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	v, err := p.PublishNotice(c.R.Context(), c.Tenant, in, c.Actor)
	if err != nil {
		return nil, err
	}
	return NoticeVersionView{Ownership: in.Ownership, Version: v}, nil
}

func (s *Server) listApprovals(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	as, err := s.st.Read().Approvals().List(c.R.Context(), c.Tenant, page)
	if err != nil {
		return nil, err
	}
	out := listOf(as, page.Limit, approvalView, func(a store.Approval) string { return a.ID })
	// Privacy changes only: remote actions have their own approvals, and
	// their payload is not the privacy officers' business.
	out.Items = slices.DeleteFunc(out.Items, func(v ApprovalView) bool { return !privacy.IsPrivacyApproval(v.Kind) })
	return out, nil
}

func (s *Server) decideApproval(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in DecisionRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	res, err := p.DecidePolicyChange(c.R.Context(), c.Tenant, c.Path("approval"), in, c.Principal.AdminID, c.Actor)
	if err != nil {
		return nil, err
	}
	return policyChangeView(res), nil
}

func (s *Server) getCertificate(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	return p.Certificate(c.R.Context(), c.Tenant, c.Path("erasure"))
}

func (s *Server) listSubjects(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	q := s.st.Read()
	subs, err := q.Subjects().List(c.R.Context(), c.Tenant, page)
	if err != nil {
		return nil, err
	}
	return listOf(subs, page.Limit, func(sub store.Subject) SubjectView {
		return subjectView(sub, p.SubjectStatus(c.R.Context(), q, sub))
	}, func(sub store.Subject) string { return sub.ID }), nil
}

func (s *Server) createSubject(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in SubjectRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	sub, err := p.CreateSubject(c.R.Context(), c.Tenant, in, c.Actor)
	if err != nil {
		return nil, err
	}
	return subjectView(sub, "active"), nil
}

func (s *Server) updateSubject(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in SubjectUpdateRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	sub, err := p.UpdateSubject(c.R.Context(), c.Tenant, c.Path("subject"), in, c.Actor)
	if err != nil {
		return nil, err
	}
	return subjectView(sub, p.SubjectStatus(c.R.Context(), s.st.Read(), sub)), nil
}

func (s *Server) getSubject(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	q := s.st.Read()
	sub, err := p.Subject(c.R.Context(), q, c.Tenant, c.Path("subject"))
	if err != nil {
		return nil, err
	}
	return subjectView(sub, p.SubjectStatus(c.R.Context(), q, sub)), nil
}

func (s *Server) subjectAccessRecord(c *Call) (any, error) {
	return s.accessRecord(c, c.Tenant, c.Path("subject"))
}

func (s *Server) accessRecord(c *Call, tenantID, subjectID string) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	recs, err := p.AccessRecord(c.R.Context(), tenantID, subjectID, page)
	if err != nil {
		return nil, err
	}
	return listOf(recs, page.Limit, accessRecordView, func(r store.AccessRecord) string { return r.ID }), nil
}

func (s *Server) exportSubject(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in ReasonRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	c.W.Header().Set("Cache-Control", "no-store")
	return p.ExportSubject(c.R.Context(), c.Tenant, c.Path("subject"), in.Reason, c.Actor)
}

func (s *Server) eraseSubject(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in ReasonRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return p.EraseSubject(c.R.Context(), c.Tenant, c.Path("subject"), in.Reason, c.Actor)
}

func (s *Server) subjectConsents(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	cs, err := p.Consents(c.R.Context(), c.Tenant, c.Path("subject"))
	if err != nil {
		return nil, err
	}
	return consentStateView(cs), nil
}

func (s *Server) recordConsent(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in ConsentRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	in.Method = "admin-recorded"
	cons, err := p.RecordConsent(c.R.Context(), c.Tenant, c.Path("subject"), in, c.Actor)
	if err != nil {
		return nil, err
	}
	return consentView(cons), nil
}

func (s *Server) withdrawConsentAdmin(c *Call) (any, error) {
	return s.withdraw(c, c.Tenant, c.Path("subject"))
}

func (s *Server) withdraw(c *Call, tenantID, subjectID string) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in WithdrawRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.ConsentID == "" {
		return nil, apperr.Invalid("consent_id is required").With("field", "consent_id")
	}
	certs, err := p.WithdrawConsent(c.R.Context(), tenantID, subjectID, in.ConsentID, c.Actor)
	if err != nil {
		return nil, err
	}
	return List[CertificateView]{Items: append([]CertificateView{}, certs...)}, nil
}

func (s *Server) issuePortalToken(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in PortalTokenRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if in.TTLHours < 0 || in.TTLHours > int(privacy.MaxPortalTTL/time.Hour) {
		return nil, apperr.Invalid("ttl_hours must be from 1 to %d", int(privacy.MaxPortalTTL/time.Hour)).With("field", "ttl_hours")
	}
	// A key handed to the admin opens everything the portal shows, hidden
	// fields included: only someone who may export and reveal gets one.
	if !in.Notify && !c.Perms.Has("privacy.reveal") {
		return nil, apperr.Forbidden("handing out a portal key needs privacy.reveal as well; send it by mail with notify instead")
	}
	secret, tok, err := p.IssuePortalToken(c.R.Context(), c.Tenant, c.Path("subject"), time.Duration(in.TTLHours)*time.Hour, in.Notify, c.Actor)
	if err != nil {
		return nil, err
	}
	c.W.Header().Set("Cache-Control", "no-store")
	return PortalTokenView{Token: secret, ExpiresAt: tok.ExpiresAt}, nil
}

func (s *Server) registerDevice(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in DeviceRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	d, err := p.RegisterDevice(c.R.Context(), c.Tenant, in, c.Actor)
	if err != nil {
		return nil, err
	}
	return deviceView(d), nil
}

func (s *Server) getDevice(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	if err := s.requireDevice(c, "device.read", c.Path("device")); err != nil {
		return nil, err
	}
	v, err := p.ViewDevice(c.R.Context(), c.Tenant, c.Path("device"), privacy.Viewer{Actor: c.Actor, AdminID: c.Principal.AdminID})
	if err != nil {
		return nil, err
	}
	if v.Fields == nil {
		v.Fields = []privacy.FieldView{}
	}
	return DeviceDetailView{DeviceView: deviceView(v.Device), Fields: v.Fields}, nil
}

func (s *Server) revealFields(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in RevealRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	r, err := p.Reveal(c.R.Context(), c.Tenant, c.Path("device"), in, privacy.Viewer{Actor: c.Actor, AdminID: c.Principal.AdminID})
	if err != nil {
		return nil, err
	}
	return RevealView{ID: r.ID, Fields: r.Fields, ExpiresAt: r.ExpiresAt}, nil
}

func (s *Server) deprovisionDevice(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in ReasonRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	return p.DeprovisionUnenrolled(c.R.Context(), c.Tenant, c.Path("device"), in.Reason, c.Actor)
}

// Employee portal: the caller is a person, identified by their portal token.

func (s *Server) portalMe(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	ctx, t := c.R.Context(), c.Portal
	q := s.st.Read()
	sub, err := p.Subject(ctx, q, t.TenantID, t.SubjectID)
	if err != nil {
		return nil, err
	}
	prof, err := p.OpenProfile(ctx, q, sub)
	if err != nil {
		return nil, err
	}
	ds, err := q.Devices().List(ctx, t.TenantID, store.DeviceFilter{SubjectID: t.SubjectID, Page: store.Page{Limit: 1000}})
	if err != nil {
		return nil, err
	}
	cs, err := p.Consents(ctx, t.TenantID, t.SubjectID)
	if err != nil {
		return nil, err
	}
	v := PortalMeView{Person: privacy.ExportPerson{ID: sub.ID, Pseudonym: sub.Pseudonym, Email: prof.Email, Name: prof.Name,
		Dept: prof.Department, Locale: sub.Locale, State: string(sub.State), CreatedAt: sub.CreatedAt},
		Devices: []DeviceView{}, Consents: consentStateView(cs)}
	for _, d := range ds {
		v.Devices = append(v.Devices, deviceView(d))
	}
	return v, nil
}

func (s *Server) portalDevice(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	v, err := p.ViewOwnDevice(c.R.Context(), c.Portal.TenantID, c.Portal.SubjectID, c.Path("device"))
	if err != nil {
		return nil, err
	}
	return PortalDeviceView{DeviceView: deviceView(v.Device), Fields: v.Fields, NotCollected: v.NotCollected}, nil
}

func (s *Server) portalAccessRecord(c *Call) (any, error) {
	return s.accessRecord(c, c.Portal.TenantID, c.Portal.SubjectID)
}

func (s *Server) portalNotice(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	o := privacy.Ownership(c.Query("ownership"))
	if !o.Valid() {
		return nil, apperr.Invalid("ownership must be one of %v", privacy.Ownerships).With("field", "ownership")
	}
	n, err := p.ShownNotice(c.R.Context(), c.Portal.TenantID, o, strings.TrimSpace(c.Query("language")))
	if err != nil {
		return nil, err
	}
	return PortalNoticeView{NoticeView: noticeView(n.Notice), Summary: n.Summary, SummarySHA256: privacy.TextDigest(n.Summary)}, nil
}

func (s *Server) portalConsent(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	var in ConsentRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	in.Method = "portal"
	cons, err := p.RecordConsent(c.R.Context(), c.Portal.TenantID, c.Portal.SubjectID, in, c.Actor)
	if err != nil {
		return nil, err
	}
	return consentView(cons), nil
}

func (s *Server) portalWithdraw(c *Call) (any, error) {
	return s.withdraw(c, c.Portal.TenantID, c.Portal.SubjectID)
}

func (s *Server) portalExport(c *Call) (any, error) {
	p, err := s.privacySvc()
	if err != nil {
		return nil, err
	}
	c.W.Header().Set("Cache-Control", "no-store")
	return p.ExportSubject(c.R.Context(), c.Portal.TenantID, c.Portal.SubjectID, "", c.Actor)
}

// admitPortal authenticates an employee's portal token. Portal tokens reach
// only portal routes; admin credentials never do.
func (s *Server) admitPortal(c *Call, ip string) error {
	p, err := s.privacySvc()
	if err != nil {
		return err
	}
	scheme, secret, ok := strings.Cut(c.R.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return apperr.New(apperr.KindUnauthenticated, "send your portal access key as 'Authorization: Bearer <key>'")
	}
	t, err := p.AuthenticatePortal(c.R.Context(), strings.TrimSpace(secret))
	if err != nil {
		if !s.limiter.Allow(ip) {
			return errRateLimit
		}
		return err
	}
	if err := s.iam.CheckAllowlists(c.R.Context(), ip, t.TenantID); err != nil {
		return err
	}
	c.Portal = &t
	c.Actor = privacy.SubjectActor(t, ip, c.Actor.RequestID)
	return nil
}
