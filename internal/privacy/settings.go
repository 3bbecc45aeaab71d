package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// Outbound flows: every way data can leave Steward other than to the admins
// and employees themselves. All are off until an admin consents.
const (
	FlowAssetSync      = "asset_sync"       // integrations with asset or service-desk systems
	FlowDiagnosticLogs = "diagnostic_logs"  // diagnostic log upload to the vendor
	FlowUsageStats     = "usage_statistics" // anonymous usage statistics
	FlowWebhooks       = "webhooks"         // event webhooks to the tenant's own systems
)

// FlowInfo describes an outbound flow for admins and the record of processing.
type FlowInfo struct {
	Flow        string     `json:"flow"`
	Name        string     `json:"name"`
	Recipient   string     `json:"recipient"`
	Categories  []Category `json:"categories"`
	Description string     `json:"description"`
}

// Flows lists every outbound flow Steward has.
var Flows = []FlowInfo{
	{FlowAssetSync, "Asset and service-desk sync", "The tenant's asset management or service-desk system",
		[]Category{DeviceIdentity, Hardware, OS, UserIdentity}, "Pushes device records to an external inventory."},
	{FlowDiagnosticLogs, "Diagnostic log upload", "Steward's maintainers (support)",
		[]Category{UsageLogs}, "Uploads server diagnostic logs when support is asked for."},
	{FlowUsageStats, "Anonymous usage statistics", "Steward's maintainers",
		nil, "Counts of devices and features in use; no identifiers."},
	{FlowWebhooks, "Event webhooks", "Endpoints the tenant configures",
		[]Category{DeviceIdentity, SecurityState}, "Sends device and compliance events to the tenant's systems."},
}

// KnownFlow reports whether name is an outbound flow.
func KnownFlow(name string) bool {
	for _, f := range Flows {
		if f.Flow == name {
			return true
		}
	}
	return false
}

// Settings is a tenant's privacy configuration, stored as one versioned document.
type Settings struct {
	Policy Policy `json:"policy"`
	// RetentionDays overrides the catalogue's retention per category; a
	// category absent here keeps its default.
	RetentionDays map[Category]int `json:"retention_days,omitempty"`
	// Flows holds the admin consent for each outbound flow; absent is off.
	Flows map[string]FlowConsent `json:"flows,omitempty"`
	// NoticeVersions is the current privacy-notice version per ownership
	// class; consent to an older version must be asked again.
	NoticeVersions map[Ownership]int64 `json:"notice_versions,omitempty"`
	// NoticePolicies keeps, for each notice version of a personally owned
	// class, the class's policy and retention when it was published: what
	// the employees who accepted that version agreed to (see
	// EffectiveTerms).
	NoticePolicies map[Ownership]map[int64]NoticeTerms `json:"notice_policies,omitempty"`
}

// NoticeTerms is what a notice version of a personally owned class told
// its readers: the class's policy and how long each category is kept.
type NoticeTerms struct {
	ClassPolicy
	// RetentionDays is each category's period in days when the version
	// was published (0: while the device is managed); nil for a version
	// kept before Steward recorded it.
	RetentionDays map[Category]int `json:"retention_days,omitempty"`
}

// FlowConsent records who switched a flow on or off.
type FlowConsent struct {
	Enabled bool      `json:"enabled"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
}

// DefaultSettings is what a tenant that never changed anything runs on.
func DefaultSettings() Settings {
	return Settings{Policy: DefaultPolicy(), NoticeVersions: map[Ownership]int64{}}
}

// Retention returns the tenant's retention for c (zero: while enrolled).
func (s Settings) Retention(c Category) time.Duration {
	if d, ok := s.RetentionDays[c]; ok {
		if c == Location {
			d = min(d, maxLocationDays) // also for settings stored before the cap
		}
		return time.Duration(d) * day
	}
	ci, _ := CategoryByName(c)
	return ci.Retention
}

// FlowEnabled reports whether the admin consented to flow.
func (s Settings) FlowEnabled(flow string) bool { return s.Flows[flow].Enabled }

// LoadSettings returns the tenant's settings and their version (0: defaults).
func LoadSettings(ctx context.Context, q store.Queries, tenantID string) (Settings, int64, error) {
	doc, version, err := q.PrivacySettings().Get(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) {
		return DefaultSettings(), 0, nil
	}
	if err != nil {
		return Settings{}, 0, err
	}
	s, err := decodeSettings(tenantID, doc)
	return s, version, err
}

// loadSettingsShared reads the settings under a shared lock (PostgreSQL), so
// a policy change cannot slip between the gate's reading of the policy and
// its writing of values. A tenant still on defaults gets its row written
// first, so that there is a row to lock.
func loadSettingsShared(ctx context.Context, q store.Queries, tenantID string, now time.Time) (Settings, error) {
	doc, _, err := q.PrivacySettings().GetShared(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) {
		if err := SaveSettings(ctx, q, tenantID, DefaultSettings(), 0, now); err != nil && !errors.Is(err, store.ErrConflict) {
			return Settings{}, err
		}
		doc, _, err = q.PrivacySettings().GetShared(ctx, tenantID)
	}
	if err != nil {
		return Settings{}, err
	}
	return decodeShared(tenantID, doc)
}

// ViewSettings is LoadSettings for callers that only read the settings, as
// every command enqueued does: the result is shared and must not be
// modified.
func ViewSettings(ctx context.Context, q store.Queries, tenantID string) (Settings, error) {
	doc, _, err := q.PrivacySettings().Get(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) {
		return DefaultSettings(), nil
	}
	if err != nil {
		return Settings{}, err
	}
	return decodeShared(tenantID, doc)
}

// decodeShared decodes doc through sharedSettings.
func decodeShared(tenantID string, doc []byte) (Settings, error) {
	if cached, ok := sharedSettings.Load(tenantID); ok && bytes.Equal(cached.(decodedSettings).doc, doc) {
		return cached.(decodedSettings).settings, nil
	}
	settings, err := decodeSettings(tenantID, doc)
	if err == nil {
		sharedSettings.Store(tenantID, decodedSettings{doc: doc, settings: settings})
	}
	return settings, err
}

// sharedSettings keeps each tenant's last decoded settings for the gate and
// other readers on hot paths: decoding the JSON cost more than reading it.
// An entry is used only while the stored bytes are the same, so a change
// takes effect at once. Its users only read what they get; nothing may
// modify the shared maps.
var sharedSettings sync.Map // tenant ID -> decodedSettings

type decodedSettings struct {
	doc      []byte
	settings Settings
}

func decodeSettings(tenantID string, doc []byte) (Settings, error) {
	s := DefaultSettings()
	if err := json.Unmarshal(doc, &s); err != nil {
		return Settings{}, fmt.Errorf("privacy: the stored settings of tenant %s do not decode: %w", tenantID, err)
	}
	// Classes missing from an older document keep their private defaults.
	for o, cp := range DefaultPolicy() {
		if _, ok := s.Policy[o]; !ok {
			s.Policy[o] = cp
		}
	}
	if s.NoticeVersions == nil {
		s.NoticeVersions = map[Ownership]int64{}
	}
	// A current notice published before Steward kept each version's
	// policy: every widening publishes a new version, so the policy has at
	// most narrowed since, and today's is a safe record of what its readers
	// accepted. It is stored with the next save, which decodes first. Not
	// so the retention, which could be lengthened without a new version:
	// that stays unknown (see acceptedTerms).
	for o, v := range s.NoticeVersions {
		if _, kept := s.NoticePolicies[o][v]; v > 0 && !kept {
			s.keepNoticePolicy(o, v)
		}
	}
	return s, nil
}

// SaveSettings stores s as the version after expected; ErrConflict when
// someone else saved in between.
func SaveSettings(ctx context.Context, q store.Queries, tenantID string, s Settings, expected int64, at time.Time) error {
	doc, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return q.PrivacySettings().Put(ctx, tenantID, doc, expected, at)
}

// Retention bounds an admin may set, in days.
const (
	minRetentionDays = 1
	maxRetentionDays = 3650
	// maxLocationDays caps location whatever a tenant wants: where a
	// person was is the most revealing thing Steward can hold.
	maxLocationDays = 7
)
