package mdmproto

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Number is a plist number that accepts both <integer> and <real>: devices
// are not consistent about which one they send for capacities and levels.
// A <real> that is NaN or infinite is refused: no measurement is, and
// nothing downstream (JSON, the inventory) can hold one; so is an integer
// readInteger refuses.
type Number float64

// UnmarshalPlist implements plist.Unmarshaler.
func (n *Number) UnmarshalPlist(unmarshal func(any) error) error {
	var f float64
	if err := unmarshal(&f); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return errors.New("want a finite number")
		}
		*n = Number(f)
		return nil
	}
	i, err := readInteger(unmarshal)
	if err != nil {
		return fmt.Errorf("want integer or real: %w", err)
	}
	*n = Number(i)
	return nil
}

// readInteger reads an <integer> as the schema has it, a signed 64-bit
// number. The plist decoder would wrap an unsigned one above MaxInt64 into
// a negative int64, and take a CF$UID reference (a keyed archive's) for a
// number.
func readInteger(unmarshal func(any) error) (int64, error) {
	// Tried first as an int64, which refuses every other plist type, so
	// that no container is decoded into an interface below.
	var i int64
	if err := unmarshal(&i); err != nil {
		return 0, err
	}
	var v any
	if err := unmarshal(&v); err != nil {
		return 0, err
	}
	switch v := v.(type) {
	case int64:
		return v, nil
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), nil
		}
		return 0, errors.New("integer out of range")
	}
	return 0, fmt.Errorf("want an integer, not a %T", v)
}

// checkedInteger checks, after the plist decoder filled an int field, the
// number it read there (see readInteger): a struct with int fields
// decodes them again into a probe of this type.
type checkedInteger struct{}

// UnmarshalPlist implements plist.Unmarshaler. What is not a number at all
// the int field's own decoding refused.
func (checkedInteger) UnmarshalPlist(unmarshal func(any) error) error {
	_, err := readInteger(unmarshal)
	return err
}

// DeviceInformationResult is the QueryResponses of a DeviceInformation result.
// Only the queries that were asked and allowed come back, from a device
// that keeps to the protocol (Only holds one that does not to them); pointer
// fields are nil when the device did not report them.
type DeviceInformationResult struct {
	UDID                             string  `plist:"UDID,omitempty"`
	DeviceName                       string  `plist:"DeviceName,omitempty"`
	OSVersion                        string  `plist:"OSVersion,omitempty"`
	BuildVersion                     string  `plist:"BuildVersion,omitempty"`
	SupplementalBuildVersion         string  `plist:"SupplementalBuildVersion,omitempty"`
	ModelName                        string  `plist:"ModelName,omitempty"`
	Model                            string  `plist:"Model,omitempty"`
	ModelNumber                      string  `plist:"ModelNumber,omitempty"`
	ProductName                      string  `plist:"ProductName,omitempty"`
	SerialNumber                     string  `plist:"SerialNumber,omitempty"`
	DeviceCapacity                   *Number `plist:"DeviceCapacity,omitempty"`          // GB
	AvailableDeviceCapacity          *Number `plist:"AvailableDeviceCapacity,omitempty"` // GB
	BatteryLevel                     *Number `plist:"BatteryLevel,omitempty"`            // 0.0 to 1.0
	IMEI                             string  `plist:"IMEI,omitempty"`
	MEID                             string  `plist:"MEID,omitempty"`
	ICCID                            string  `plist:"ICCID,omitempty"`
	PhoneNumber                      string  `plist:"PhoneNumber,omitempty"`
	ModemFirmwareVersion             string  `plist:"ModemFirmwareVersion,omitempty"`
	CellularTechnology               *int    `plist:"CellularTechnology,omitempty"`
	CurrentCarrierNetwork            string  `plist:"CurrentCarrierNetwork,omitempty"`
	SubscriberCarrierNetwork         string  `plist:"SubscriberCarrierNetwork,omitempty"`
	IsRoaming                        *bool   `plist:"IsRoaming,omitempty"`
	WiFiMAC                          string  `plist:"WiFiMAC,omitempty"`
	BluetoothMAC                     string  `plist:"BluetoothMAC,omitempty"`
	EthernetMAC                      string  `plist:"EthernetMAC,omitempty"`
	HostName                         string  `plist:"HostName,omitempty"`
	LocalHostName                    string  `plist:"LocalHostName,omitempty"`
	TimeZone                         string  `plist:"TimeZone,omitempty"`
	IsSupervised                     *bool   `plist:"IsSupervised,omitempty"`
	IsMultiUser                      *bool   `plist:"IsMultiUser,omitempty"`
	IsAppleSilicon                   *bool   `plist:"IsAppleSilicon,omitempty"`
	IsActivationLockEnabled          *bool   `plist:"IsActivationLockEnabled,omitempty"`
	IsDeviceLocatorServiceEnabled    *bool   `plist:"IsDeviceLocatorServiceEnabled,omitempty"`
	IsCloudBackupEnabled             *bool   `plist:"IsCloudBackupEnabled,omitempty"`
	IsMDMLostModeEnabled             *bool   `plist:"IsMDMLostModeEnabled,omitempty"`
	SystemIntegrityProtectionEnabled *bool   `plist:"SystemIntegrityProtectionEnabled,omitempty"`
	AwaitingConfiguration            *bool   `plist:"AwaitingConfiguration,omitempty"`
	PINRequiredForDeviceLock         *bool   `plist:"PINRequiredForDeviceLock,omitempty"`
	PINRequiredForEraseDevice        *bool   `plist:"PINRequiredForEraseDevice,omitempty"`
	// ServiceSubscriptions replaces the telephony keys Apple deprecated in
	// iOS 16 (iOS 12 and later): one entry per cellular subscription.
	ServiceSubscriptions []ServiceSubscription `plist:"ServiceSubscriptions,omitempty"`
}

// UnmarshalPlist implements plist.Unmarshaler, refusing a number an int
// does not hold as readInteger does.
func (r *DeviceInformationResult) UnmarshalPlist(unmarshal func(any) error) error {
	type fields DeviceInformationResult // without this method
	if err := unmarshal((*fields)(r)); err != nil {
		return err
	}
	var ints struct {
		CellularTechnology checkedInteger `plist:"CellularTechnology"`
	}
	return unmarshal(&ints)
}

// ServiceSubscription is one entry of the ServiceSubscriptions answer
// (information.device.yaml, ServiceSubscriptionProperty): the subkeys
// Steward keeps, and the two that say which subscription the device
// prefers. The others (EID, Label, Slot, the MCC and MNC, roaming,
// carrier settings) are not read: Steward keeps none of them.
type ServiceSubscription struct {
	CurrentCarrierNetwork string `plist:"CurrentCarrierNetwork,omitempty"`
	ICCID                 string `plist:"ICCID,omitempty"`
	IMEI                  string `plist:"IMEI,omitempty"`
	MEID                  string `plist:"MEID,omitempty"`
	PhoneNumber           string `plist:"PhoneNumber,omitempty"`
	IsDataPreferred       *bool  `plist:"IsDataPreferred,omitempty"`
	IsVoicePreferred      *bool  `plist:"IsVoicePreferred,omitempty"`
}

// MaxServiceSubscriptions bounds a ServiceSubscriptions answer. A device
// has a SIM slot or two, each with a subscription active at a time; a
// list far longer is no device's.
const MaxServiceSubscriptions = 16

// deviceInformationKeys pairs each key of DeviceInformationResult, as its
// plist tag names it, with its field.
var deviceInformationKeys = func() []keyField {
	t := reflect.TypeFor[DeviceInformationResult]()
	out := make([]keyField, t.NumField())
	for i := range out {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("plist"), ",")
		if key == "" {
			panic("mdmproto: DeviceInformationResult." + t.Field(i).Name + " has no plist key")
		}
		out[i] = keyField{key, i}
	}
	return out
}()

type keyField struct {
	key   string
	index int
}

// Only drops every answer to a key not in queries and returns how many it
// dropped. A device answers the queries it was asked, but a faulty or
// tampered one may add others, and Steward keeps only what it asked for.
func (r *DeviceInformationResult) Only(queries []string) (dropped int) {
	v := reflect.ValueOf(r).Elem()
	for _, k := range deviceInformationKeys {
		f := v.Field(k.index)
		if f.IsZero() || slices.Contains(queries, k.key) {
			continue
		}
		f.SetZero()
		dropped++
	}
	return dropped
}

// DeviceInformationQueries returns the Queries of a DeviceInformation
// command as Build encoded it.
func DeviceInformationQueries(command []byte) ([]string, error) {
	var c struct {
		Command struct {
			RequestType RequestType `plist:"RequestType"`
			Queries     []string    `plist:"Queries"`
		} `plist:"Command"`
	}
	if err := decodeXMLPlist(command, &c); err != nil {
		return nil, fmt.Errorf("decode %s command: %w", RequestDeviceInformation, err)
	}
	if c.Command.RequestType != RequestDeviceInformation {
		return nil, fmt.Errorf("decode %s command: it is a %.64q command", RequestDeviceInformation, string(c.Command.RequestType))
	}
	return c.Command.Queries, nil
}

// RemovedProfile returns the identifier of the profile a built
// RemoveProfile command removes.
func RemovedProfile(command []byte) (string, error) {
	var c struct {
		Command identifierWire `plist:"Command"`
	}
	if err := decodeXMLPlist(command, &c); err != nil {
		return "", fmt.Errorf("decode %s command: %w", RequestRemoveProfile, err)
	}
	if c.Command.RequestType != RequestRemoveProfile {
		return "", fmt.Errorf("decode %s command: it is a %.64q command", RequestRemoveProfile, string(c.Command.RequestType))
	}
	return c.Command.Identifier, nil
}

// DecodeDeviceInformation decodes the QueryResponses of a DeviceInformation result.
func DecodeDeviceInformation(r Result) (DeviceInformationResult, error) {
	var w struct {
		QueryResponses *DeviceInformationResult `plist:"QueryResponses"`
	}
	if err := decodePayload(r, RequestDeviceInformation, &w, func(p *resultPayloads) error { return p.QueryResponses.getPointer(&w.QueryResponses) }); err != nil {
		return DeviceInformationResult{}, err
	}
	if w.QueryResponses == nil {
		return DeviceInformationResult{}, fmt.Errorf("decode %s result: %w", RequestDeviceInformation, missing("QueryResponses"))
	}
	// The shape of each entry the plist decoder checked (an array of
	// dictionaries, strings and booleans where Apple documents them).
	if n := len(w.QueryResponses.ServiceSubscriptions); n > MaxServiceSubscriptions {
		return DeviceInformationResult{}, fmt.Errorf("decode %s result: %w: ServiceSubscriptions lists %d subscriptions, limit %d",
			RequestDeviceInformation, ErrMalformed, n, MaxServiceSubscriptions)
	}
	return *w.QueryResponses, nil
}

// SecurityInfo is the SecurityInfo dictionary of a SecurityInfo result.
type SecurityInfoResult struct {
	HardwareEncryptionCaps           *int  `plist:"HardwareEncryptionCaps,omitempty"` // 1 block-level, 2 file-level, 3 both
	PasscodePresent                  *bool `plist:"PasscodePresent,omitempty"`
	PasscodeCompliant                *bool `plist:"PasscodeCompliant,omitempty"`
	PasscodeCompliantWithProfiles    *bool `plist:"PasscodeCompliantWithProfiles,omitempty"`
	PasscodeLockGracePeriod          *int  `plist:"PasscodeLockGracePeriod,omitempty"`
	AutoLockTime                     *int  `plist:"AutoLockTime,omitempty"`
	FDEEnabled                       *bool `plist:"FDE_Enabled,omitempty"`
	FDEHasPersonalRecoveryKey        *bool `plist:"FDE_HasPersonalRecoveryKey,omitempty"`
	FDEHasInstitutionalRecoveryKey   *bool `plist:"FDE_HasInstitutionalRecoveryKey,omitempty"`
	SystemIntegrityProtectionEnabled *bool `plist:"SystemIntegrityProtectionEnabled,omitempty"`
	AuthenticatedRootVolumeEnabled   *bool `plist:"AuthenticatedRootVolumeEnabled,omitempty"`
	IsRecoveryLockEnabled            *bool `plist:"IsRecoveryLockEnabled,omitempty"`
	FirewallSettings                 *struct {
		FirewallEnabled  *bool `plist:"FirewallEnabled,omitempty"`
		BlockAllIncoming *bool `plist:"BlockAllIncoming,omitempty"`
		StealthMode      *bool `plist:"StealthMode,omitempty"`
	} `plist:"FirewallSettings,omitempty"`
	ManagementStatus *struct {
		EnrolledViaDEP         *bool `plist:"EnrolledViaDEP,omitempty"`
		UserApprovedEnrollment *bool `plist:"UserApprovedEnrollment,omitempty"`
		IsUserEnrollment       *bool `plist:"IsUserEnrollment,omitempty"`
	} `plist:"ManagementStatus,omitempty"`
}

// UnmarshalPlist implements plist.Unmarshaler, refusing a number an int
// does not hold as readInteger does.
func (r *SecurityInfoResult) UnmarshalPlist(unmarshal func(any) error) error {
	type fields SecurityInfoResult // without this method
	if err := unmarshal((*fields)(r)); err != nil {
		return err
	}
	var ints struct {
		HardwareEncryptionCaps  checkedInteger `plist:"HardwareEncryptionCaps"`
		PasscodeLockGracePeriod checkedInteger `plist:"PasscodeLockGracePeriod"`
		AutoLockTime            checkedInteger `plist:"AutoLockTime"`
	}
	return unmarshal(&ints)
}

// DecodeSecurityInfo decodes the SecurityInfo dictionary of a SecurityInfo result.
func DecodeSecurityInfo(r Result) (SecurityInfoResult, error) {
	var w struct {
		SecurityInfo *SecurityInfoResult `plist:"SecurityInfo"`
	}
	if err := decodePayload(r, RequestSecurityInfo, &w, func(p *resultPayloads) error { return p.SecurityInfo.getPointer(&w.SecurityInfo) }); err != nil {
		return SecurityInfoResult{}, err
	}
	if w.SecurityInfo == nil {
		return SecurityInfoResult{}, fmt.Errorf("decode %s result: %w", RequestSecurityInfo, missing("SecurityInfo"))
	}
	return *w.SecurityInfo, nil
}

// InstalledApplication is one entry of an InstalledApplicationList result.
type InstalledApplication struct {
	Identifier   string  `plist:"Identifier,omitempty"`
	Name         string  `plist:"Name,omitempty"`
	Version      string  `plist:"Version,omitempty"`
	ShortVersion string  `plist:"ShortVersion,omitempty"`
	BundleSize   *Number `plist:"BundleSize,omitempty"`
	DynamicSize  *Number `plist:"DynamicSize,omitempty"`
	IsValidated  *bool   `plist:"IsValidated,omitempty"`
	Installing   *bool   `plist:"Installing,omitempty"`
	BetaApp      *bool   `plist:"BetaApp,omitempty"`
	IsAppClip    *bool   `plist:"IsAppClip,omitempty"`
	Source       string  `plist:"Source,omitempty"`
}

// DecodeInstalledApplicationList decodes an InstalledApplicationList result.
// The list is required: an answer without it says nothing of the apps, and
// taken as an empty list it would erase the ones inventoried. Absent, it
// decodes as nil; the plist decoder makes an empty <array/> a non-nil empty
// slice (and an empty <dict/> a non-nil map), which is an answer.
func DecodeInstalledApplicationList(r Result) ([]InstalledApplication, error) {
	var w struct {
		List []InstalledApplication `plist:"InstalledApplicationList"`
	}
	if err := decodePayload(r, RequestInstalledApplicationList, &w, func(p *resultPayloads) error { return p.InstalledApplicationList.get(&w.List) }); err != nil {
		return nil, err
	}
	if w.List == nil {
		return nil, fmt.Errorf("decode %s result: %w", RequestInstalledApplicationList, missing("InstalledApplicationList"))
	}
	return w.List, nil
}

// ManagedApplication is the state of one managed app, keyed by bundle ID in
// a ManagedApplicationList result.
type ManagedApplication struct {
	Status                    string `plist:"Status,omitempty"`
	ManagementFlags           int    `plist:"ManagementFlags,omitempty"`
	HasConfiguration          *bool  `plist:"HasConfiguration,omitempty"`
	HasFeedback               *bool  `plist:"HasFeedback,omitempty"`
	IsValidated               *bool  `plist:"IsValidated,omitempty"`
	ExternalVersionIdentifier *int   `plist:"ExternalVersionIdentifier,omitempty"`
}

// UnmarshalPlist implements plist.Unmarshaler, refusing a number an int
// does not hold as readInteger does.
func (a *ManagedApplication) UnmarshalPlist(unmarshal func(any) error) error {
	type fields ManagedApplication // without this method
	if err := unmarshal((*fields)(a)); err != nil {
		return err
	}
	var ints struct {
		ManagementFlags           checkedInteger `plist:"ManagementFlags"`
		ExternalVersionIdentifier checkedInteger `plist:"ExternalVersionIdentifier"`
	}
	return unmarshal(&ints)
}

// DecodeManagedApplicationList decodes a ManagedApplicationList result into
// a map from bundle identifier to state. The dictionary is required, as in
// DecodeInstalledApplicationList.
func DecodeManagedApplicationList(r Result) (map[string]ManagedApplication, error) {
	var w struct {
		List map[string]ManagedApplication `plist:"ManagedApplicationList"`
	}
	if err := decodePayload(r, RequestManagedApplicationList, &w, func(p *resultPayloads) error { return p.ManagedApplicationList.get(&w.List) }); err != nil {
		return nil, err
	}
	if w.List == nil {
		return nil, fmt.Errorf("decode %s result: %w", RequestManagedApplicationList, missing("ManagedApplicationList"))
	}
	return w.List, nil
}

// InstalledAppOf returns what a built InstallApplication command installs:
// its iTunesStoreID, Identifier and ManifestURL (the other keys are left
// zero).
func InstalledAppOf(command []byte) (InstallApplication, error) {
	var c struct {
		Command struct {
			RequestType   RequestType `plist:"RequestType"`
			ITunesStoreID int64       `plist:"iTunesStoreID"`
			Identifier    string      `plist:"Identifier"`
			ManifestURL   string      `plist:"ManifestURL"`
		} `plist:"Command"`
	}
	if err := decodeXMLPlist(command, &c); err != nil {
		return InstallApplication{}, fmt.Errorf("decode %s command: %w", RequestInstallApplication, err)
	}
	if c.Command.RequestType != RequestInstallApplication {
		return InstallApplication{}, fmt.Errorf("decode %s command: it is a %.64q command", RequestInstallApplication, string(c.Command.RequestType))
	}
	return InstallApplication{ITunesStoreID: c.Command.ITunesStoreID, Identifier: c.Command.Identifier, ManifestURL: c.Command.ManifestURL}, nil
}

// InstallRejectionReasons are the values of an InstallApplication answer's
// RejectionReason (application.install.yaml).
var InstallRejectionReasons = []string{"AppAlreadyInstalled", "AppAlreadyQueued", "AppStoreDisabled", "CouldNotVerifyAppID",
	"ManagementChangeNotSupported", "NotAnApp", "NotSupported", "Other", "PurchaseMethodNotSupported", "PurchaseMethodNotSupportedInMultiUser"}

// InstallRejectionReason reads the RejectionReason of an InstallApplication
// answer, whatever its status: one of InstallRejectionReasons, "Other" for
// any other value (a device's free text is never kept), "" when it gives
// none or does not decode.
func InstallRejectionReason(r Result) string {
	var w struct {
		RejectionReason any `plist:"RejectionReason"`
	}
	if decodePlistWithin(r.Raw, MaxResultBytes, maxResultWeight, &w) != nil || w.RejectionReason == nil {
		return ""
	}
	if reason, ok := w.RejectionReason.(string); ok && slices.Contains(InstallRejectionReasons, reason) {
		return reason
	}
	return "Other"
}

// InstalledProfile is one entry of a ProfileList result.
type InstalledProfile struct {
	PayloadIdentifier        string `plist:"PayloadIdentifier,omitempty"`
	PayloadUUID              string `plist:"PayloadUUID,omitempty"`
	PayloadDisplayName       string `plist:"PayloadDisplayName,omitempty"`
	PayloadDescription       string `plist:"PayloadDescription,omitempty"`
	PayloadOrganization      string `plist:"PayloadOrganization,omitempty"`
	PayloadVersion           int    `plist:"PayloadVersion,omitempty"`
	PayloadRemovalDisallowed *bool  `plist:"PayloadRemovalDisallowed,omitempty"`
	HasRemovalPasscode       *bool  `plist:"HasRemovalPasscode,omitempty"`
	IsEncrypted              *bool  `plist:"IsEncrypted,omitempty"`
	IsManaged                *bool  `plist:"IsManaged,omitempty"`
	// SignerCertificates are DER certificates, leaf first.
	SignerCertificates [][]byte `plist:"SignerCertificates,omitempty"`
	PayloadContent     []struct {
		PayloadType        string `plist:"PayloadType,omitempty"`
		PayloadIdentifier  string `plist:"PayloadIdentifier,omitempty"`
		PayloadUUID        string `plist:"PayloadUUID,omitempty"`
		PayloadVersion     int    `plist:"PayloadVersion,omitempty"`
		PayloadDisplayName string `plist:"PayloadDisplayName,omitempty"`
	} `plist:"PayloadContent,omitempty"`
}

// UnmarshalPlist implements plist.Unmarshaler. A PayloadVersion an int does
// not hold (see readInteger) is dropped rather than refused: Steward reads
// profiles by identifier, and one odd version must not cost the whole list.
func (p *InstalledProfile) UnmarshalPlist(unmarshal func(any) error) error {
	type fields InstalledProfile // without this method
	if err := unmarshal((*fields)(p)); err != nil {
		return err
	}
	var ints struct {
		PayloadVersion checkedInteger `plist:"PayloadVersion"`
	}
	if unmarshal(&ints) != nil {
		p.PayloadVersion = 0
	}
	return nil
}

// DecodeProfileList decodes a ProfileList result. The list is required, as
// in DecodeInstalledApplicationList.
func DecodeProfileList(r Result) ([]InstalledProfile, error) {
	var w struct {
		List []InstalledProfile `plist:"ProfileList"`
	}
	if err := decodePayload(r, RequestProfileList, &w, func(p *resultPayloads) error { return p.ProfileList.get(&w.List) }); err != nil {
		return nil, err
	}
	if w.List == nil {
		return nil, fmt.Errorf("decode %s result: %w", RequestProfileList, missing("ProfileList"))
	}
	return w.List, nil
}

// InstalledCertificate is one entry of a CertificateList result.
type InstalledCertificate struct {
	CommonName string `plist:"CommonName,omitempty"`
	IsIdentity bool   `plist:"IsIdentity,omitempty"`
	Data       []byte `plist:"Data,omitempty"` // DER
}

// DecodeCertificateList decodes a CertificateList result. The list is
// required, as in DecodeInstalledApplicationList.
func DecodeCertificateList(r Result) ([]InstalledCertificate, error) {
	var w struct {
		List []InstalledCertificate `plist:"CertificateList"`
	}
	if err := decodePayload(r, RequestCertificateList, &w, func(p *resultPayloads) error { return p.CertificateList.get(&w.List) }); err != nil {
		return nil, err
	}
	if w.List == nil {
		return nil, fmt.Errorf("decode %s result: %w", RequestCertificateList, missing("CertificateList"))
	}
	return w.List, nil
}

// DeviceLocationResult is the answer to DeviceLocation (devices in Lost Mode
// only). Apple's schema (device.lostmode.location.yaml) makes every key but
// the coordinates new in iOS 10.3, and a negative value of each of them
// unknown.
type DeviceLocationResult struct {
	// Latitude and Longitude are degrees; zero, and no location, without a
	// fix (HasFix).
	Latitude  float64
	Longitude float64
	// HorizontalAccuracy is the radius of uncertainty in metres: nil when
	// the device did not send it (before iOS 10.3), negative when it has no
	// fix.
	HorizontalAccuracy *float64
	// VerticalAccuracy is the altitude's uncertainty in metres: nil when
	// not sent, negative when unknown.
	VerticalAccuracy *float64
	Altitude         float64 // metres
	Speed            float64 // metres per second
	Course           float64 // degrees
	// Timestamp is when the device determined the location, which may be
	// long before it answered; zero when it did not say in a form
	// understood (fixTime).
	Timestamp time.Time
}

// HasFix reports whether the device knows where it is. One that does not
// still sends coordinates, placeholders, with a negative HorizontalAccuracy;
// one before iOS 10.3 sends no accuracy, and its coordinates are taken.
func (r DeviceLocationResult) HasFix() bool {
	return r.HorizontalAccuracy == nil || *r.HorizontalAccuracy >= 0
}

// DecodeDeviceLocation decodes a DeviceLocation result. Latitude and
// Longitude are required, and must be in range when the device has a fix.
func DecodeDeviceLocation(r Result) (DeviceLocationResult, error) {
	var w struct {
		Latitude           *Number `plist:"Latitude"`
		Longitude          *Number `plist:"Longitude"`
		HorizontalAccuracy *Number `plist:"HorizontalAccuracy"`
		VerticalAccuracy   *Number `plist:"VerticalAccuracy"`
		Altitude           Number  `plist:"Altitude"`
		Speed              Number  `plist:"Speed"`
		Course             Number  `plist:"Course"`
		// Any plist type: the plist decoder hands a <date> to no
		// plist.Unmarshaler, only to a time.Time or an interface.
		Timestamp any `plist:"Timestamp"`
	}
	if err := decodePayload(r, RequestDeviceLocation, &w, nil); err != nil {
		return DeviceLocationResult{}, err
	}
	if w.Latitude == nil || w.Longitude == nil {
		return DeviceLocationResult{}, fmt.Errorf("decode %s result: %w", RequestDeviceLocation, missing("Latitude and Longitude"))
	}
	loc := DeviceLocationResult{
		Latitude: float64(*w.Latitude), Longitude: float64(*w.Longitude),
		HorizontalAccuracy: (*float64)(w.HorizontalAccuracy), VerticalAccuracy: (*float64)(w.VerticalAccuracy),
		Altitude: float64(w.Altitude), Speed: float64(w.Speed), Course: float64(w.Course),
		Timestamp: fixTime(w.Timestamp),
	}
	if !loc.HasFix() {
		// Placeholders, which may be out of range (Core Location's invalid
		// coordinate is -180, -180): an answer all the same, saying nothing.
		loc.Latitude, loc.Longitude = 0, 0
		return loc, nil
	}
	// Written so that NaN, which compares false, is out of range too.
	if !(loc.Latitude >= -90 && loc.Latitude <= 90 && loc.Longitude >= -180 && loc.Longitude <= 180) {
		return DeviceLocationResult{}, fmt.Errorf("decode %s result: %w: coordinates out of range", RequestDeviceLocation, ErrMalformed)
	}
	return loc, nil
}

// fixTime reads a DeviceLocation Timestamp: Apple documents an RFC 3339
// <string>, and a <date> says the same. Anything else leaves the time
// unknown (zero) rather than losing the location with it; so does a time
// JSON cannot hold, outside years 1 to 9999 in UTC.
func fixTime(v any) time.Time {
	var t time.Time
	switch v := v.(type) {
	case time.Time:
		t = v
	case string:
		parsed, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
		if err != nil {
			return time.Time{}
		}
		t = parsed
	default:
		return time.Time{}
	}
	if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}
	}
	return t
}
