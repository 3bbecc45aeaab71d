// Package sim simulates Apple devices that enrol and answer commands exactly
// as a device does: they accept the invitation, install the signed profile,
// get their identity certificate by SCEP, sign every request with it
// (Mdm-Signature) and answer commands with realistic payloads for their
// ownership class. Tests and `steward simulate apple` use it.
package sim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// Device is one simulated device.
type Device struct {
	UDID         string // empty for User Enrollment
	EnrollmentID string // User Enrollment only
	Serial       string
	Model        string
	ProductName  string
	// Personal records that the device is personally owned. Ownership is
	// the server's knowledge, not the device's: a device-enrolled personal
	// device answers as any device does (every app on a plain
	// InstalledApplicationList; a server asks it for ManagedAppsOnly).
	// Only User Enrollment (EnrollmentID) narrows its own answers.
	Personal bool
	// Supervised is a device set up through Automated Device Enrollment or
	// Apple Configurator; one that installed a downloaded profile is not.
	Supervised bool
	// SharedIPad: an iPad in Shared iPad mode (it says so in IsMultiUser).
	SharedIPad bool
	// Account is the work account a User Enrollment signs in with (the
	// person's e-mail address): the device finds its server from it.
	Account string
	// Withheld lists the DeviceInformation queries the device was asked
	// and left unanswered, as its enrolment does not let it answer them.
	Withheld   []string
	Apps       int // apps installed (and reported on a full list)
	OSVersion  string
	NoPasscode bool // reports no passcode set
	// FileVaultOff: a Mac that reports FileVault off.
	FileVaultOff bool
	// IntelMac: a Mac whose lock and erase need the Find My PIN, as it
	// reports (PINRequiredForDeviceLock, PINRequiredForEraseDevice).
	IntelMac bool
	// LockPIN is the Find My PIN of the last DeviceLock the device took,
	// which unlocks it.
	LockPIN string
	// InLostMode: the device took an EnableLostMode and no DisableLostMode
	// since; only then does it answer DeviceLocation.
	InLostMode bool
	// BlockEncryptionOnly: an iPhone or iPad whose hardware reports
	// block-level encryption only (HardwareEncryptionCaps 1), which gives
	// no data protection.
	BlockEncryptionOnly bool
	// RefuseProfiles answers InstallProfile with an error, as a device
	// does for a payload it cannot apply.
	RefuseProfiles bool
	// RefuseRemovals answers RemoveProfile with an error and keeps the
	// profile.
	RefuseRemovals bool
	// IgnoresManagedAppsOnly reports every installed app even when asked
	// for managed ones only, as a faulty or tampered device might.
	IgnoresManagedAppsOnly bool
	// ProfileRoots are roots the device trusts, besides the tenant's CA,
	// to verify who signed its enrolment profile: a server may sign with
	// an operator's certificate from a public CA instead.
	ProfileRoots *x509.CertPool
	// Certificates are installed beside the device's identity. A
	// CertificateList reports them all, or, asked for managed ones only,
	// those marked Managed.
	Certificates []Certificate
	// IgnoresManagedCertificatesOnly reports every certificate even when
	// asked for managed ones only, as a faulty or tampered device might.
	IgnoresManagedCertificatesOnly bool
	// AppStatuses are ManagedApplicationList statuses by bundle ID, added
	// to (or replacing) the Managed of every fourth app.
	AppStatuses map[string]string
	// CommonName, when set, replaces the subject the profile asks for in
	// the certificate request (tests of refusals).
	CommonName string
	// Profiles holds the installed profiles by PayloadIdentifier.
	Profiles map[string][]byte
	http     *http.Client
	// envelopeKey is the RSA key SCEP encrypts the certificate to; key is
	// the identity key every request is signed with.
	envelopeKey     *rsa.PrivateKey
	key             crypto.Signer
	cert            *x509.Certificate
	profile         profileInfo
	checkinURL      string
	serverURL       string
	topic           string
	PushToken       []byte
	PushMagic       string
	CommandsHandled int
}

// Certificate is one entry of the device's certificate list.
type Certificate struct {
	CommonName string
	Identity   bool   // with a private key on the device
	Data       []byte // DER, as the device reports it
	// Managed: a profile of the organisation installed it; the employee
	// installed the others.
	Managed bool
}

// New returns an unenrolled device with random identifiers.
func New(client *http.Client, userEnrollment bool) (*Device, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return NewWithKey(client, userEnrollment, key), nil
}

// NewWithKey is New with a given RSA key: a load test shares a few keys
// among many devices, since generating RSA keys would dominate its cost.
// Each device still gets its own certificate.
func NewWithKey(client *http.Client, userEnrollment bool, key *rsa.PrivateKey) *Device {
	d := &Device{http: client, key: key, envelopeKey: key, Model: "iPhone16,2", ProductName: "iPhone16,2", Apps: 40, OSVersion: "18.1",
		Profiles: map[string][]byte{}}
	id := randomHex(32)
	if userEnrollment {
		d.EnrollmentID = strings.ToUpper(randomHex(16))
	} else {
		d.UDID = "00008130-" + strings.ToUpper(id[:16])
		d.Serial = strings.ToUpper("F" + id[16:27])
	}
	d.PushToken = []byte(randomHex(32))
	d.PushMagic = strings.ToUpper(randomHex(16))
	return d
}

// Enrol takes an enrolment link through to an enrolled device: accept the
// notice, download and check the profile, SCEP, Authenticate, TokenUpdate.
func (d *Device) Enrol(ctx context.Context, link string, allowFullWipe bool) error {
	if err := d.Prepare(ctx, link, allowFullWipe); err != nil {
		return err
	}
	return d.Complete(ctx)
}

// Prepare is the first half of Enrol: the notice, the profile and the
// identity certificate, without telling the MDM server yet.
func (d *Device) Prepare(ctx context.Context, link string, allowFullWipe bool) error {
	if err := d.Install(ctx, link, allowFullWipe); err != nil {
		return err
	}
	return d.ObtainIdentity(ctx)
}

// Install is what the employee does: open the invitation, accept the
// notice, download the profile and check its signature. A User Enrollment
// goes through account-driven enrolment instead (Account must be set).
func (d *Device) Install(ctx context.Context, link string, allowFullWipe bool) error {
	if d.EnrollmentID != "" {
		return d.installUserEnrollment(ctx, link)
	}
	page, err := d.do(ctx, "GET", link, "", nil, nil)
	if err != nil {
		return fmt.Errorf("opening the invitation: %w", err)
	}
	// An invitation already accepted (on another attempt) offers the profile.
	if version := noticeVersion.FindSubmatch(page); version != nil {
		form := url.Values{"language": {"en"}, "notice_version": {string(version[1])}}
		if allowFullWipe {
			form.Set("allow_full_wipe", "yes")
		}
		if _, err := d.do(ctx, "POST", link, "application/x-www-form-urlencoded", []byte(form.Encode()), nil); err != nil {
			return fmt.Errorf("accepting the notice: %w", err)
		}
	} else if !bytes.Contains(page, []byte("/profile")) {
		return errors.New("the invitation offers neither the notice nor the profile")
	}
	signed, err := d.do(ctx, "GET", link+"/profile", "", nil, nil)
	if err != nil {
		return fmt.Errorf("downloading the profile: %w", err)
	}
	return d.useProfile(signed)
}

// installUserEnrollment takes an invitation to a User Enrollment the way
// its employee must: nothing to download; the device signs in with the
// work account, and the invitation's code opens the enrolment.
func (d *Device) installUserEnrollment(ctx context.Context, link string) error {
	if d.Account == "" {
		return errors.New("a User Enrollment signs in with the work account: set Device.Account")
	}
	u, err := url.Parse(link)
	if err != nil {
		return err
	}
	return d.InstallByAccount(ctx, u.Scheme+"://"+u.Host, d.Account, path.Base(u.Path))
}

// useProfile checks and reads a downloaded enrolment profile.
func (d *Device) useProfile(signed []byte) error {
	prof, err := readProfile(signed)
	if err != nil {
		return err
	}
	d.profile = prof
	d.checkinURL, d.serverURL, d.topic = prof.checkinURL, prof.serverURL, prof.topic
	return nil
}

// ObtainIdentity is the profile's SCEP payload at work: the device gets its
// identity certificate.
func (d *Device) ObtainIdentity(ctx context.Context) error {
	if d.profile.scepURL == "" {
		return errors.New("no profile installed")
	}
	if err := d.scep(ctx, d.profile); err != nil {
		return fmt.Errorf("SCEP: %w", err)
	}
	return nil
}

// Complete is the second half of Enrol: Authenticate and TokenUpdate.
func (d *Device) Complete(ctx context.Context) error {
	if err := d.Authenticate(ctx); err != nil {
		return err
	}
	if _, err := d.Checkin(ctx, d.TokenUpdate()); err != nil {
		return fmt.Errorf("TokenUpdate: %w", err)
	}
	return nil
}

// Authenticate is the first message of an installing profile's MDM payload.
func (d *Device) Authenticate(ctx context.Context) error {
	if _, err := d.Checkin(ctx, d.authenticate()); err != nil {
		return fmt.Errorf("Authenticate: %w", err)
	}
	return nil
}

// TokenUpdate is the device's TokenUpdate message.
func (d *Device) TokenUpdate() map[string]any { return d.tokenUpdate() }

// CheckOut is the message a device sends when its MDM profile is removed.
func (d *Device) CheckOut() map[string]any {
	co := map[string]any{"MessageType": "CheckOut", "Topic": d.topic}
	d.identify(co)
	return co
}

func (d *Device) identify(m map[string]any) {
	if d.UDID != "" {
		m["UDID"] = d.UDID
	} else {
		m["EnrollmentID"] = d.EnrollmentID
	}
}

// UseECIdentity gives the device a P-256 identity key (SCEP still encrypts
// to its RSA key). Real devices use RSA; a load test uses this so that the
// simulator's signing does not eat the CPU the server is measured on.
func (d *Device) UseECIdentity() error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	d.key = k
	return nil
}

var noticeVersion = regexp.MustCompile(`name="notice_version" value="(\d+)"`)

// Checkin sends a signed check-in message.
func (d *Device) Checkin(ctx context.Context, msg map[string]any) ([]byte, error) {
	body, err := plist.Marshal(msg, plist.XMLFormat)
	if err != nil {
		return nil, err
	}
	return d.signed(ctx, d.checkinURL, "application/x-apple-aspen-mdm-checkin", body)
}

func (d *Device) signed(ctx context.Context, url, contentType string, body []byte) ([]byte, error) {
	sig, err := mdmproto.SignMdmMessage(body, d.cert, d.key)
	if err != nil {
		return nil, err
	}
	return d.do(ctx, "PUT", url, contentType, body, map[string]string{"Mdm-Signature": sig})
}

// Raw sends body to the command endpoint with the given content type and
// signature header, for tests of what the server refuses.
func (d *Device) Raw(ctx context.Context, contentType, signature string, body []byte) ([]byte, error) {
	return d.do(ctx, "PUT", d.serverURL, contentType, body, map[string]string{"Mdm-Signature": signature})
}

// Sign returns the Mdm-Signature of body with the device's identity.
func (d *Device) Sign(body []byte) (string, error) {
	return mdmproto.SignMdmMessage(body, d.cert, d.key)
}

// Certificate is the device's identity certificate.
func (d *Device) Certificate() *x509.Certificate { return d.cert }

// AccessRights are what the MDM payload of the device's enrolment profile
// grants.
func (d *Device) AccessRights() uint64 { return d.profile.accessRights }

// ProfileAccessRights reads what a downloaded enrolment profile grants.
func ProfileAccessRights(signed []byte) (uint64, error) {
	p, err := readProfile(signed)
	return p.accessRights, err
}

// EscapedPEM is cert as nginx forwards a client certificate
// ($ssl_client_escaped_cert): URL-escaped PEM.
func EscapedPEM(cert *x509.Certificate) string {
	return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
}

// StatusError is a non-200 answer.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

func (d *Device) do(ctx context.Context, method, url, contentType string, body []byte, headers map[string]string) ([]byte, error) {
	_, out, err := d.exchange(ctx, d.http, method, url, contentType, body, headers, http.StatusOK)
	return out, err
}

// exchange makes one request with client and expects status.
func (d *Device) exchange(ctx context.Context, client *http.Client, method, target, contentType string, body []byte, headers map[string]string, status int) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != status {
		return resp, nil, &StatusError{Status: resp.StatusCode, Body: string(out[:min(len(out), 200)])}
	}
	return resp, out, nil
}

// profileInfo is what a device reads from its enrolment profile.
type profileInfo struct {
	scepURL, challenge, cn       string
	serverURL, checkinURL, topic string
	accessRights                 uint64
	assignedAccount              string // a User Enrollment's AssignedManagedAppleID
	// keyExtractable is whether a Mac lets its keychain export the
	// identity's private key: Apple's default, unless KeyIsExtractable is
	// false.
	keyExtractable bool
	capabilities   []string // the MDM payload's ServerCapabilities
	signer         *x509.Certificate
	intermediates  *x509.CertPool // the other certificates the signature carries
	// listed is how a ProfileList describes the profile, signed by
	// signers (DER, leaf first).
	listed  profileMeta
	signers [][]byte
}

// readProfile verifies the profile's CMS signature and reads its payloads.
func readProfile(signed []byte) (profileInfo, error) {
	p7, err := pkcs7.Parse(signed)
	if err != nil {
		return profileInfo{}, fmt.Errorf("the profile is not CMS-signed: %w", err)
	}
	if err := p7.Verify(); err != nil {
		return profileInfo{}, fmt.Errorf("the profile signature does not verify: %w", err)
	}
	var doc struct {
		PayloadContent []map[string]any `plist:"PayloadContent"`
	}
	if _, err := plist.Unmarshal(p7.Content, &doc); err != nil {
		return profileInfo{}, fmt.Errorf("the profile does not decode: %w", err)
	}
	info := profileInfo{signer: p7.GetOnlySigner(), intermediates: x509.NewCertPool()}
	if info.listed, err = decodeProfileMeta(p7.Content); err != nil {
		return profileInfo{}, fmt.Errorf("the profile does not decode: %w", err)
	}
	info.signers = signerChain(p7)
	for _, c := range p7.Certificates {
		if !c.Equal(info.signer) {
			info.intermediates.AddCert(c)
		}
	}
	for _, p := range doc.PayloadContent {
		switch p["PayloadType"] {
		case "com.apple.security.scep":
			c, _ := p["PayloadContent"].(map[string]any)
			info.scepURL, _ = c["URL"].(string)
			info.challenge, _ = c["Challenge"].(string)
			info.keyExtractable = c["KeyIsExtractable"] != false
			if subj, ok := c["Subject"].([]any); ok && len(subj) > 0 {
				if rdn, ok := subj[0].([]any); ok && len(rdn) > 0 {
					if pair, ok := rdn[0].([]any); ok && len(pair) == 2 {
						info.cn, _ = pair[1].(string)
					}
				}
			}
		case "com.apple.mdm":
			info.serverURL, _ = p["ServerURL"].(string)
			info.checkinURL, _ = p["CheckInURL"].(string)
			info.topic, _ = p["Topic"].(string)
			info.accessRights, _ = p["AccessRights"].(uint64)
			info.assignedAccount, _ = p["AssignedManagedAppleID"].(string)
			caps, _ := p["ServerCapabilities"].([]any)
			for _, c := range caps {
				if c, ok := c.(string); ok {
					info.capabilities = append(info.capabilities, c)
				}
			}
		}
	}
	if info.scepURL == "" || info.serverURL == "" || info.challenge == "" {
		return info, errors.New("the profile lacks its SCEP or MDM payload")
	}
	if info.checkinURL == "" {
		info.checkinURL = info.serverURL
	}
	return info, nil
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)[:n]
}

// TLSCertificate is the identity as a TLS client certificate, for servers
// that identify devices by mutual TLS instead of signatures.
func (d *Device) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{d.cert.Raw}, PrivateKey: d.key, Leaf: d.cert}
}

// IdentityKeyExtractable is whether the installed enrolment profile lets a
// Mac export its identity's private key.
func (d *Device) IdentityKeyExtractable() bool { return d.profile.keyExtractable }

// ServerCapabilities are those the installed enrolment profile names; a Mac
// sends its Bootstrap Token only to a server naming
// com.apple.mdm.bootstraptoken.
func (d *Device) ServerCapabilities() []string { return slices.Clone(d.profile.capabilities) }

// ServerURL is the command endpoint from the device's profile.
func (d *Device) ServerURL() string { return d.serverURL }

// Topic is the APNs topic its enrolment profile named.
func (d *Device) Topic() string { return d.topic }
