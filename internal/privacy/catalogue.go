// Package privacy decides what Steward may hold about devices and people,
// and holds it so that it can be shown, exported, expired and destroyed.
//
// The catalogue below declares every field Steward can store from or about a
// device or a person. Nothing else is stored: the gate refuses a field the
// catalogue does not know.
package privacy

import (
	"slices"
	"time"
)

// Category groups fields for collection policy and retention.
type Category string

const (
	DeviceIdentity Category = "device_identity"
	Hardware       Category = "hardware"
	OS             Category = "os"
	Network        Category = "network"
	Location       Category = "location"
	Telephony      Category = "telephony"
	InstalledApps  Category = "installed_apps"
	UserIdentity   Category = "user_identity"
	Directory      Category = "directory"
	UsageLogs      Category = "usage_logs"
	SecurityState  Category = "security_state"
)

// CategoryInfo describes a category and its default retention.
type CategoryInfo struct {
	Category    Category `json:"category"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	// Retention is how long a collected value is kept; zero means while the
	// device stays enrolled (then the deprovisioning erasure removes it).
	Retention time.Duration `json:"-"`
}

// RetentionDays is Retention in days, 0 for "while enrolled".
func (c CategoryInfo) RetentionDays() int { return int(c.Retention / (24 * time.Hour)) }

const day = 24 * time.Hour

// Categories lists every category in display order.
var Categories = []CategoryInfo{
	{DeviceIdentity, "Device identity", "Identifiers of the device itself: serial number, UDID, device name.", 0},
	{Hardware, "Hardware", "Model, capacity, battery: what the device is.", 0},
	{OS, "Operating system", "Operating system name, version and build.", 0},
	{Network, "Network", "MAC addresses, IP addresses, Wi-Fi network.", 0},
	{Location, "Location", "Where the device is: coordinates from a locate request.", 7 * day},
	{Telephony, "Telephony", "Phone number, IMEI, MEID, SIM and carrier.", 0},
	{InstalledApps, "Installed apps", "Applications on the device (managed ones only on personal devices).", 0},
	{UserIdentity, "User identity", "Who uses the device: name, e-mail, account name.", 0},
	{Directory, "Directory data", "Department, manager and groups from a directory.", 0},
	{UsageLogs, "Usage and logs", "Diagnostic logs, usage statistics and derived statistics.", 30 * day},
	{SecurityState, "Security state", "Passcode, encryption, compromise and firewall state.", 0},
}

// Retention rules that are not a single category's.
const (
	InventoryHistoryRetention = 30 * day
	CommandResultRetention    = 30 * day
	AccessRecordRetention     = 365 * day
	NotificationRetention     = 30 * day  // sent or failed mail to employees
	ApprovalRetention         = 365 * day // after the request expired or was decided
	// DeprovisionedDeviceRetention keeps a retired device's (non-personal)
	// row for a while, so its history and certificates still name it.
	DeprovisionedDeviceRetention = 30 * day
	// DepartedPINRetention keeps the Find My PIN of a company Mac that left
	// management at a firmware lock or an erase after its record went: a
	// Mac found later asks for it, and without it only Apple can unlock it.
	DepartedPINRetention = 365 * day
	// UnusedEnrolmentRetention keeps an enrolment link no device used after
	// it expired, so its invitation still says "expired"; a used one goes
	// with its device.
	UnusedEnrolmentRetention = 30 * day
	// RemoteActionRetention keeps a finished remote action (who locked,
	// erased or located a device, why, and how it ended) as long as the
	// access records and approvals that account for the same hands, and as
	// the live audit log, whose signed archives keep the trail after it.
	// Some outlive it while something still needs them
	// (store.ActionStore.PurgeFinished); every one goes with its device.
	RemoteActionRetention = 365 * day
)

// CategoryByName returns the category's description.
func CategoryByName(c Category) (CategoryInfo, bool) {
	i := slices.IndexFunc(Categories, func(ci CategoryInfo) bool { return ci.Category == c })
	if i < 0 {
		return CategoryInfo{}, false
	}
	return Categories[i], true
}

// Legal bases (GDPR Art 6(1)) a field can be held under.
const (
	BasisContract   = "Art 6(1)(b): performance of the employment contract (providing a working device)"
	BasisLegitimate = "Art 6(1)(f): legitimate interest in securing the organisation's devices and data"
	BasisObligation = "Art 6(1)(c): legal obligation (information security duties, e.g. NIS2)"
)

// Source is where a field's value comes from on the wire.
type Source struct {
	Protocol string `json:"protocol"` // "apple-mdm", "fusioninventory", "steward"
	Payload  string `json:"payload"`  // command, check-in message or XML section
	Key      string `json:"key"`      // key within the payload
}

// Field is one storable datum.
type Field struct {
	Key      string   `json:"key"`
	Name     string   `json:"name"`
	Category Category `json:"category"`
	// Personal fields are encrypted with the data subject's key and masked
	// unless shown by policy or revealed.
	Personal bool `json:"personal"`
	// Searchable personal fields get a keyed blind index, never plaintext.
	Searchable bool     `json:"searchable,omitempty"`
	Purpose    string   `json:"purpose"`
	LegalBasis string   `json:"legal_basis"`
	Sources    []Source `json:"sources"`
	// Subject is true when the field describes the person rather than a
	// device (kept under the person's key, not the device's).
	Subject bool `json:"subject_level,omitempty"`
}

func apple(payload, key string) Source  { return Source{"apple-mdm", payload, key} }
func fusion(section, key string) Source { return Source{"fusioninventory", section, key} }
func steward(what string) Source        { return Source{"steward", what, ""} }

const (
	purposeInventory = "Know which devices exist and what they are (asset inventory, CIS Control 1)."
	purposeSecurity  = "Check the device is secure and compliant before it reaches company data."
	purposeSupport   = "Identify the device when its user asks for help or reports it lost."
	purposeApps      = "Know which software runs on company data (software inventory, CIS Control 2)."
	purposeContact   = "Contact the person about their device, notices and consent."
	purposeLocate    = "Find a lost or stolen company device, on an audited request with a reason."
	purposeLockPIN   = "Know whether locking or erasing the Mac remotely needs a Find My PIN, so that a lock of a lost Mac is not sent without one."
)

// Catalogue is every field Steward can store. Keys are stable: they appear in
// stored rows, exports and the record of processing.
var Catalogue = []Field{
	{Key: "device.serial_number", Name: "Serial number", Category: DeviceIdentity, Personal: true, Searchable: true,
		Purpose: purposeInventory, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "SerialNumber"), fusion("BIOS", "SSN")}},
	{Key: "device.udid", Name: "UDID", Category: DeviceIdentity, Personal: true, Searchable: true,
		Purpose: purposeInventory, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("Authenticate", "UDID"), apple("DeviceInformation", "UDID")}},
	{Key: "device.name", Name: "Device name", Category: DeviceIdentity, Personal: true,
		Purpose: purposeSupport, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "DeviceName"), fusion("HARDWARE", "NAME")}},
	{Key: "hardware.model", Name: "Model", Category: Hardware, Purpose: purposeInventory, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "ModelName"), apple("DeviceInformation", "Model"), fusion("BIOS", "SMODEL")}},
	{Key: "hardware.product", Name: "Product name", Category: Hardware, Purpose: purposeInventory, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "ProductName")}},
	{Key: "hardware.capacity_gb", Name: "Storage capacity (GB)", Category: Hardware, Purpose: purposeInventory, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "DeviceCapacity")}},
	{Key: "hardware.available_gb", Name: "Free storage (GB)", Category: Hardware, Purpose: purposeSecurity, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "AvailableDeviceCapacity")}},
	{Key: "hardware.battery_level", Name: "Battery level", Category: Hardware, Purpose: purposeSupport, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "BatteryLevel")}},
	{Key: "os.name", Name: "Operating system", Category: OS, Purpose: purposeSecurity, LegalBasis: BasisLegitimate,
		Sources: []Source{steward("platform"), fusion("OPERATINGSYSTEM", "NAME")}},
	{Key: "os.version", Name: "OS version", Category: OS, Purpose: purposeSecurity, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "OSVersion"), fusion("OPERATINGSYSTEM", "VERSION")}},
	{Key: "os.build", Name: "OS build", Category: OS, Purpose: purposeSecurity, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "BuildVersion")}},
	{Key: "os.supervised", Name: "Supervised", Category: OS, Purpose: purposeSecurity, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "IsSupervised")}},
	{Key: "os.shared_ipad", Name: "Shared iPad", Category: OS, Purpose: purposeSecurity, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "IsMultiUser")}},
	{Key: "network.wifi_mac", Name: "Wi-Fi MAC address", Category: Network, Personal: true,
		Purpose: purposeSecurity, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "WiFiMAC"), fusion("NETWORKS", "MACADDR")}},
	{Key: "network.bluetooth_mac", Name: "Bluetooth MAC address", Category: Network, Personal: true,
		Purpose: purposeSecurity, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "BluetoothMAC")}},
	{Key: "network.ip_addresses", Name: "IP addresses", Category: Network, Personal: true,
		Purpose: purposeSecurity, LegalBasis: BasisLegitimate,
		Sources: []Source{fusion("NETWORKS", "IPADDRESS")}},
	{Key: "location.coordinates", Name: "Location", Category: Location, Personal: true,
		Purpose: purposeLocate, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceLocation", "Latitude"), apple("DeviceLocation", "Longitude"), apple("DeviceLocation", "HorizontalAccuracy"), apple("DeviceLocation", "Timestamp")}},
	{Key: "telephony.phone_number", Name: "Phone number", Category: Telephony, Personal: true,
		Purpose: purposeSupport, LegalBasis: BasisContract,
		Sources: []Source{apple("DeviceInformation", "PhoneNumber"), apple("DeviceInformation", "ServiceSubscriptions")}},
	{Key: "telephony.imei", Name: "IMEI", Category: Telephony, Personal: true, Searchable: true,
		Purpose: purposeInventory, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "IMEI"), apple("DeviceInformation", "ServiceSubscriptions")}},
	{Key: "telephony.meid", Name: "MEID", Category: Telephony, Personal: true,
		Purpose: purposeInventory, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "MEID"), apple("DeviceInformation", "ServiceSubscriptions")}},
	{Key: "telephony.iccid", Name: "SIM (ICCID)", Category: Telephony, Personal: true,
		Purpose: purposeInventory, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "ICCID"), apple("DeviceInformation", "ServiceSubscriptions")}},
	{Key: "telephony.carrier", Name: "Carrier", Category: Telephony, Personal: true,
		Purpose: purposeSupport, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("DeviceInformation", "CurrentCarrierNetwork"), apple("DeviceInformation", "ServiceSubscriptions")}},
	{Key: "apps.installed", Name: "Installed applications", Category: InstalledApps, Personal: true,
		Purpose: purposeApps, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("InstalledApplicationList", "InstalledApplicationList"), fusion("SOFTWARES", "NAME")}},
	{Key: "apps.managed", Name: "Managed app states", Category: InstalledApps, Personal: true,
		Purpose: purposeApps, LegalBasis: BasisLegitimate,
		Sources: []Source{apple("ManagedApplicationList", "ManagedApplicationList")}},
	{Key: "user.email", Name: "E-mail address", Category: UserIdentity, Personal: true, Searchable: true, Subject: true,
		Purpose: purposeContact, LegalBasis: BasisContract, Sources: []Source{steward("subject")}},
	{Key: "user.name", Name: "Full name", Category: UserIdentity, Personal: true, Subject: true,
		Purpose: purposeContact, LegalBasis: BasisContract,
		Sources: []Source{steward("subject"), apple("UserAuthenticate", "UserLongName")}},
	{Key: "user.account", Name: "Account name", Category: UserIdentity, Personal: true,
		Purpose: purposeSupport, LegalBasis: BasisContract,
		Sources: []Source{apple("UserAuthenticate", "UserShortName"), fusion("USERS", "LOGIN")}},
	{Key: "directory.department", Name: "Department", Category: Directory, Personal: true, Subject: true,
		Purpose: "Target devices and reports by department.", LegalBasis: BasisContract, Sources: []Source{steward("directory")}},
	{Key: "usage.diagnostic_log", Name: "Diagnostic log", Category: UsageLogs, Personal: true,
		Purpose: "Troubleshoot a device problem the user reported.", LegalBasis: BasisLegitimate,
		Sources: []Source{steward("diagnostic upload")}},
	{Key: "security.passcode_present", Name: "Passcode set", Category: SecurityState,
		Purpose: purposeSecurity, LegalBasis: BasisObligation, Sources: []Source{apple("SecurityInfo", "PasscodePresent")}},
	{Key: "security.passcode_compliant", Name: "Passcode compliant", Category: SecurityState,
		Purpose: purposeSecurity, LegalBasis: BasisObligation, Sources: []Source{apple("SecurityInfo", "PasscodeCompliant")}},
	{Key: "security.encrypted", Name: "Storage encrypted", Category: SecurityState,
		Purpose: purposeSecurity, LegalBasis: BasisObligation,
		Sources: []Source{apple("SecurityInfo", "HardwareEncryptionCaps"), apple("SecurityInfo", "PasscodePresent"), apple("SecurityInfo", "FDE_Enabled")}},
	{Key: "security.activation_lock", Name: "Activation Lock on", Category: SecurityState,
		Purpose: purposeSecurity, LegalBasis: BasisLegitimate, Sources: []Source{apple("DeviceInformation", "IsActivationLockEnabled")}},
	{Key: "security.pin_required_for_lock", Name: "Lock needs a Find My PIN (Mac)", Category: SecurityState,
		Purpose: purposeLockPIN, LegalBasis: BasisLegitimate, Sources: []Source{apple("DeviceInformation", "PINRequiredForDeviceLock")}},
	{Key: "security.pin_required_for_erase", Name: "Erase needs a Find My PIN (Mac)", Category: SecurityState,
		Purpose: purposeLockPIN, LegalBasis: BasisLegitimate, Sources: []Source{apple("DeviceInformation", "PINRequiredForEraseDevice")}},
	{Key: "security.compromised", Name: "System Integrity Protection off (Mac)", Category: SecurityState,
		Purpose: purposeSecurity, LegalBasis: BasisObligation,
		Sources: []Source{apple("SecurityInfo", "SystemIntegrityProtectionEnabled")}},
	{Key: "security.firewall_enabled", Name: "Firewall on", Category: SecurityState,
		Purpose: purposeSecurity, LegalBasis: BasisObligation, Sources: []Source{apple("SecurityInfo", "FirewallSettings")}},
	// Personal: an identity certificate's name can be the employee's.
	{Key: "security.certificates", Name: "Installed certificates", Category: SecurityState, Personal: true,
		Purpose: "Check the device holds the certificates work access needs, and see when they expire.", LegalBasis: BasisLegitimate,
		Sources: []Source{apple("CertificateList", "CertificateList")}},
	// Personal: a profile's name can be the employee's ("Erika's VPN"); on
	// their own device only the organisation's profiles are kept.
	{Key: "security.profiles", Name: "Installed configuration profiles", Category: SecurityState, Personal: true,
		Purpose: "Check the profiles work access needs are installed, and that nothing else manages the device.", LegalBasis: BasisLegitimate,
		Sources: []Source{apple("ProfileList", "ProfileList")}},
}

var fieldIndex = func() map[string]*Field {
	m := make(map[string]*Field, len(Catalogue))
	for i := range Catalogue {
		m[Catalogue[i].Key] = &Catalogue[i]
	}
	return m
}()

// FieldByKey returns the catalogue entry for key.
func FieldByKey(key string) (Field, bool) {
	f, ok := fieldIndex[key]
	if !ok {
		return Field{}, false
	}
	return *f, true
}

// Retention returns how long a value of this field is kept after it was
// collected; zero means while the device stays enrolled.
func (f Field) Retention() time.Duration {
	c, _ := CategoryByName(f.Category)
	return c.Retention
}
