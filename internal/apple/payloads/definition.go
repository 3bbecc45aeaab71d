package payloads

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
)

// Limits on admin input. A definition carries at most a few PKCS#12 files
// and icons, so 1 MiB of JSON is generous; the caps keep one request from
// costing much memory or CPU.
const (
	MaxDefinitionSize = 1 << 20
	MaxPayloads       = 50
	maxNameLength     = 200
	maxTextLength     = 2000
	maxIdentifier     = 200
	maxSecretLength   = 1024
)

// Scope values for Definition.Scope (PayloadScope).
const (
	ScopeSystem = "System"
	ScopeUser   = "User"
)

// PayloadKind names a payload type in JSON ("type").
type PayloadKind string

// The payload kinds a Definition may hold.
const (
	KindWiFi         PayloadKind = "wifi"
	KindVPN          PayloadKind = "vpn"
	KindExchange     PayloadKind = "exchange"
	KindMail         PayloadKind = "mail"
	KindPasscode     PayloadKind = "passcode"
	KindRestrictions PayloadKind = "restrictions"
	KindSCEP         PayloadKind = "scep"
	KindPKCS12       PayloadKind = "pkcs12"
	KindWebClip      PayloadKind = "webclip"
)

// Definition is an admin-authored configuration profile.
type Definition struct {
	Name              string    `json:"name"`       // PayloadDisplayName
	Identifier        string    `json:"identifier"` // reverse-DNS PayloadIdentifier
	Description       string    `json:"description,omitempty"`
	Organisation      string    `json:"organisation,omitempty"`
	Scope             string    `json:"scope,omitempty"` // ScopeSystem (default) or ScopeUser
	RemovalDisallowed bool      `json:"removal_disallowed,omitempty"`
	Payloads          []Payload `json:"payloads"`
}

// Payload is one entry of a definition: a tagged union whose Type names the
// one body field that is set, as in {"type":"wifi","wifi":{...}}.
type Payload struct {
	Type PayloadKind `json:"type"`
	// ID is a short name, unique in the definition, by which other payloads
	// refer to this one (a Wi-Fi payload naming its SCEP certificate).
	ID          string `json:"id,omitempty"`
	DisplayName string `json:"display_name,omitempty"`

	WiFi         *WiFi         `json:"wifi,omitempty"`
	VPN          *VPN          `json:"vpn,omitempty"`
	Exchange     *Exchange     `json:"exchange,omitempty"`
	Mail         *Mail         `json:"mail,omitempty"`
	Passcode     *Passcode     `json:"passcode,omitempty"`
	Restrictions *Restrictions `json:"restrictions,omitempty"`
	SCEP         *SCEP         `json:"scep,omitempty"`
	PKCS12       *PKCS12       `json:"pkcs12,omitempty"`
	WebClip      *WebClip      `json:"webclip,omitempty"`
}

// body is what every typed payload implements.
type body interface {
	validate(v *validator, path string) error
	// content returns the Apple keys of the payload, without the common
	// Payload* keys, ready for plist encoding.
	content(b *builder) (map[string]any, error)
	// secrets lists the payload's secret fields under their JSON names.
	secrets() []namedSecret
}

type namedSecret struct {
	name   string
	secret *Secret
	// anchor joins the fields that decide where the secret is sent (SSID,
	// server host, user name). MergeSecrets keeps a stored secret only while
	// its anchor is unchanged, so an admin who cannot read a secret cannot
	// redirect it to a server of their choosing.
	anchor string
}

// appleTypes maps each kind to its PayloadType.
var appleTypes = map[PayloadKind]string{
	KindWiFi:         "com.apple.wifi.managed",
	KindVPN:          "com.apple.vpn.managed",
	KindExchange:     "com.apple.eas.account",
	KindMail:         "com.apple.mail.managed",
	KindPasscode:     "com.apple.mobiledevice.passwordpolicy",
	KindRestrictions: "com.apple.applicationaccess",
	KindSCEP:         "com.apple.security.scep",
	KindPKCS12:       "com.apple.security.pkcs12",
	KindWebClip:      "com.apple.webClip.managed",
}

// bodies returns the set body fields of p, keyed by kind.
func (p *Payload) bodies() map[PayloadKind]body {
	set := map[PayloadKind]body{}
	add := func(k PayloadKind, isNil bool, b body) {
		if !isNil {
			set[k] = b
		}
	}
	add(KindWiFi, p.WiFi == nil, p.WiFi)
	add(KindVPN, p.VPN == nil, p.VPN)
	add(KindExchange, p.Exchange == nil, p.Exchange)
	add(KindMail, p.Mail == nil, p.Mail)
	add(KindPasscode, p.Passcode == nil, p.Passcode)
	add(KindRestrictions, p.Restrictions == nil, p.Restrictions)
	add(KindSCEP, p.SCEP == nil, p.SCEP)
	add(KindPKCS12, p.PKCS12 == nil, p.PKCS12)
	add(KindWebClip, p.WebClip == nil, p.WebClip)
	return set
}

// body returns the body matching p.Type, or nil if the union is malformed.
func (p *Payload) body() body {
	set := p.bodies()
	if len(set) != 1 {
		return nil
	}
	return set[p.Type]
}

// ParseDefinition decodes and validates an admin-authored definition. The
// JSON must be at most MaxDefinitionSize bytes, hold exactly one object and
// use only known fields. It returns an apperr invalid_request error naming
// the payload and field at fault; a too-large input gives payload_too_large.
// Secrets given as {"set":true} are accepted as withheld: the result must go
// through MergeSecrets or WithSecrets before Build.
func ParseDefinition(data []byte) (Definition, error) {
	if len(data) > MaxDefinitionSize {
		return Definition{}, apperr.New(apperr.KindTooLarge,
			"profile definition is larger than %d bytes; move large files such as icons out or shrink them", MaxDefinitionSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Definition
	if err := dec.Decode(&d); err != nil {
		return Definition{}, apperr.Invalid("profile definition is not valid: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Definition{}, apperr.Invalid("profile definition must be a single JSON object with nothing after it")
	}
	if err := d.Validate(); err != nil {
		return Definition{}, err
	}
	return d, nil
}

// describeJSONError turns a decoding error into a message that names the
// field but never echoes input values, which may be secrets.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q has the wrong type (want %s)", typeErr.Field, typeErr.Type)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ") + "; remove it or check its spelling"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	}
	// Errors from our own UnmarshalJSON methods carry safe, fixed text.
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Validate checks every field of d and the references between payloads. It
// returns an apperr invalid_request error naming the field at fault.
// Withheld secrets count as set; PKCS#12 files are opened and checked only
// when their data and password are present.
func (d Definition) Validate() error { return d.validate(true) }

// validate is Validate; with openIdentities false it checks PKCS#12 files
// without opening them (see validator.openIdentities).
func (d Definition) validate(openIdentities bool) error {
	if err := checkText("name", d.Name, maxNameLength, true); err != nil {
		return err
	}
	if !isReverseDNS(d.Identifier) {
		return fieldErr("identifier", "must be a reverse-DNS name such as com.example.wifi (letters, digits, hyphens, at least two dot-separated parts, up to %d characters)", maxIdentifier)
	}
	if err := checkText("description", d.Description, maxTextLength, false); err != nil {
		return err
	}
	if err := checkText("organisation", d.Organisation, maxNameLength, false); err != nil {
		return err
	}
	if d.Scope != "" && d.Scope != ScopeSystem && d.Scope != ScopeUser {
		return fieldErr("scope", "must be %q or %q", ScopeSystem, ScopeUser)
	}
	if len(d.Payloads) == 0 {
		return fieldErr("payloads", "add at least one payload")
	}
	if len(d.Payloads) > MaxPayloads {
		return fieldErr("payloads", "at most %d payloads fit in one profile; split it into several profiles", MaxPayloads)
	}
	v := &validator{ids: map[string]bool{}, certificates: map[string]PayloadKind{}, openIdentities: openIdentities}
	for i := range d.Payloads {
		p := &d.Payloads[i]
		if p.ID == "" {
			continue
		}
		path := fmt.Sprintf("payloads[%d].id", i)
		if !payloadIDPattern.MatchString(p.ID) {
			return fieldErr(path, "must be 1-64 letters, digits, '-' or '_'")
		}
		if v.ids[p.ID] {
			return fieldErr(path, "%q is used by another payload; payload ids must be unique", p.ID)
		}
		v.ids[p.ID] = true
		if p.Type == KindSCEP || p.Type == KindPKCS12 {
			v.certificates[p.ID] = p.Type
		}
	}
	for i := range d.Payloads {
		if err := d.Payloads[i].validate(v, fmt.Sprintf("payloads[%d]", i)); err != nil {
			return err
		}
	}
	for _, ref := range d.secretRefs() {
		value := ref.secret.Reveal()
		if ref.secret.binary || len(value) == 0 {
			continue
		}
		if len(value) > maxSecretLength || !utf8.Valid(value) || hasControlChars(string(value), false) {
			return fieldErr(ref.key, "must be at most %d characters of text without control characters", maxSecretLength)
		}
	}
	return nil
}

func (p *Payload) validate(v *validator, path string) error {
	if _, known := appleTypes[p.Type]; !known {
		return fieldErr(path+".type", "unknown payload type %q; use one of wifi, vpn, exchange, mail, passcode, restrictions, scep, pkcs12, webclip", p.Type)
	}
	set := p.bodies()
	if _, ok := set[p.Type]; !ok || len(set) != 1 {
		return fieldErr(path, "a %q payload needs exactly one body, the object %q, and no other", p.Type, p.Type)
	}
	if err := checkText(path+".display_name", p.DisplayName, maxNameLength, false); err != nil {
		return err
	}
	return p.body().validate(v, path+"."+string(p.Type))
}

// validator carries what cross-payload checks need.
type validator struct {
	ids          map[string]bool
	certificates map[string]PayloadKind // payload id -> scep or pkcs12
	// openIdentities decodes PKCS#12 files to check their password and
	// certificate dates. Decoding runs the file's key derivation, slow by
	// design, so Build leaves it to the validation of the admin's input.
	openIdentities bool
}

// certificateRef checks that ref names a SCEP or PKCS#12 payload.
func (v *validator) certificateRef(path, ref string, required bool) error {
	if ref == "" {
		if required {
			return fieldErr(path, "name the id of a scep or pkcs12 payload in this profile that provides the certificate")
		}
		return nil
	}
	if _, ok := v.certificates[ref]; !ok {
		return fieldErr(path, "no scep or pkcs12 payload has id %q; give the certificate payload that id or fix the reference", ref)
	}
	return nil
}

var (
	payloadIDPattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	reverseDNSPattern = regexp.MustCompile(`^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)
	hostnamePattern   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$`)
)

func isReverseDNS(s string) bool {
	return len(s) <= maxIdentifier && reverseDNSPattern.MatchString(s)
}

// isHostname accepts a DNS name or an IP address literal, without a port.
func isHostname(s string) bool {
	return len(s) <= 253 && (hostnamePattern.MatchString(s) || isIPLiteral(s))
}

// fieldErr is the one error shape for bad input: the field path, then what
// is wrong and what to do. Messages never include submitted values.
func fieldErr(path, format string, args ...any) error {
	return apperr.Invalid("%s: "+format, append([]any{path}, args...)...).With("field", path)
}

func checkText(path, s string, max int, required bool) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return fieldErr(path, "is required")
	case !utf8.ValidString(s):
		return fieldErr(path, "must be valid UTF-8 text")
	case utf8.RuneCountInString(s) > max:
		return fieldErr(path, "is longer than %d characters", max)
	case hasControlChars(s, max > maxNameLength):
		if max > maxNameLength {
			return fieldErr(path, "must not contain control characters other than line breaks and tabs")
		}
		return fieldErr(path, "must be a single line of text without control characters")
	}
	return nil
}

// hasControlChars reports C0/DEL control characters, which XML property
// lists cannot carry; multiLine allows line feeds and tabs.
func hasControlChars(s string, multiLine bool) bool {
	for _, r := range s {
		if multiLine && (r == '\n' || r == '\t') {
			continue
		}
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// checkURL requires an absolute URL with a host and one of the schemes.
func checkURL(path, raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err == nil && u.Host != "" && u.User == nil && len(raw) <= 2048 {
		for _, s := range schemes {
			if u.Scheme == s {
				return nil
			}
		}
	}
	return fieldErr(path, "must be an absolute %s URL with a host and no user info", strings.Join(schemes, " or "))
}
