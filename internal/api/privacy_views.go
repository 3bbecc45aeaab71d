package api

import (
	"encoding/json"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

type CategoryView struct {
	Category      privacy.Category `json:"category"`
	Name          string           `json:"name"`
	Description   string           `json:"description"`
	RetentionDays int              `json:"retention_days"`
}

type CatalogueView struct {
	Categories    []CategoryView      `json:"categories"`
	Fields        []privacy.Field     `json:"fields"`
	Ownerships    []privacy.Ownership `json:"ownership_classes"`
	DefaultPolicy privacy.Policy      `json:"default_policy"`
	Flows         []privacy.FlowInfo  `json:"outbound_flows"`
}

type PrivacySettingsView struct {
	Policy         privacy.Policy                 `json:"policy"`
	RetentionDays  map[privacy.Category]int       `json:"retention_days"`
	Flows          map[string]privacy.FlowConsent `json:"flows"`
	NoticeVersions map[privacy.Ownership]int64    `json:"notice_versions"`
}

func settingsView(s privacy.Settings) PrivacySettingsView {
	v := PrivacySettingsView{Policy: s.Policy, RetentionDays: map[privacy.Category]int{}, Flows: map[string]privacy.FlowConsent{},
		NoticeVersions: s.NoticeVersions}
	for _, c := range privacy.Categories {
		v.RetentionDays[c.Category] = int(s.Retention(c.Category) / (24 * time.Hour))
	}
	for _, f := range privacy.Flows {
		v.Flows[f.Flow] = s.Flows[f.Flow]
	}
	return v
}

type PolicyChangeRequest = privacy.PolicyChangeInput

type PolicyChangeView struct {
	Applied  bool           `json:"applied"`
	Approval *ApprovalView  `json:"approval,omitempty"`
	Policy   privacy.Policy `json:"policy"`
	Purged   int            `json:"purged"`
	// RetentionDays is set when the approval decided was a retention change.
	RetentionDays map[privacy.Category]int `json:"retention_days,omitempty"`
}

func policyChangeView(r privacy.PolicyChangeResult) PolicyChangeView {
	v := PolicyChangeView{Applied: r.Applied, Policy: r.Policy, Purged: r.Purged, RetentionDays: r.RetentionDays}
	if r.Approval != nil {
		a := approvalView(*r.Approval)
		v.Approval = &a
	}
	return v
}

type ApprovalView struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	Payload     json.RawMessage `json:"payload"`
	Reason      string          `json:"reason"`
	RequestedBy string          `json:"requested_by"`
	State       string          `json:"state"`
	DecidedBy   string          `json:"decided_by,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	ExpiresAt   time.Time       `json:"expires_at"`
	DecidedAt   *time.Time      `json:"decided_at,omitempty"`
}

func approvalView(a store.Approval) ApprovalView {
	if a.State == "pending" && !time.Now().Before(a.ExpiresAt) {
		a.State = "expired"
	}
	return ApprovalView{ID: a.ID, Kind: a.Kind, Payload: a.Payload, Reason: a.Reason, RequestedBy: a.RequestedBy, State: a.State,
		DecidedBy: a.DecidedBy, CreatedAt: a.CreatedAt, ExpiresAt: a.ExpiresAt, DecidedAt: optTime(a.DecidedAt)}
}

type DecisionRequest = privacy.DecideInput

type RetentionRequest struct {
	RetentionDays map[privacy.Category]int `json:"retention_days"`
	Reason        string                   `json:"reason"`
}

// RetentionChangeView is the privacy settings after a retention change.
// A change that lengthens a period is not applied: the settings are as
// they were, and approval names the request a second admin decides.
type RetentionChangeView struct {
	Applied  bool          `json:"applied"`
	Approval *ApprovalView `json:"approval,omitempty"`
	PrivacySettingsView
}

func retentionChangeView(r privacy.RetentionChangeResult) RetentionChangeView {
	v := RetentionChangeView{Applied: r.Applied, PrivacySettingsView: settingsView(r.Settings)}
	if r.Approval != nil {
		a := approvalView(*r.Approval)
		v.Approval = &a
	}
	return v
}

type FlowRequest struct {
	Flow    string `json:"flow"`
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason"`
}

type NoticeRequest = privacy.NoticeInput

type NoticeVersionView struct {
	Ownership string `json:"ownership"`
	Version   int64  `json:"version"`
}

type NoticeView struct {
	ID          string    `json:"id"`
	Ownership   string    `json:"ownership"`
	Version     int64     `json:"version"`
	Language    string    `json:"language"`
	Title       string    `json:"title"`
	Body        string    `json:"body"`
	PublishedAt time.Time `json:"published_at"`
	// BodySHA256 is the hex SHA-256 of Body, as consents record it.
	BodySHA256 string `json:"body_sha256"`
}

func noticeView(n store.Notice) NoticeView {
	return NoticeView{ID: n.ID, Ownership: n.Ownership, Version: n.Version, Language: n.Language, Title: n.Title, Body: n.Body,
		PublishedAt: n.PublishedAt, BodySHA256: privacy.TextDigest(n.Body)}
}

// PortalNoticeView is the notice with the plain-words summary shown beside
// it; accepting with summary_sha256 records exactly that summary.
type PortalNoticeView struct {
	NoticeView
	Summary       string `json:"summary"` // Markdown
	SummarySHA256 string `json:"summary_sha256"`
}

type CertificateView = privacy.SignedCertificate

type SubjectRequest = privacy.SubjectInput

type SubjectUpdateRequest = privacy.SubjectUpdate

type SubjectView struct {
	ID        string     `json:"id"`
	Pseudonym string     `json:"pseudonym"`
	Locale    string     `json:"locale"`
	State     string     `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	ErasedAt  *time.Time `json:"erased_at,omitempty"`
}

func subjectView(s store.Subject, status string) SubjectView {
	return SubjectView{ID: s.ID, Pseudonym: s.Pseudonym, Locale: s.Locale, State: status, CreatedAt: s.CreatedAt, ErasedAt: optTime(s.ErasedAt)}
}

type AccessRecordView struct {
	ID       string    `json:"id"`
	DeviceID string    `json:"device_id,omitempty"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	Fields   []string  `json:"fields"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

func accessRecordView(r store.AccessRecord) AccessRecordView {
	return AccessRecordView{ID: r.ID, DeviceID: r.DeviceID, Actor: r.Actor, Action: r.Action, Fields: r.Fields, Reason: r.Reason, At: r.At}
}

type ExportView = privacy.ExportArchive

type ReasonRequest struct {
	Reason string `json:"reason"`
}

type ConsentRequest = privacy.ConsentInput

type ConsentView struct {
	ID            string     `json:"id"`
	DeviceID      string     `json:"device_id,omitempty"`
	Ownership     string     `json:"ownership"`
	NoticeVersion int64      `json:"notice_version"`
	Language      string     `json:"language"`
	Method        string     `json:"method"`
	AllowFullWipe bool       `json:"allow_full_wipe"`
	AcceptedAt    time.Time  `json:"accepted_at"`
	WithdrawnAt   *time.Time `json:"withdrawn_at,omitempty"`
	// Shown is what Steward showed the person: notice-and-summary,
	// notice-only (a portal client that sent no summary digest),
	// outside-steward (an admin recorded a consent given elsewhere) or
	// not-recorded (given before Steward kept what it showed).
	Shown string `json:"shown"`
	// NoticeSHA256 is the hex SHA-256 of the notice body accepted.
	NoticeSHA256 string `json:"notice_sha256,omitempty"`
	// Summary is the plain-words summary shown, word for word (Markdown),
	// and SummarySHA256 its hex SHA-256.
	Summary       string `json:"summary,omitempty"`
	SummarySHA256 string `json:"summary_sha256,omitempty"`
	// SummaryUnverified: the kept summary is missing or no longer matches
	// SummarySHA256, so it is not given.
	SummaryUnverified bool `json:"summary_unverified,omitempty"`
}

func consentView(c store.Consent) ConsentView {
	return ConsentView{ID: c.ID, DeviceID: c.DeviceID, Ownership: c.Ownership, NoticeVersion: c.NoticeVersion, Language: c.Language,
		Method: c.Method, AllowFullWipe: c.AllowFullWipe, AcceptedAt: c.AcceptedAt, WithdrawnAt: optTime(c.WithdrawnAt),
		Shown: c.Shown, NoticeSHA256: c.NoticeSHA256, Summary: c.Summary, SummarySHA256: c.SummarySHA256, SummaryUnverified: c.SummaryUnverified}
}

type ConsentStateView struct {
	Consents []ConsentView       `json:"consents"`
	Outdated []privacy.Ownership `json:"outdated"`
}

func consentStateView(cs privacy.ConsentState) ConsentStateView {
	v := ConsentStateView{Consents: []ConsentView{}, Outdated: cs.Outdated}
	for _, c := range cs.Consents {
		v.Consents = append(v.Consents, consentView(c))
	}
	return v
}

type WithdrawRequest struct {
	ConsentID string `json:"consent_id"`
}

type PortalTokenRequest struct {
	TTLHours int  `json:"ttl_hours"`
	Notify   bool `json:"notify"`
}

type PortalTokenView struct {
	Token     string    `json:"token,omitempty"` // absent when mailed
	ExpiresAt time.Time `json:"expires_at"`
}

type DeviceRequest = privacy.DeviceInput

type DeviceView struct {
	ID         string     `json:"id"`
	SubjectID  string     `json:"subject_id,omitempty"`
	Ownership  string     `json:"ownership"`
	Platform   string     `json:"platform"`
	State      string     `json:"state"`
	EnrolledAt *time.Time `json:"enrolled_at,omitempty"`
	LastSeenAt *time.Time `json:"last_seen_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	OSVersion  string     `json:"os_version,omitempty"`
	Model      string     `json:"model,omitempty"`
	// Compliance is compliant, in_grace, noncompliant or unknown.
	Compliance string `json:"compliance"`
	// StaleSince is when the device was flagged for not checking in.
	StaleSince *time.Time `json:"stale_since,omitempty"`
}

func deviceView(d store.Device) DeviceView {
	return DeviceView{ID: d.ID, SubjectID: d.SubjectID, Ownership: d.Ownership, Platform: d.Platform, State: d.State,
		EnrolledAt: optTime(d.EnrolledAt), LastSeenAt: optTime(d.LastSeenAt), CreatedAt: d.CreatedAt,
		OSVersion: d.OSVersion, Model: d.Model, Compliance: d.Compliance, StaleSince: optTime(d.StaleSince)}
}

type DeviceDetailView struct {
	DeviceView
	Fields []privacy.FieldView `json:"fields"`
}

type RevealRequest = privacy.RevealInput

type RevealView struct {
	ID        string    `json:"id"`
	Fields    []string  `json:"fields"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PortalDeviceView is one of the person's devices as its admins see it
// (privacy.OwnDeviceView).
type PortalDeviceView struct {
	DeviceView
	Fields       []privacy.SeenField `json:"fields"`
	NotCollected []privacy.Category  `json:"not_collected"`
}

type PortalMeView struct {
	Person   privacy.ExportPerson `json:"person"`
	Devices  []DeviceView         `json:"devices"`
	Consents ConsentStateView     `json:"consents"`
}
