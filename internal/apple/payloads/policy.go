package payloads

import (
	"bytes"
)

// Passcode configures com.apple.mobiledevice.passwordpolicy. Unset fields
// are left out so the device default applies; ranges are Apple's.
type Passcode struct {
	MinLength            *int  `json:"min_length,omitempty"`             // 0-16
	RequireAlphanumeric  *bool `json:"require_alphanumeric,omitempty"`   //
	AllowSimple          *bool `json:"allow_simple,omitempty"`           // repeating/sequential codes
	MaxFailedAttempts    *int  `json:"max_failed_attempts,omitempty"`    // 2-11
	MaxInactivityMinutes *int  `json:"max_inactivity_minutes,omitempty"` // 0-15, auto-lock
	MaxAgeDays           *int  `json:"max_age_days,omitempty"`           // 0-730, 0 = never expires
	History              *int  `json:"history,omitempty"`                // 1-50 previous codes refused
}

func (p *Passcode) validate(_ *validator, path string) error {
	ranges := []struct {
		name     string
		value    *int
		min, max int
	}{
		{"min_length", p.MinLength, 0, 16},
		{"max_failed_attempts", p.MaxFailedAttempts, 2, 11},
		{"max_inactivity_minutes", p.MaxInactivityMinutes, 0, 15},
		{"max_age_days", p.MaxAgeDays, 0, 730},
		{"history", p.History, 1, 50},
	}
	set := p.RequireAlphanumeric != nil || p.AllowSimple != nil
	for _, r := range ranges {
		if r.value == nil {
			continue
		}
		set = true
		if *r.value < r.min || *r.value > r.max {
			return fieldErr(path+"."+r.name, "must be between %d and %d", r.min, r.max)
		}
	}
	if !set {
		return fieldErr(path, "set at least one passcode rule")
	}
	return nil
}

func (p *Passcode) content(*builder) (map[string]any, error) {
	keys := map[string]any{}
	putInt(keys, "minLength", p.MinLength)
	putBool(keys, "requireAlphanumeric", p.RequireAlphanumeric)
	putBool(keys, "allowSimple", p.AllowSimple)
	putInt(keys, "maxFailedAttempts", p.MaxFailedAttempts)
	putInt(keys, "maxInactivity", p.MaxInactivityMinutes)
	putInt(keys, "maxPINAgeInDays", p.MaxAgeDays)
	putInt(keys, "pinHistory", p.History)
	return keys, nil
}

func (p *Passcode) secrets() []namedSecret { return nil }

// Restrictions configures com.apple.applicationaccess. Only the keys an admin
// sets are emitted; the rest stay at the device default. The open-in pair is
// the BYOD switch that keeps work documents inside managed apps. Which
// devices apply each key is in restrictionRules: macOS lacks eight of them.
type Restrictions struct {
	AllowCamera                     *bool `json:"allow_camera,omitempty"`
	AllowAppInstallation            *bool `json:"allow_app_installation,omitempty"` // iPhone and iPad, supervised only
	AllowOpenFromManagedToUnmanaged *bool `json:"allow_open_from_managed_to_unmanaged,omitempty"`
	AllowOpenFromUnmanagedToManaged *bool `json:"allow_open_from_unmanaged_to_managed,omitempty"`
	RequireManagedPasteboard        *bool `json:"require_managed_pasteboard,omitempty"`
	AllowScreenshot                 *bool `json:"allow_screenshot,omitempty"`
	AllowManagedAppsCloudSync       *bool `json:"allow_managed_apps_cloud_sync,omitempty"`
	AllowCloudBackup                *bool `json:"allow_cloud_backup,omitempty"`
	AllowCloudDocumentSync          *bool `json:"allow_cloud_document_sync,omitempty"`
	AllowEnterpriseBookBackup       *bool `json:"allow_enterprise_book_backup,omitempty"`
	ForceEncryptedBackup            *bool `json:"force_encrypted_backup,omitempty"`
	AllowAirDrop                    *bool `json:"allow_airdrop,omitempty"`
	AllowEraseContentAndSettings    *bool `json:"allow_erase_content_and_settings,omitempty"`
	AllowProfileInstallation        *bool `json:"allow_profile_installation,omitempty"` // UI installs; on iOS supervised only
}

func (r *Restrictions) pairs() []struct {
	key   string
	value *bool
} {
	return []struct {
		key   string
		value *bool
	}{
		{"allowCamera", r.AllowCamera},
		{"allowAppInstallation", r.AllowAppInstallation},
		{"allowOpenFromManagedToUnmanaged", r.AllowOpenFromManagedToUnmanaged},
		{"allowOpenFromUnmanagedToManaged", r.AllowOpenFromUnmanagedToManaged},
		{"requireManagedPasteboard", r.RequireManagedPasteboard},
		{"allowScreenShot", r.AllowScreenshot},
		{"allowManagedAppsCloudSync", r.AllowManagedAppsCloudSync},
		{"allowCloudBackup", r.AllowCloudBackup},
		{"allowCloudDocumentSync", r.AllowCloudDocumentSync},
		{"allowEnterpriseBookBackup", r.AllowEnterpriseBookBackup},
		{"forceEncryptedBackup", r.ForceEncryptedBackup},
		{"allowAirDrop", r.AllowAirDrop},
		{"allowEraseContentAndSettings", r.AllowEraseContentAndSettings},
		{"allowUIConfigurationProfileInstallation", r.AllowProfileInstallation},
	}
}

func (r *Restrictions) validate(_ *validator, path string) error {
	for _, p := range r.pairs() {
		if p.value != nil {
			return nil
		}
	}
	return fieldErr(path, "set at least one restriction; unset ones keep the device default")
}

func (r *Restrictions) content(*builder) (map[string]any, error) {
	keys := map[string]any{}
	for _, p := range r.pairs() {
		putBool(keys, p.key, p.value)
	}
	return keys, nil
}

func (r *Restrictions) secrets() []namedSecret { return nil }

// maxIconSize bounds a web clip icon; Apple shows them at most 400x400.
const maxIconSize = 256 << 10

// WebClip configures com.apple.webClip.managed: a home-screen link.
type WebClip struct {
	Label      string `json:"label"`
	URL        string `json:"url"`                 // https
	Removable  *bool  `json:"removable,omitempty"` // default true
	FullScreen bool   `json:"full_screen,omitempty"`
	Icon       []byte `json:"icon,omitempty"` // PNG or JPEG, base64 in JSON
}

func (w *WebClip) validate(_ *validator, path string) error {
	if err := checkText(path+".label", w.Label, 64, true); err != nil {
		return err
	}
	// https only: the clip opens with the user's trust, and a clear-text page
	// can be swapped on the way.
	if err := checkURL(path+".url", w.URL, "https"); err != nil {
		return err
	}
	if len(w.Icon) > 0 {
		if len(w.Icon) > maxIconSize {
			return fieldErr(path+".icon", "is larger than %d KiB; use a 400x400 PNG", maxIconSize>>10)
		}
		png := bytes.HasPrefix(w.Icon, []byte("\x89PNG\r\n\x1a\n"))
		jpeg := bytes.HasPrefix(w.Icon, []byte{0xff, 0xd8, 0xff})
		if !png && !jpeg {
			return fieldErr(path+".icon", "must be a PNG or JPEG image, base64-encoded")
		}
	}
	return nil
}

func (w *WebClip) content(*builder) (map[string]any, error) {
	keys := map[string]any{
		"Label":       w.Label,
		"URL":         w.URL,
		"IsRemovable": w.Removable == nil || *w.Removable,
		"FullScreen":  w.FullScreen,
	}
	if len(w.Icon) > 0 {
		keys["Icon"] = w.Icon
	}
	return keys, nil
}

func (w *WebClip) secrets() []namedSecret { return nil }

func putBool(keys map[string]any, key string, v *bool) {
	if v != nil {
		keys[key] = *v
	}
}

func putInt(keys map[string]any, key string, v *int) {
	if v != nil {
		keys[key] = *v
	}
}
