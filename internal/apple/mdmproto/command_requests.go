package mdmproto

import (
	"net/url"
	"slices"
	"strings"
)

// DeviceInformation asks for the device attributes named in Queries (for
// example "DeviceName", "OSVersion", "SerialNumber"); the caller decides
// which, so that nothing the privacy policy forbids is ever requested.
type DeviceInformation struct{ Queries []string }

// SecurityInfo asks for passcode, encryption and management status.
type SecurityInfo struct{}

// InstalledApplicationList asks for installed apps; ManagedAppsOnly limits
// the answer to apps this server manages (the private choice for BYOD).
type InstalledApplicationList struct {
	ManagedAppsOnly bool
	Identifiers     []string // optional bundle IDs to ask about
}

// ManagedApplicationList asks for the state of managed apps.
type ManagedApplicationList struct{ Identifiers []string }

// ProfileList asks for installed configuration profiles.
type ProfileList struct{ ManagedOnly bool }

// CertificateList asks for installed certificates.
type CertificateList struct{ ManagedOnly bool }

// InstallProfile installs a configuration profile (signed or not).
// ReviewedForPersonal is not sent: it records that Steward checked every
// payload is one a personally owned device may receive.
type InstallProfile struct {
	Payload             []byte
	ReviewedForPersonal bool
}

// RemoveProfile removes the profile with this PayloadIdentifier.
type RemoveProfile struct{ Identifier string }

// DeviceLock locks the device; Message and PhoneNumber show on the lock
// screen. PIN is the six-digit Find My PIN macOS requires.
type DeviceLock struct {
	Message     string
	PhoneNumber string
	PIN         SecretString
}

// EraseDevice erases the device. PIN is the six-digit Find My PIN for
// macOS; ObliterationBehavior is "Default", "DoNotObliterate",
// "ObliterateWithWarning" or "Always" (macOS), empty to leave it out.
type EraseDevice struct {
	PIN                    SecretString
	PreserveDataPlan       bool
	DisallowProximitySetup bool
	ObliterationBehavior   string
}

// RestartDevice restarts the device; NotifyUser (macOS) lets the user save work.
type RestartDevice struct{ NotifyUser bool }

// ShutDownDevice shuts the device down.
type ShutDownDevice struct{}

// EnableLostMode puts a supervised device into Lost Mode. Message or
// PhoneNumber is required.
type EnableLostMode struct {
	Message     string
	PhoneNumber string
	Footnote    string
}

// DisableLostMode takes the device out of Lost Mode.
type DisableLostMode struct{}

// DeviceLocation asks a device in Lost Mode for its location.
type DeviceLocation struct{}

// ClearPasscode removes the passcode using the UnlockToken from TokenUpdate.
type ClearPasscode struct{ UnlockToken SecretBytes }

// OSUpdate is one entry of ScheduleOSUpdate.Updates. It names its update
// by ProductKey or ProductVersion: Apple requires one of them.
type OSUpdate struct {
	ProductKey       string // the update's product key; or
	ProductVersion   string // the version to install
	InstallAction    string // Default, DownloadOnly, InstallASAP, NotifyOnly, InstallLater, InstallForceRestart
	MaxUserDeferrals int    // macOS, with InstallLater; 0 leaves it out
	Priority         string // "Low" or "High", empty to leave it out
}

// ScheduleOSUpdate schedules OS updates. No Updates leaves the key out, and
// the device then applies its default behaviour for the updates it has.
type ScheduleOSUpdate struct{ Updates []OSUpdate }

// Management flags for InstallApplication.
const (
	// ManagementFlagRemoveWithMDM removes the app when the MDM profile is removed.
	ManagementFlagRemoveWithMDM = 1
	// ManagementFlagPreventBackup stops the app's data from being backed up.
	ManagementFlagPreventBackup = 4
)

// PurchaseMethod is how an App Store app is licensed, InstallApplication's
// Options.PurchaseMethod.
type PurchaseMethod int

const (
	// PurchaseFree is for free apps and legacy VPP redemption codes, and
	// Apple's default: it is left out of the command. iOS only: a Mac
	// refuses it.
	PurchaseFree PurchaseMethod = 0
	// PurchaseVPP installs an app assigned through Apps and Books (VPP),
	// the only kind User Enrollment and macOS install from the App Store.
	PurchaseVPP PurchaseMethod = 1
)

// InstallApplication installs an app from the App Store (ITunesStoreID or
// Identifier) or an enterprise app from a manifest (ManifestURL): exactly
// one. PurchaseMethod applies to App Store apps only. InstallAsManaged is
// macOS's (11 and later, not on User Enrollment): without it a Mac installs
// the app unmanaged, and ManagementFlagRemoveWithMDM needs it there.
type InstallApplication struct {
	ITunesStoreID    int64
	Identifier       string
	ManifestURL      string
	ManagementFlags  int
	PurchaseMethod   PurchaseMethod
	InstallAsManaged bool
}

// RemoveApplication removes the managed app with this bundle identifier.
type RemoveApplication struct{ Identifier string }

func (DeviceInformation) RequestType() RequestType        { return RequestDeviceInformation }
func (SecurityInfo) RequestType() RequestType             { return RequestSecurityInfo }
func (InstalledApplicationList) RequestType() RequestType { return RequestInstalledApplicationList }
func (ManagedApplicationList) RequestType() RequestType   { return RequestManagedApplicationList }
func (ProfileList) RequestType() RequestType              { return RequestProfileList }
func (CertificateList) RequestType() RequestType          { return RequestCertificateList }
func (InstallProfile) RequestType() RequestType           { return RequestInstallProfile }
func (RemoveProfile) RequestType() RequestType            { return RequestRemoveProfile }
func (DeviceLock) RequestType() RequestType               { return RequestDeviceLock }
func (EraseDevice) RequestType() RequestType              { return RequestEraseDevice }
func (RestartDevice) RequestType() RequestType            { return RequestRestartDevice }
func (ShutDownDevice) RequestType() RequestType           { return RequestShutDownDevice }
func (EnableLostMode) RequestType() RequestType           { return RequestEnableLostMode }
func (DisableLostMode) RequestType() RequestType          { return RequestDisableLostMode }
func (DeviceLocation) RequestType() RequestType           { return RequestDeviceLocation }
func (ClearPasscode) RequestType() RequestType            { return RequestClearPasscode }
func (ScheduleOSUpdate) RequestType() RequestType         { return RequestScheduleOSUpdate }
func (InstallApplication) RequestType() RequestType       { return RequestInstallApplication }
func (RemoveApplication) RequestType() RequestType        { return RequestRemoveApplication }

func (r DeviceInformation) wire() (any, error) {
	if len(r.Queries) == 0 || slices.Contains(r.Queries, "") {
		return nil, invalid("Queries must name at least one attribute and no empty ones")
	}
	return struct {
		RequestType RequestType `plist:"RequestType"`
		Queries     []string    `plist:"Queries"`
	}{r.RequestType(), r.Queries}, nil
}

func (r SecurityInfo) wire() (any, error)    { return bare{r.RequestType()}, nil }
func (r ShutDownDevice) wire() (any, error)  { return bare{r.RequestType()}, nil }
func (r DisableLostMode) wire() (any, error) { return bare{r.RequestType()}, nil }
func (r DeviceLocation) wire() (any, error)  { return bare{r.RequestType()}, nil }

func (r InstalledApplicationList) wire() (any, error) {
	return struct {
		RequestType     RequestType `plist:"RequestType"`
		ManagedAppsOnly bool        `plist:"ManagedAppsOnly,omitempty"`
		Identifiers     []string    `plist:"Identifiers,omitempty"`
	}{r.RequestType(), r.ManagedAppsOnly, r.Identifiers}, nil
}

func (r ManagedApplicationList) wire() (any, error) {
	return struct {
		RequestType RequestType `plist:"RequestType"`
		Identifiers []string    `plist:"Identifiers,omitempty"`
	}{r.RequestType(), r.Identifiers}, nil
}

type managedOnlyWire struct {
	RequestType RequestType `plist:"RequestType"`
	ManagedOnly bool        `plist:"ManagedOnly,omitempty"`
}

func (r ProfileList) wire() (any, error) { return managedOnlyWire{r.RequestType(), r.ManagedOnly}, nil }
func (r CertificateList) wire() (any, error) {
	return managedOnlyWire{r.RequestType(), r.ManagedOnly}, nil
}

func (r InstallProfile) wire() (any, error) {
	if len(r.Payload) == 0 {
		return nil, invalid("Payload is empty")
	}
	return struct {
		RequestType RequestType `plist:"RequestType"`
		Payload     []byte      `plist:"Payload"`
	}{r.RequestType(), r.Payload}, nil
}

type identifierWire struct {
	RequestType RequestType `plist:"RequestType"`
	Identifier  string      `plist:"Identifier"`
}

func (r RemoveProfile) wire() (any, error) {
	if r.Identifier == "" {
		return nil, invalid("Identifier is empty")
	}
	return identifierWire{r.RequestType(), r.Identifier}, nil
}

func (r RemoveApplication) wire() (any, error) {
	if r.Identifier == "" {
		return nil, invalid("Identifier is empty")
	}
	return identifierWire{r.RequestType(), r.Identifier}, nil
}

// checkPIN accepts an absent PIN or six digits; the error never echoes it.
func checkPIN(pin SecretString) error {
	p := pin.Reveal()
	if p == "" {
		return nil
	}
	if len(p) != 6 {
		return invalid("PIN must be six digits")
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return invalid("PIN must be six digits")
		}
	}
	return nil
}

func (r DeviceLock) wire() (any, error) {
	if err := checkPIN(r.PIN); err != nil {
		return nil, err
	}
	return struct {
		RequestType RequestType `plist:"RequestType"`
		Message     string      `plist:"Message,omitempty"`
		PhoneNumber string      `plist:"PhoneNumber,omitempty"`
		PIN         string      `plist:"PIN,omitempty"`
	}{r.RequestType(), r.Message, r.PhoneNumber, r.PIN.Reveal()}, nil
}

func (r EraseDevice) wire() (any, error) {
	if err := checkPIN(r.PIN); err != nil {
		return nil, err
	}
	switch r.ObliterationBehavior {
	case "", "Default", "DoNotObliterate", "ObliterateWithWarning", "Always":
	default:
		return nil, invalid("ObliterationBehavior must be Default, DoNotObliterate, ObliterateWithWarning or Always")
	}
	return struct {
		RequestType            RequestType `plist:"RequestType"`
		PIN                    string      `plist:"PIN,omitempty"`
		PreserveDataPlan       bool        `plist:"PreserveDataPlan,omitempty"`
		DisallowProximitySetup bool        `plist:"DisallowProximitySetup,omitempty"`
		ObliterationBehavior   string      `plist:"ObliterationBehavior,omitempty"`
	}{r.RequestType(), r.PIN.Reveal(), r.PreserveDataPlan, r.DisallowProximitySetup, r.ObliterationBehavior}, nil
}

func (r RestartDevice) wire() (any, error) {
	return struct {
		RequestType RequestType `plist:"RequestType"`
		NotifyUser  bool        `plist:"NotifyUser,omitempty"`
	}{r.RequestType(), r.NotifyUser}, nil
}

func (r EnableLostMode) wire() (any, error) {
	if strings.TrimSpace(r.Message) == "" && strings.TrimSpace(r.PhoneNumber) == "" {
		return nil, invalid("Message or PhoneNumber is required")
	}
	return struct {
		RequestType RequestType `plist:"RequestType"`
		Message     string      `plist:"Message,omitempty"`
		PhoneNumber string      `plist:"PhoneNumber,omitempty"`
		Footnote    string      `plist:"Footnote,omitempty"`
	}{r.RequestType(), r.Message, r.PhoneNumber, r.Footnote}, nil
}

func (r ClearPasscode) wire() (any, error) {
	if len(r.UnlockToken) == 0 {
		return nil, invalid("UnlockToken is empty")
	}
	return struct {
		RequestType RequestType `plist:"RequestType"`
		UnlockToken []byte      `plist:"UnlockToken"`
	}{r.RequestType(), r.UnlockToken.Reveal()}, nil
}

type osUpdateWire struct {
	ProductKey       string `plist:"ProductKey,omitempty"`
	ProductVersion   string `plist:"ProductVersion,omitempty"`
	InstallAction    string `plist:"InstallAction"`
	MaxUserDeferrals int    `plist:"MaxUserDeferrals,omitempty"`
	Priority         string `plist:"Priority,omitempty"`
}

var installActions = []string{"Default", "DownloadOnly", "InstallASAP", "NotifyOnly", "InstallLater", "InstallForceRestart"}

func (r ScheduleOSUpdate) wire() (any, error) {
	updates := make([]osUpdateWire, 0, len(r.Updates))
	for i, u := range r.Updates {
		if !slices.Contains(installActions, u.InstallAction) {
			return nil, invalid("Updates[%d].InstallAction must be one of %v", i, installActions)
		}
		if u.Priority != "" && u.Priority != "Low" && u.Priority != "High" {
			return nil, invalid("Updates[%d].Priority must be Low or High", i)
		}
		if u.MaxUserDeferrals < 0 {
			return nil, invalid("Updates[%d].MaxUserDeferrals is negative", i)
		}
		if u.ProductKey == "" && u.ProductVersion == "" {
			return nil, invalid("Updates[%d] names no update: ProductKey or ProductVersion is required", i)
		}
		updates = append(updates, osUpdateWire(u))
	}
	return struct {
		RequestType RequestType    `plist:"RequestType"`
		Updates     []osUpdateWire `plist:"Updates,omitempty"`
	}{r.RequestType(), updates}, nil
}

func (r InstallApplication) wire() (any, error) {
	sources := 0
	if r.ITunesStoreID != 0 {
		sources++
	}
	if r.Identifier != "" {
		sources++
	}
	if r.ManifestURL != "" {
		sources++
		u, err := url.Parse(r.ManifestURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, invalid("ManifestURL must be an https URL")
		}
	}
	if sources != 1 {
		return nil, invalid("exactly one of ITunesStoreID, Identifier or ManifestURL is required")
	}
	if r.ITunesStoreID < 0 {
		return nil, invalid("ITunesStoreID is negative")
	}
	options, err := r.options()
	if err != nil {
		return nil, err
	}
	return struct {
		RequestType      RequestType `plist:"RequestType"`
		ITunesStoreID    int64       `plist:"iTunesStoreID,omitempty"`
		Identifier       string      `plist:"Identifier,omitempty"`
		ManifestURL      string      `plist:"ManifestURL,omitempty"`
		ManagementFlags  int         `plist:"ManagementFlags,omitempty"`
		InstallAsManaged bool        `plist:"InstallAsManaged,omitempty"`
		Options          *appOptions `plist:"Options,omitempty"`
	}{r.RequestType(), r.ITunesStoreID, r.Identifier, r.ManifestURL, r.ManagementFlags, r.InstallAsManaged, options}, nil
}

type appOptions struct {
	PurchaseMethod PurchaseMethod `plist:"PurchaseMethod"`
}

// options is the Options dictionary, nil for Apple's default (free).
func (r InstallApplication) options() (*appOptions, error) {
	switch r.PurchaseMethod {
	case PurchaseFree:
		return nil, nil
	case PurchaseVPP:
		if r.ManifestURL != "" {
			return nil, invalid("PurchaseMethod is for App Store apps, not an app from a ManifestURL")
		}
		return &appOptions{r.PurchaseMethod}, nil
	}
	return nil, invalid("PurchaseMethod must be 0 (free) or 1 (Apps and Books)")
}
