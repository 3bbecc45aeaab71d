package api

import "net/http"

const (
	tagPrivacy  = "Privacy"
	tagSubjects = "People (data subjects)"
	tagDevices  = "Devices"
	tagPortal   = "Employee portal"
)

var recordQuery = []QueryParam{{Name: "format", Type: "string", Description: "json (default), md or html"}}

// privacyRoutes are the privacy core's operations.
func (s *Server) privacyRoutes() []Route {
	const v1 = "/api/v1"
	const t = v1 + "/tenants/{tenant}"
	return []Route{
		{Method: "GET", Path: v1 + "/privacy/catalogue", Access: self(), Tag: tagPrivacy, Summary: "Every field Steward can store, its category, retention and legal basis", Out: CatalogueView{}, Handle: s.catalogue},
		{Method: "GET", Path: v1 + "/privacy/record", Access: needs("privacy.read"), Tag: tagPrivacy, Summary: "Record of processing (Art 30) of my home tenant", Query: recordQuery, Out: map[string]any{}, Handle: s.processingRecord},
		{Method: "GET", Path: t + "/privacy/record", Access: needs("privacy.read"), Tag: tagPrivacy, Summary: "Record of processing (Art 30) of a tenant", Query: recordQuery, Out: map[string]any{}, Handle: s.processingRecord},
		{Method: "GET", Path: t + "/privacy/settings", Access: needs("privacy.read"), Tag: tagPrivacy, Summary: "Collection policy, retention, outbound flows and notice versions", Out: PrivacySettingsView{}, Handle: s.privacySettings},
		{Method: "POST", Path: t + "/privacy/policy-changes", Access: needs("privacy.manage"), Tag: tagPrivacy, Summary: "Change the collection policy; a widening waits for a second admin", In: PolicyChangeRequest{}, Out: PolicyChangeView{}, Handle: s.requestPolicyChange},
		{Method: "PUT", Path: t + "/privacy/retention", Access: needs("privacy.manage"), Tag: tagPrivacy, Summary: "Set retention per category; a longer period waits for a second admin", In: RetentionRequest{}, Out: RetentionChangeView{}, Handle: s.setRetention},
		{Method: "PUT", Path: t + "/privacy/flows", Access: needs("privacy.manage"), Tag: tagPrivacy, Summary: "Consent to, or stop, an outbound data flow", In: FlowRequest{}, Out: PrivacySettingsView{}, Handle: s.setFlow},
		{Method: "GET", Path: t + "/privacy/notices", Access: needs("privacy.read"), Tag: tagPrivacy, Summary: "Privacy notices, newest version first", Query: []QueryParam{{Name: "ownership", Type: "string", Description: "only this ownership class"}}, Out: List[NoticeView]{}, Handle: s.listNotices},
		{Method: "POST", Path: t + "/privacy/notices", Access: needs("privacy.manage"), Tag: tagPrivacy, Summary: "Publish a new notice version; affected employees are asked to consent again", In: NoticeRequest{}, Out: NoticeVersionView{}, Status: http.StatusCreated, Handle: s.publishNotice},
		{Method: "GET", Path: t + "/approvals", Access: needs("privacy.read"), Tag: tagPrivacy, Summary: "Changes waiting for a second admin", Query: pageQuery, Out: List[ApprovalView]{}, Handle: s.listApprovals},
		{Method: "POST", Path: t + "/approvals/{approval}/decision", Access: needs("privacy.manage"), Tag: tagPrivacy, Summary: "Approve or reject another admin's change", In: DecisionRequest{}, Out: PolicyChangeView{}, Handle: s.decideApproval},
		{Method: "GET", Path: t + "/erasures/{erasure}", Access: needs("privacy.read"), Tag: tagPrivacy, Summary: "A signed deletion certificate", Out: CertificateView{}, Handle: s.getCertificate},

		{Method: "GET", Path: t + "/subjects", Access: needs("privacy.read"), Tag: tagSubjects, Summary: "List people (pseudonyms and state only)", Query: pageQuery, Out: List[SubjectView]{}, Handle: s.listSubjects},
		{Method: "POST", Path: t + "/subjects", Access: needs("device.manage"), Tag: tagSubjects, Summary: "Register a person who uses managed devices", In: SubjectRequest{}, Out: SubjectView{}, Status: http.StatusCreated, Handle: s.createSubject},
		{Method: "GET", Path: t + "/subjects/{subject}", Access: needs("privacy.read"), Tag: tagSubjects, Summary: "Get a person (no personal data)", Out: SubjectView{}, Handle: s.getSubject},
		{Method: "PATCH", Path: t + "/subjects/{subject}", Access: needs("device.manage"), Tag: tagSubjects, Summary: "Change a person's name, department or Managed Apple Account (when it is not their e-mail: the account a User Enrollment signs in with); the e-mail stays", In: SubjectUpdateRequest{}, Out: SubjectView{}, Handle: s.updateSubject},
		{Method: "GET", Path: t + "/subjects/{subject}/access-record", Access: needs("privacy.read"), Tag: tagSubjects, Summary: "Who read this person's data, when and why", Query: pageQuery, Out: List[AccessRecordView]{}, Handle: s.subjectAccessRecord},
		{Method: "POST", Path: t + "/subjects/{subject}/export", Access: needs("privacy.export"), Tag: tagSubjects, Summary: "Export everything held about the person (Art 15, 20) as an encrypted archive; it holds hidden values too, so a reason is asked and the hidden fields go to the person's access record", In: ReasonRequest{}, Out: ExportView{}, Handle: s.exportSubject},
		{Method: "POST", Path: t + "/subjects/{subject}/erase", Access: needs("privacy.erase"), Tag: tagSubjects, Summary: "Erase the person (Art 17): keys destroyed, signed certificate returned", In: ReasonRequest{}, Out: CertificateView{}, Handle: s.eraseSubject},
		{Method: "GET", Path: t + "/subjects/{subject}/consents", Access: needs("privacy.read"), Tag: tagSubjects, Summary: "The person's consents and which need renewing", Out: ConsentStateView{}, Handle: s.subjectConsents},
		{Method: "POST", Path: t + "/subjects/{subject}/consents", Access: needs("privacy.manage"), Tag: tagSubjects, Summary: "Record a consent given outside Steward (method admin-recorded, shown outside-steward: no summary was shown by Steward); it cannot allow a full wipe, and without one takes back the person's full-wipe permissions", In: ConsentRequest{}, Out: ConsentView{}, Status: http.StatusCreated, Handle: s.recordConsent},
		{Method: "POST", Path: t + "/subjects/{subject}/consents/withdraw", Access: needs("privacy.manage"), Tag: tagSubjects, Summary: "Withdraw a consent on the person's behalf; personal devices' data is erased at once (certificates returned) and each enrolled Apple device is sent the removal of its management profile, retired when it answers", In: WithdrawRequest{}, Out: List[CertificateView]{}, Handle: s.withdrawConsentAdmin},
		{Method: "POST", Path: t + "/subjects/{subject}/portal-tokens", Access: needs("privacy.export"), Tag: tagSubjects, Summary: "Give the person access to the employee portal: mailed to them (notify), or shown once to an admin who may also reveal", In: PortalTokenRequest{}, Out: PortalTokenView{}, Status: http.StatusCreated, Handle: s.issuePortalToken},

		{Method: "GET", Path: t + "/devices", Access: needs("device.read"), Scoped: true, Tag: tagDevices, Summary: "Search devices: filters, sorting, cursor pages (POST …/devices/lookup finds them by serial number). Filtered by a group whose rule reads apps, devices whose apps are hidden (by the tenant's policy, or as their own policy stored them) are left out and counted", Query: deviceQuery, Out: DeviceListView{}, Handle: s.listDevices},
		{Method: "POST", Path: t + "/devices/lookup", Access: needs("device.read"), Scoped: true, Tag: tagDevices, Summary: "Find devices by serial number, through its blind index. Devices whose policy masks their serial (personally owned ones, by default) are found only with a reason and privacy.reveal, as a reveal is: audited, and in the person's access record; without a reason they are left out, uncounted. In the body, so that the serial reaches no proxy's log", In: SerialLookupRequest{}, Out: DeviceListView{}, Handle: s.lookupDevicesBySerial},
		{Method: "POST", Path: t + "/devices", Access: needs("device.manage"), Tag: tagDevices, Summary: "Pre-register a device", In: DeviceRequest{}, Out: DeviceView{}, Status: http.StatusCreated, Handle: s.registerDevice},
		{Method: "GET", Path: t + "/devices/{device}", Access: needs("device.read"), Scoped: true, Tag: tagDevices, Summary: "A device and its inventory; hidden fields masked unless revealed", Out: DeviceDetailView{}, Handle: s.getDevice},
		{Method: "POST", Path: t + "/devices/{device}/reveal", Access: needs("privacy.reveal"), Tag: tagDevices, Summary: "See masked fields for a limited time, with a reason (audited, in the person's access record)", In: RevealRequest{}, Out: RevealView{}, Status: http.StatusCreated, Handle: s.revealFields},
		{Method: "POST", Path: t + "/devices/{device}/deprovision", Access: needs("device.wipe"), Tag: tagDevices, Summary: "Erase the device's personal data and retire it; signed certificate returned", In: ReasonRequest{}, Out: CertificateView{}, Handle: s.deprovisionDevice},

		{Method: "GET", Path: v1 + "/portal/me", Access: portal(), Tag: tagPortal, Summary: "What Steward holds about me: profile, devices, consents", Out: PortalMeView{}, Handle: s.portalMe},
		{Method: "GET", Path: v1 + "/portal/devices/{device}", Access: portal(), Tag: tagPortal, Summary: "One of my devices as my organisation's admins see it: each value held, why, until when, and whether admins see it or only after giving a reason; and what is not collected", Out: PortalDeviceView{}, Handle: s.portalDevice},
		{Method: "GET", Path: v1 + "/portal/devices/{device}/actions", Access: portal(), Tag: tagPortal, Summary: "What my organisation did or asked to do to one of my devices (lock, wipe, Lost Mode…), why, and how it stands, including what waits for a second admin", Query: pageQuery, Out: List[ActionView]{}, Handle: s.portalDeviceActions},
		{Method: "GET", Path: v1 + "/portal/devices/{device}/commands", Access: portal(), Tag: tagPortal, Summary: "The MDM commands sent or queued to one of my devices, as my organisation's admins see them", Query: pageQuery, Out: List[CommandView]{}, Handle: s.portalDeviceCommands},
		{Method: "GET", Path: v1 + "/portal/devices/{device}/compliance", Access: portal(), Tag: tagPortal, Summary: "One of my devices' standing under each policy: what it breaks, the next step and when", Out: DeviceComplianceView{}, Handle: s.portalDeviceCompliance},
		{Method: "GET", Path: v1 + "/portal/access-record", Access: portal(), Tag: tagPortal, Summary: "Who read my data, when and why", Query: pageQuery, Out: List[AccessRecordView]{}, Handle: s.portalAccessRecord},
		{Method: "GET", Path: v1 + "/portal/notice", Access: portal(), Tag: tagPortal, Summary: "The current privacy notice for one of my ownership classes, with the plain-words summary of what is collected and what my organisation can do; accepting with its summary_sha256 records exactly that summary", Query: []QueryParam{{Name: "ownership", Type: "string", Description: "ownership class"}, {Name: "language", Type: "string", Description: "preferred language"}}, Out: PortalNoticeView{}, Handle: s.portalNotice},
		{Method: "POST", Path: v1 + "/portal/consents", Access: portal(), Tag: tagPortal, Summary: "Accept the current notice; the consent records the notice's digest and the plain-words summary shown (with summary_sha256 from GET /v1/portal/notice, refused if it changed since); without allow_full_wipe it takes back the full-wipe permission of my personal devices (or of device_id), with it keeps what each has", In: ConsentRequest{}, Out: ConsentView{}, Status: http.StatusCreated, Handle: s.portalConsent},
		{Method: "POST", Path: v1 + "/portal/consents/withdraw", Access: portal(), Tag: tagPortal, Summary: "Withdraw a consent; my personal device's data is erased at once (certificate returned) and an iPhone, iPad or Mac is told to remove its management profile at its next check-in, then retired", In: WithdrawRequest{}, Out: List[CertificateView]{}, Handle: s.portalWithdraw},
		{Method: "POST", Path: v1 + "/portal/export", Access: portal(), Tag: tagPortal, Summary: "Download everything held about me as an encrypted archive", Out: ExportView{}, Handle: s.portalExport},
	}
}
