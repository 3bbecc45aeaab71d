package mdm

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// observe collects non-empty values under their catalogue keys.
type observe []privacy.Observation

func (o *observe) str(field, v string) {
	if v = strings.TrimSpace(v); v != "" {
		*o = append(*o, privacy.Observation{Field: field, Value: v})
	}
}

func (o *observe) num(field string, v *mdmproto.Number) {
	if v != nil {
		*o = append(*o, privacy.Observation{Field: field, Value: float64(*v)})
	}
}

func (o *observe) flag(field string, v *bool) {
	if v != nil {
		*o = append(*o, privacy.Observation{Field: field, Value: *v})
	}
}

// authenticateObservations is what an Authenticate message tells about the
// device. A User Enrollment's hardware identifiers are never taken, however
// its policy was widened: Apple's devices do not send them there, and one
// that does is not to be believed or kept.
func authenticateObservations(m *mdmproto.Authenticate) []privacy.Observation {
	var o observe
	if !m.IsUserEnrollment() {
		o.str("device.udid", m.UDID)
		o.str("device.serial_number", m.SerialNumber)
		o.str("telephony.imei", m.IMEI)
		o.str("telephony.meid", m.MEID)
	}
	o.str("device.name", m.DeviceName)
	o.str("hardware.model", firstNonEmpty(m.ModelName, m.Model))
	o.str("hardware.product", m.ProductName)
	o.str("os.name", platformOf(m.ProductName, m.Model))
	o.str("os.version", m.OSVersion)
	o.str("os.build", m.BuildVersion)
	return o
}

// capacitiesInGB converts the capacities of a Mac on macOS 11 or earlier,
// which it reports in base-2 gibibytes (information.device.yaml), to the
// base-10 gigabytes every other device reports and the inventory keeps.
// The answer names the system and version when it was asked them; else
// the device's record does. A Mac whose version is not known is left as
// it reported.
func (s *Service) capacitiesInGB(ctx context.Context, q store.Queries, cmd store.Command, r *mdmproto.DeviceInformationResult) error {
	if r.DeviceCapacity == nil && r.AvailableDeviceCapacity == nil {
		return nil
	}
	d := store.Device{Platform: platformOf(r.ProductName, r.Model), OSVersion: r.OSVersion}
	if d.Platform == "" || d.OSVersion == "" {
		stored, err := q.Devices().Get(ctx, cmd.TenantID, cmd.DeviceID)
		if err != nil {
			return err
		}
		d.Platform, d.OSVersion = cmp.Or(d.Platform, stored.Platform), cmp.Or(d.OSVersion, stored.OSVersion)
	}
	if d.Platform != "macos" || d.OSVersion == "" || runsAtLeast(d, "12.0") {
		return nil
	}
	const gibInGB = 1.073741824
	for _, v := range []*mdmproto.Number{r.DeviceCapacity, r.AvailableDeviceCapacity} {
		if v != nil {
			*v *= gibInGB
		}
	}
	return nil
}

func deviceInformationObservations(r mdmproto.DeviceInformationResult) []privacy.Observation {
	var o observe
	o.str("device.udid", r.UDID)
	o.str("device.serial_number", r.SerialNumber)
	o.str("device.name", r.DeviceName)
	o.str("hardware.model", firstNonEmpty(r.ModelName, r.Model))
	o.str("hardware.product", r.ProductName)
	o.num("hardware.capacity_gb", r.DeviceCapacity)
	o.num("hardware.available_gb", r.AvailableDeviceCapacity)
	// -1.0 is a device that cannot tell its level (information.device.yaml):
	// no measurement, so the level stays unknown.
	if r.BatteryLevel != nil && *r.BatteryLevel >= 0 {
		o.num("hardware.battery_level", r.BatteryLevel)
	}
	o.str("os.version", r.OSVersion)
	o.str("os.build", r.BuildVersion)
	o.flag("os.supervised", r.IsSupervised)
	o.flag("os.shared_ipad", r.IsMultiUser)
	o.str("network.wifi_mac", r.WiFiMAC)
	o.str("network.bluetooth_mac", r.BluetoothMAC)
	// From iOS 16 the telephony fields come from ServiceSubscriptions
	// instead (telephonyQueries); a device asked one kind answers only it.
	line, equipment := subscriptionsOf(r.ServiceSubscriptions)
	o.str("telephony.phone_number", firstNonEmpty(r.PhoneNumber, line.PhoneNumber))
	o.str("telephony.imei", firstNonEmpty(r.IMEI, equipment.IMEI))
	o.str("telephony.meid", firstNonEmpty(r.MEID, equipment.MEID))
	o.str("telephony.iccid", firstNonEmpty(r.ICCID, line.ICCID))
	o.str("telephony.carrier", firstNonEmpty(r.CurrentCarrierNetwork, line.CurrentCarrierNetwork))
	o.flag("security.activation_lock", r.IsActivationLockEnabled)
	o.flag("security.pin_required_for_lock", r.PINRequiredForDeviceLock)
	o.flag("security.pin_required_for_erase", r.PINRequiredForEraseDevice)
	return o
}

// subscriptionsOf picks, of a ServiceSubscriptions answer, the subscription
// whose line the inventory shows (phone number, SIM, carrier, all from
// that one line): the one the device prefers for calls, else for data,
// else the first listed, so that switching the data line does not flip
// the phone number; and the equipment identifiers (IMEI, MEID) of the
// first listed that names them. A device with no subscription (no SIM, a
// Wi-Fi iPad) answers an empty list, which tells nothing.
func subscriptionsOf(subs []mdmproto.ServiceSubscription) (line, equipment mdmproto.ServiceSubscription) {
	if len(subs) == 0 {
		return line, equipment
	}
	line = subs[0]
	if i := slices.IndexFunc(subs, func(s mdmproto.ServiceSubscription) bool { return isTrue(s.IsVoicePreferred) }); i >= 0 {
		line = subs[i]
	} else if i := slices.IndexFunc(subs, func(s mdmproto.ServiceSubscription) bool { return isTrue(s.IsDataPreferred) }); i >= 0 {
		line = subs[i]
	}
	for _, s := range subs {
		if strings.TrimSpace(s.IMEI) != "" || strings.TrimSpace(s.MEID) != "" {
			return line, s
		}
	}
	return line, equipment
}

func isTrue(b *bool) bool { return b != nil && *b }

func securityInfoObservations(r mdmproto.SecurityInfoResult) []privacy.Observation {
	var o observe
	o.flag("security.passcode_present", r.PasscodePresent)
	o.flag("security.passcode_compliant", r.PasscodeCompliant)
	switch {
	case r.FDEEnabled != nil:
		o.flag("security.encrypted", r.FDEEnabled)
	case r.HardwareEncryptionCaps != nil:
		// information.security.yaml: data protection needs both levels of
		// hardware encryption (3) and a passcode. User Enrollment does not
		// say whether a passcode is set, so there it stays unknown.
		switch {
		case *r.HardwareEncryptionCaps&3 != 3:
			o.flag("security.encrypted", new(false))
		case r.PasscodePresent != nil:
			o.flag("security.encrypted", r.PasscodePresent)
		}
	}
	if r.SystemIntegrityProtectionEnabled != nil {
		compromised := !*r.SystemIntegrityProtectionEnabled
		o.flag("security.compromised", &compromised)
	}
	if r.FirewallSettings != nil {
		o.flag("security.firewall_enabled", r.FirewallSettings.FirewallEnabled)
	}
	return o
}

// maxInstalledApps bounds what one InstalledApplicationList stores: a Mac
// with developer tools lists a few thousand bundles; beyond, a device is
// only filling the inventory.
const maxInstalledApps = 5000

// appObservations turns an app list into apps.installed. managed says every
// app of the list is known to be the organisation's (on personal devices,
// where organisationApps kept only those). An app without an identifier,
// which macOS may list (application.installed.list.yaml), is kept by name
// and version where every app is kept; on a personal device never, as
// nothing shows it is the organisation's. An entry naming nothing is not.
func appObservations(apps []mdmproto.InstalledApplication, managed bool) []privacy.Observation {
	out := make([]privacy.App, 0, min(len(apps), maxInstalledApps))
	for _, a := range apps {
		if len(out) == maxInstalledApps {
			break
		}
		if a.Identifier == "" && (managed || strings.TrimSpace(a.Name) == "") {
			continue
		}
		out = append(out, privacy.App{ID: truncateText(a.Identifier, 256), Name: truncateText(a.Name, 256),
			Version: truncateText(firstNonEmpty(a.ShortVersion, a.Version), 64), Managed: managed})
	}
	return []privacy.Observation{{Field: "apps.installed", Value: out}}
}

// maxManagedApps bounds what one ManagedApplicationList stores.
const maxManagedApps = 2000

// managedAppObservations turns a ManagedApplicationList answer into
// apps.managed. On a personally owned device a status saying the copy is
// the employee's own, or that they declined the organisation's install, is
// kept as notManaged (personalStatus): an admin who has an app queued
// must not learn from its status that the employee has their own copy.
func managedAppObservations(list map[string]mdmproto.ManagedApplication, personal bool) []privacy.Observation {
	out := make([]privacy.ManagedApp, 0, min(len(list), maxManagedApps))
	for _, id := range slices.Sorted(maps.Keys(list)) {
		if len(out) == maxManagedApps {
			break
		}
		if id == "" {
			continue
		}
		a := list[id]
		status, validated := a.Status, a.IsValidated
		if personal {
			status = personalStatus(status)
		}
		if status == notManaged {
			validated = nil // whether a copy can run would tell one is there
		}
		out = append(out, privacy.ManagedApp{ID: truncateText(id, 256), Status: truncateText(status, 64), Validated: validated})
	}
	return []privacy.Observation{{Field: "apps.managed", Value: out}}
}

// Certificate is one entry of security.certificates: what an admin needs
// to see, never the certificate itself.
type Certificate struct {
	CommonName  string    `json:"common_name"`
	Identity    bool      `json:"identity"`
	Issuer      string    `json:"issuer,omitempty"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	Fingerprint string    `json:"sha256,omitempty"`
}

// maxCertificates bounds what one CertificateList stores.
const maxCertificates = 500

func certificateObservations(list []mdmproto.InstalledCertificate) []privacy.Observation {
	out := make([]Certificate, 0, min(len(list), maxCertificates))
	for _, c := range list[:min(len(list), maxCertificates)] {
		e := Certificate{CommonName: truncateText(c.CommonName, 256), Identity: c.IsIdentity}
		if cert, err := x509.ParseCertificate(c.Data); err == nil {
			sum := sha256.Sum256(c.Data)
			e.Issuer, e.NotAfter, e.Fingerprint = truncateText(cert.Issuer.CommonName, 256), cert.NotAfter.UTC(), hex.EncodeToString(sum[:])
		}
		out = append(out, e)
	}
	return []privacy.Observation{{Field: "security.certificates", Value: out}}
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// Location is the value of location.coordinates: where a device in Lost
// Mode was, how precisely, and when it determined that.
type Location struct {
	Latitude  float64 `json:"lat"`
	Longitude float64 `json:"lon"`
	// AccuracyMetres is absent when the device did not say (before iOS 10.3).
	AccuracyMetres *float64 `json:"accuracy_m,omitempty"`
	// FixedAt is absent when the device did not say; the value's collection
	// time is when Steward received it, which for a cached fix is later.
	FixedAt time.Time `json:"fixed_at,omitzero"`
}

// locationObservations keeps a DeviceLocation answer's location; one
// without a fix tells nothing, and the last known location stays.
func locationObservations(r mdmproto.DeviceLocationResult) []privacy.Observation {
	if !r.HasFix() {
		return nil
	}
	return []privacy.Observation{{Field: "location.coordinates", Value: Location{
		Latitude: r.Latitude, Longitude: r.Longitude, AccuracyMetres: r.HorizontalAccuracy, FixedAt: r.Timestamp}, ObservedAt: r.Timestamp}}
}

// noLocationChain is kept as the error chain of a DeviceLocation its
// device acknowledged, yet that stored no location, for reason: the
// command was carried out, but it says nowhere new, and its action tells
// the admin why (NoLocationStored). No domain or code: Steward's own
// words, never the device's.
func noLocationChain(reason string) string {
	return `[{"LocalizedDescription":"` + reason + `; no location was stored"}]`
}

// The reasons a DeviceLocation answer stores no location.
const (
	reasonNoFix    = "the device answered without a location fix"
	reasonStaleFix = "the device answered with a location fix older than the location's retention"
	reasonDropped  = "the policy stopped keeping locations before the device answered"
)

// acknowledgedNote returns the chain to keep on cmd, acknowledged by res at
// now: for a DeviceLocation that will store no location (as the gate
// judges it), why; for an InstallApplication, Apple's rejection reason if
// it gives one (rejectionChain); "" for any other command or answer. One
// that does not decode fails as bad input instead.
func (s *Service) acknowledgedNote(ctx context.Context, q store.Queries, d store.Device, cmd store.Command, res mdmproto.Result,
	now time.Time) (string, error) {
	if cmd.RequestType == string(mdmproto.RequestInstallApplication) {
		return string(rejectionChain(cmd, res, nil, privacy.Ownership(d.Ownership).PersonallyOwned())), nil
	}
	if cmd.RequestType != string(mdmproto.RequestDeviceLocation) {
		return "", nil
	}
	r, err := mdmproto.DecodeDeviceLocation(res)
	switch {
	case err != nil:
		return "", nil
	case !r.HasFix():
		return noLocationChain(reasonNoFix), nil
	}
	settings, err := privacy.LoadSettingsShared(ctx, q, d.TenantID, now)
	if err != nil {
		return "", err
	}
	terms, err := privacy.EffectiveTerms(ctx, q, settings, d)
	if err != nil {
		return "", err
	}
	switch {
	case terms.Policy.Mode(privacy.Ownership(d.Ownership), privacy.Location) == privacy.Drop:
		return noLocationChain(reasonDropped), nil
	case privacy.TooOldToKeep(r.Timestamp, now, terms.Retention(privacy.Location)):
		return noLocationChain(reasonStaleFix), nil
	}
	return "", nil
}

// rejectionChain returns chain, the error chain kept for cmd (nil for
// none), with Apple's reason first when res, an answer to an
// InstallApplication, gives one (RejectionReason): it tells an app already
// installed or queued from one the App Store could not verify. Only the
// schema's values are kept, as Steward's own words (no domain): the
// device's description may be left out (keepsErrorText), the reason never.
// On a personally owned device (personal) a reason that says the employee
// has the app themselves is not kept (withheldReasons): the chain is then
// withheldRejection alone, the device's entries left out as their codes
// can say the same. nil for any other command, or an answer without one.
func rejectionChain(cmd store.Command, res mdmproto.Result, chain []byte, personal bool) []byte {
	if cmd.RequestType != string(mdmproto.RequestInstallApplication) {
		return chain
	}
	reason := mdmproto.InstallRejectionReason(res)
	if reason == "" {
		return chain
	}
	if personal && withheldReasons[reason] {
		out, _ := json.Marshal([]mdmproto.ErrorChainItem{{LocalizedDescription: withheldRejection}})
		return out
	}
	var entries []mdmproto.ErrorChainItem
	if len(chain) > 0 && json.Unmarshal(chain, &entries) != nil {
		entries = nil
	}
	entries = append([]mdmproto.ErrorChainItem{{LocalizedDescription: RejectionPrefix + reason}}, entries...)
	entries = entries[:min(len(entries), maxErrorChainItems)]
	for {
		out, err := json.Marshal(entries)
		if err != nil {
			return chain
		}
		if len(out) <= maxErrorChain || len(entries) == 1 {
			return out
		}
		entries = entries[:len(entries)-1] // within boundedErrorChain's bound still
	}
}

// RejectionPrefix begins the error chain entry that names an
// InstallApplication's rejection reason.
const RejectionPrefix = "the device rejected the install: "

// withheldReasons are the rejection reasons not kept on a personally owned
// device: AppAlreadyInstalled and ManagementChangeNotSupported say the
// employee has their own copy of the app. Other, which says nothing, is
// withheld with them, so that the words kept do not name those two.
var withheldReasons = map[string]bool{"AppAlreadyInstalled": true, "ManagementChangeNotSupported": true, "Other": true}

// withheldRejection is what is kept of a withheld reason.
const withheldRejection = RejectionPrefix + "its reason is not kept on a personally owned device"

// NoLocationStored returns, for cmd, a DeviceLocation its device
// acknowledged without its answer storing a location, why not; "" for
// any other command. The last known location, if any, stays.
func NoLocationStored(cmd store.Command) string {
	if cmd.RequestType != string(mdmproto.RequestDeviceLocation) || cmd.State != store.CommandAcknowledged {
		return ""
	}
	for _, reason := range []string{reasonNoFix, reasonStaleFix, reasonDropped} {
		if cmd.ErrorChain == noLocationChain(reason) {
			return reason
		}
	}
	return ""
}

// LastLocationAt returns when Steward received device d's last known
// location, as the inventory shows it beside the masked value; ok is
// false when none is kept (never located, expired or erased). The
// location itself is not read.
func LastLocationAt(ctx context.Context, q store.Queries, tenantID, deviceID string, now time.Time) (at time.Time, ok bool, err error) {
	current, err := q.Inventory().CurrentOf(ctx, tenantID, deviceID, []string{"location.coordinates"})
	if err != nil {
		return time.Time{}, false, err
	}
	for _, v := range current {
		if v.Field == "location.coordinates" && (v.ExpiresAt.IsZero() || v.ExpiresAt.After(now)) {
			return v.CollectedAt, true, nil
		}
	}
	return time.Time{}, false, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if strings.TrimSpace(x) != "" {
			return x
		}
	}
	return ""
}
