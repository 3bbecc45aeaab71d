package payloads

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apperr"
)

// ErrSecretsMissing is wrapped by Build's error for a definition whose
// secrets are withheld (split out or redacted); restore them with
// WithSecrets or MergeSecrets first.
var ErrSecretsMissing = errors.New("profile definition has withheld secrets")

// uuidNamespace scopes Steward's name-based (version 5) payload UUIDs so they
// cannot collide with UUIDs other tools derive from the same names.
var uuidNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://steward-mdm.org/ns/profile-payload"))

// builder carries what payload encoders need from the whole definition.
type builder struct {
	uuidByID map[string]string // payload id -> PayloadUUID, for certificate references
}

func (b *builder) certificateUUID(ref string) string { return b.uuidByID[ref] }

// Build encodes d as an unsigned .mobileconfig (XML property list). The
// output depends only on d: the same definition always gives the same bytes,
// and any change to its public content changes the PayloadUUIDs (secret
// values do not; see the package comment). Build returns Validate's error
// for an invalid definition, except that it does not open PKCS#12 files:
// their password and dates are checked on the admin's input (ParseDefinition,
// MergeSecrets), and opening one is slow by design. When a secret is
// withheld it returns an apperr invalid_request error naming the field and
// wrapping ErrSecretsMissing.
func (d Definition) Build() ([]byte, error) {
	if err := d.validate(false); err != nil {
		return nil, err
	}
	for _, ref := range d.secretRefs() {
		if ref.secret.Withheld() {
			// A {"set":true} marker keeps a stored value only on update; on
			// create (say, from a copied definition) there is none.
			return nil, apperr.Wrap(apperr.KindInvalid, ErrSecretsMissing,
				`%s: no stored secret to keep; enter the secret ({"set":true} keeps one only when updating a profile that has it)`, ref.key).
				With("field", ref.key)
		}
	}
	b := &builder{uuidByID: map[string]string{}}
	uuids := make([]string, len(d.Payloads))
	for i := range d.Payloads {
		id, err := contentUUID(d.Identifier, strconv.Itoa(i), d.Payloads[i])
		if err != nil {
			return nil, err
		}
		uuids[i] = id
		if d.Payloads[i].ID != "" {
			b.uuidByID[d.Payloads[i].ID] = id
		}
	}
	content := make([]any, 0, len(d.Payloads))
	for i := range d.Payloads {
		p := &d.Payloads[i]
		keys, err := p.body().content(b)
		if err != nil {
			return nil, fmt.Errorf("build profile: payloads[%d]: %w", i, err)
		}
		keys["PayloadType"] = appleTypes[p.Type]
		keys["PayloadVersion"] = 1
		keys["PayloadIdentifier"] = payloadIdentifier(d.Identifier, p.Type, i)
		keys["PayloadUUID"] = uuids[i]
		keys["PayloadDisplayName"] = p.displayName()
		content = append(content, keys)
	}
	profileUUID, err := contentUUID(d.Identifier, "profile", d)
	if err != nil {
		return nil, err
	}
	top := map[string]any{
		"PayloadType":        "Configuration",
		"PayloadVersion":     1,
		"PayloadIdentifier":  d.Identifier,
		"PayloadUUID":        profileUUID,
		"PayloadDisplayName": d.Name,
		"PayloadScope":       d.scope(),
		"PayloadContent":     content,
	}
	// Written only when true: a User Enrollment refuses the key altogether
	// (mdm/profiles/TopLevel.yaml), and false is its default.
	if d.RemovalDisallowed {
		top["PayloadRemovalDisallowed"] = true
	}
	if d.Description != "" {
		top["PayloadDescription"] = d.Description
	}
	if d.Organisation != "" {
		top["PayloadOrganization"] = d.Organisation
	}
	out, err := plist.MarshalIndent(top, plist.XMLFormat, "\t")
	if err != nil {
		return nil, fmt.Errorf("build profile: encode plist: %w", err)
	}
	return out, nil
}

func (d Definition) scope() string {
	if d.Scope == "" {
		return ScopeSystem
	}
	return d.Scope
}

// payloadIdentifier is "<profile identifier>.<kind>.<index>", unique within
// the profile and stable while the payload keeps its position.
func payloadIdentifier(profile string, kind PayloadKind, index int) string {
	return profile + "." + string(kind) + "." + strconv.Itoa(index)
}

func (p *Payload) displayName() string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return defaultDisplayNames[p.Type]
}

var defaultDisplayNames = map[PayloadKind]string{
	KindWiFi: "Wi-Fi", KindVPN: "VPN", KindExchange: "Exchange ActiveSync",
	KindMail: "Mail", KindPasscode: "Passcode", KindRestrictions: "Restrictions",
	KindSCEP: "SCEP certificate", KindPKCS12: "Certificate", KindWebClip: "Web Clip",
}

// contentUUID derives a version 5 UUID from the profile identifier, a role
// and the JSON of v. Secrets marshal as {"set":true}, so their values never
// reach the hash.
func contentUUID(identifier, role string, v any) (string, error) {
	public, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("build profile: derive UUID: %w", err)
	}
	name := append([]byte(identifier+"\x00"+role+"\x00"), public...)
	// Upper case, as Apple tools write payload UUIDs.
	return strings.ToUpper(uuid.NewSHA1(uuidNamespace, name).String()), nil
}
