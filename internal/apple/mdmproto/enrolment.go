package mdmproto

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"howett.net/plist"
)

// AccessRights is the MDM payload's AccessRights bit set: what the server
// may do on the device. Grant the least that the enrolment needs.
type AccessRights int

const (
	// AccessProfileInspection allows listing installed configuration profiles.
	AccessProfileInspection AccessRights = 1
	// AccessProfileInstallRemove allows installing and removing configuration profiles (needs AccessProfileInspection).
	AccessProfileInstallRemove AccessRights = 2
	// AccessDeviceLock allows locking the device and removing its passcode.
	AccessDeviceLock AccessRights = 4
	// AccessDeviceErase allows erasing the device.
	AccessDeviceErase AccessRights = 8
	// AccessDeviceInformation allows querying device information (capacity, serial number).
	AccessDeviceInformation AccessRights = 16
	// AccessNetworkInformation allows querying network information (phone and SIM numbers, MAC addresses).
	AccessNetworkInformation AccessRights = 32
	// AccessProvisioningProfileInspection allows listing installed provisioning profiles.
	AccessProvisioningProfileInspection AccessRights = 64
	// AccessProvisioningProfileInstallRemove allows installing and removing provisioning profiles (needs AccessProvisioningProfileInspection).
	AccessProvisioningProfileInstallRemove AccessRights = 128
	// AccessApplicationInspection allows listing installed applications.
	AccessApplicationInspection AccessRights = 256
	// AccessRestrictionQueries allows restriction-related queries.
	AccessRestrictionQueries AccessRights = 512
	// AccessSecurityQueries allows security-related queries (SecurityInfo).
	AccessSecurityQueries AccessRights = 1024
	// AccessSettings allows changing device settings.
	AccessSettings AccessRights = 2048
	// AccessAppManagement allows installing, removing and managing apps.
	AccessAppManagement AccessRights = 4096
	// AccessAll is every right above; fit for corporate devices only.
	AccessAll AccessRights = 8191
)

// accessRightWords say each right in a few words, for people.
var accessRightWords = []struct {
	right AccessRights
	words string
}{
	{AccessProfileInspection, "list profiles"}, {AccessProfileInstallRemove, "install and remove profiles"},
	{AccessDeviceLock, "lock the device and clear its passcode"}, {AccessDeviceErase, "erase the device"},
	{AccessDeviceInformation, "read device information"}, {AccessNetworkInformation, "read network information"},
	{AccessProvisioningProfileInspection, "list provisioning profiles"},
	{AccessProvisioningProfileInstallRemove, "install and remove provisioning profiles"},
	{AccessApplicationInspection, "list apps"}, {AccessRestrictionQueries, "read restrictions"},
	{AccessSecurityQueries, "read security state"}, {AccessSettings, "change settings"},
	{AccessAppManagement, "manage apps (install and remove them)"},
}

// Describe says in words what rights r grants, in bit order.
func (r AccessRights) Describe() string {
	var words []string
	for _, w := range accessRightWords {
		if r&w.right != 0 {
			words = append(words, w.words)
		}
	}
	if len(words) == 0 {
		return "nothing"
	}
	return strings.Join(words, ", ")
}

// SubjectAttribute is one relative distinguished name of the SCEP subject,
// such as {"CN", "device-42"} or {"O", "Example"}.
type SubjectAttribute struct{ Type, Value string }

// SCEPSettings configures the com.apple.security.scep payload that gets the
// device its identity certificate.
type SCEPSettings struct {
	URL       string
	Name      string // CA instance name, may be empty
	Challenge SecretString
	Subject   []SubjectAttribute
}

// EnrolmentProfile describes a .mobileconfig that enrols a device. Empty
// UUIDs are generated.
type EnrolmentProfile struct {
	Identifier   string // reverse-DNS PayloadIdentifier of the whole profile
	DisplayName  string
	Organization string
	Description  string
	ProfileUUID  string
	SCEPUUID     string
	MDMUUID      string

	SCEP SCEPSettings

	ServerURL    string // https; the connect endpoint
	CheckInURL   string // https; the check-in endpoint, empty to use ServerURL
	Topic        string // the APNs topic, "com.apple.mgmt.…"
	AccessRights AccessRights
	// UseDevelopmentAPNS makes the device use the APNs sandbox.
	UseDevelopmentAPNS bool

	// EscrowsBootstrapToken advertises that the server keeps a Mac's
	// Bootstrap Token; without it the Mac creates and sends none. Not for
	// User Enrollment, which has no bootstrap token.
	EscrowsBootstrapToken bool

	// AssignedManagedAppleID turns the profile into an account-driven User
	// Enrollment (BYOD): the MDM payload carries the Managed Apple Account and
	// EnrollmentMode "BYOD", and AccessRights are left out (devices ignore them).
	AssignedManagedAppleID string
}

// IsUserEnrollment reports whether p describes a User Enrollment (BYOD).
func (p EnrolmentProfile) IsUserEnrollment() bool { return p.AssignedManagedAppleID != "" }

type scepContent struct {
	URL       string       `plist:"URL"`
	Name      string       `plist:"Name,omitempty"`
	Challenge string       `plist:"Challenge,omitempty"`
	Keysize   int          `plist:"Keysize"`
	KeyType   string       `plist:"Key Type"`
	KeyUsage  int          `plist:"Key Usage"`
	Subject   [][][]string `plist:"Subject,omitempty"`
	// KeyIsExtractable is always written, as false: it keeps a Mac from
	// exporting the identity's private key from its keychain (Apple's
	// default is true). Other systems ignore it.
	KeyIsExtractable bool `plist:"KeyIsExtractable"`
}

type scepPayload struct {
	PayloadType        string      `plist:"PayloadType"`
	PayloadVersion     int         `plist:"PayloadVersion"`
	PayloadIdentifier  string      `plist:"PayloadIdentifier"`
	PayloadUUID        string      `plist:"PayloadUUID"`
	PayloadDisplayName string      `plist:"PayloadDisplayName"`
	PayloadContent     scepContent `plist:"PayloadContent"`
}

// ServerCapabilities values Apple defines for the MDM payload.
const (
	capabilityPerUserConnections = "com.apple.mdm.per-user-connections"
	capabilityBootstrapToken     = "com.apple.mdm.bootstraptoken"
)

type mdmPayload struct {
	PayloadType             string   `plist:"PayloadType"`
	PayloadVersion          int      `plist:"PayloadVersion"`
	PayloadIdentifier       string   `plist:"PayloadIdentifier"`
	PayloadUUID             string   `plist:"PayloadUUID"`
	PayloadDisplayName      string   `plist:"PayloadDisplayName"`
	ServerURL               string   `plist:"ServerURL"`
	CheckInURL              string   `plist:"CheckInURL,omitempty"`
	Topic                   string   `plist:"Topic"`
	IdentityCertificateUUID string   `plist:"IdentityCertificateUUID"`
	SignMessage             bool     `plist:"SignMessage"`
	CheckOutWhenRemoved     bool     `plist:"CheckOutWhenRemoved"`
	AccessRights            int      `plist:"AccessRights,omitempty"`
	UseDevelopmentAPNS      bool     `plist:"UseDevelopmentAPNS,omitempty"`
	ServerCapabilities      []string `plist:"ServerCapabilities"`
	AssignedManagedAppleID  string   `plist:"AssignedManagedAppleID,omitempty"`
	EnrollmentMode          string   `plist:"EnrollmentMode,omitempty"`
}

type configurationProfile struct {
	PayloadType         string `plist:"PayloadType"`
	PayloadVersion      int    `plist:"PayloadVersion"`
	PayloadIdentifier   string `plist:"PayloadIdentifier"`
	PayloadUUID         string `plist:"PayloadUUID"`
	PayloadDisplayName  string `plist:"PayloadDisplayName"`
	PayloadOrganization string `plist:"PayloadOrganization,omitempty"`
	PayloadDescription  string `plist:"PayloadDescription,omitempty"`
	PayloadContent      []any  `plist:"PayloadContent"`
}

// Fixed SCEP key parameters: a 2048-bit RSA key usable for signing and key
// encipherment (Key Usage 1|4).
const (
	scepKeySize  = 2048
	scepKeyType  = "RSA"
	scepKeyUsage = 5
)

// EnrolmentIdentifierRoot is where the identifiers of Steward's management
// profiles live (EnrolmentIdentifier): a profile there could replace a
// device's enrolment, and removing one retires the device. Identifiers are
// held to it as payloads.Reserved does, ignoring case.
const EnrolmentIdentifierRoot = "org.steward.enrolment"

// EnrolmentIdentifier is the PayloadIdentifier of the management profile
// of an enrolment.
func EnrolmentIdentifier(enrolmentID string) string {
	return EnrolmentIdentifierRoot + "." + enrolmentID
}

// BuildEnrolmentProfile encodes p as an unsigned .mobileconfig (XML plist)
// holding a SCEP payload and the MDM payload that uses its identity.
func BuildEnrolmentProfile(p EnrolmentProfile) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	var err error
	for _, id := range []*string{&p.ProfileUUID, &p.SCEPUUID, &p.MDMUUID} {
		if *id == "" {
			if *id, err = newUUID(); err != nil {
				return nil, fmt.Errorf("build enrolment profile: %w", err)
			}
		}
	}
	subject := make([][][]string, 0, len(p.SCEP.Subject))
	for _, a := range p.SCEP.Subject {
		subject = append(subject, [][]string{{a.Type, a.Value}})
	}
	scep := scepPayload{
		PayloadType: "com.apple.security.scep", PayloadVersion: 1,
		PayloadIdentifier: p.Identifier + ".scep", PayloadUUID: p.SCEPUUID,
		PayloadDisplayName: "Device identity",
		PayloadContent: scepContent{
			URL: p.SCEP.URL, Name: p.SCEP.Name, Challenge: p.SCEP.Challenge.Reveal(),
			Keysize: scepKeySize, KeyType: scepKeyType, KeyUsage: scepKeyUsage, Subject: subject,
		},
	}
	mdm := mdmPayload{
		PayloadType: "com.apple.mdm", PayloadVersion: 1,
		PayloadIdentifier: p.Identifier + ".mdm", PayloadUUID: p.MDMUUID,
		PayloadDisplayName: "Device management",
		ServerURL:          p.ServerURL, CheckInURL: p.CheckInURL, Topic: p.Topic,
		IdentityCertificateUUID: p.SCEPUUID,
		SignMessage:             true,
		CheckOutWhenRemoved:     true,
		UseDevelopmentAPNS:      p.UseDevelopmentAPNS,
		ServerCapabilities:      []string{capabilityPerUserConnections},
	}
	if p.IsUserEnrollment() {
		mdm.AssignedManagedAppleID = p.AssignedManagedAppleID
		mdm.EnrollmentMode = "BYOD"
	} else {
		mdm.AccessRights = int(p.AccessRights)
		// Without it a Mac never sends SetBootstrapToken or GetBootstrapToken.
		// Apple lets it come and go on a profile update, unlike
		// per-user-connections.
		if p.EscrowsBootstrapToken {
			mdm.ServerCapabilities = append(mdm.ServerCapabilities, capabilityBootstrapToken)
		}
	}
	profile := configurationProfile{
		PayloadType: "Configuration", PayloadVersion: 1,
		PayloadIdentifier: p.Identifier, PayloadUUID: p.ProfileUUID,
		PayloadDisplayName: p.DisplayName, PayloadOrganization: p.Organization,
		PayloadDescription: p.Description,
		PayloadContent:     []any{scep, mdm},
	}
	out, err := plist.MarshalIndent(profile, plist.XMLFormat, "\t")
	if err != nil {
		return nil, fmt.Errorf("build enrolment profile: encode plist: %w", err)
	}
	return out, nil
}

func (p EnrolmentProfile) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidProfile}, args...)...)
	}
	if p.Identifier == "" || p.DisplayName == "" {
		return bad("Identifier and DisplayName are required")
	}
	if !isURL(p.ServerURL, "https") {
		return bad("ServerURL must be an https URL")
	}
	if p.CheckInURL != "" && !isURL(p.CheckInURL, "https") {
		return bad("CheckInURL must be an https URL")
	}
	if !isURL(p.SCEP.URL, "https", "http") {
		return bad("SCEP URL must be an http or https URL")
	}
	for _, id := range []string{p.ProfileUUID, p.SCEPUUID, p.MDMUUID} {
		if id != "" && !payloadUUIDPattern.MatchString(id) {
			return bad("payload UUIDs must have the form XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX")
		}
	}
	if !strings.HasPrefix(p.Topic, "com.apple.mgmt.") {
		return bad("Topic must start with com.apple.mgmt.")
	}
	for _, a := range p.SCEP.Subject {
		if a.Type == "" || a.Value == "" {
			return bad("SCEP subject attributes need a type and a value")
		}
	}
	if p.IsUserEnrollment() {
		if p.EscrowsBootstrapToken {
			return bad("a User Enrollment has no bootstrap token to escrow")
		}
		return nil
	}
	if p.AccessRights <= 0 || p.AccessRights&^AccessAll != 0 {
		return bad("AccessRights must be a non-zero combination of the Access* constants")
	}
	if p.AccessRights&AccessProfileInstallRemove != 0 && p.AccessRights&AccessProfileInspection == 0 {
		return bad("AccessProfileInstallRemove requires AccessProfileInspection")
	}
	if p.AccessRights&AccessProvisioningProfileInstallRemove != 0 && p.AccessRights&AccessProvisioningProfileInspection == 0 {
		return bad("AccessProvisioningProfileInstallRemove requires AccessProvisioningProfileInspection")
	}
	return nil
}

// payloadUUIDPattern is the UUID format Apple documents for payload UUIDs.
var payloadUUIDPattern = regexp.MustCompile(`^[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}$`)

func isURL(raw string, schemes ...string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return true
		}
	}
	return false
}

// newUUID returns a random (version 4) UUID in upper case, as Apple tools write them.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate UUID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])), nil
}

// SignProfile wraps a profile in a CMS SignedData with the content attached.
// A device shows it as verified only when it trusts cert's issuer. chain
// holds the certificates above cert, its issuer first.
func SignProfile(profile []byte, cert *x509.Certificate, key crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	if len(profile) == 0 {
		return nil, fmt.Errorf("sign profile: %w: profile is empty", ErrInvalidProfile)
	}
	der, err := signCMS(profile, cert, key, chain, false)
	if err != nil {
		return nil, fmt.Errorf("sign profile: %w", err)
	}
	return der, nil
}
