package payloads

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/plistsafe"
)

// MaxCustomProfileSize is the largest custom profile ValidateCustom accepts.
const MaxCustomProfileSize = 1 << 20

// maxPlistNodes bounds the values ValidateCustom walks. A binary plist can
// reference one object many times, so a small file can expand into a huge
// tree; real profiles have a few thousand values at most.
const maxPlistNodes = 100_000

// CustomProfile describes an uploaded profile that passed ValidateCustom.
type CustomProfile struct {
	Identifier   string   // top-level PayloadIdentifier; RemoveProfile uses it
	DisplayName  string   // PayloadDisplayName, may be empty
	PayloadTypes []string // PayloadType of each payload, in order
	Signed       bool     // the upload was a CMS SignedData with an intact signature
}

// refusedPayloadTypes would let a profile take over or replace device
// management. com.apple.mdm enrols the device with another server (or
// re-points this enrolment), so it is never accepted.
//
// com.apple.security.scep is accepted: Wi-Fi, VPN and mail payloads
// legitimately need identities from the organisation's CA, and a SCEP
// identity can only become a management identity through an MDM payload,
// which is refused. The remaining hijack, a profile whose identifier equals
// the enrolment profile's and so replaces it on install, is stopped by the
// reservedIdentifiers argument of ValidateCustom.
var refusedPayloadTypes = map[string]string{
	"com.apple.mdm": "it would enrol the device with another management server",
}

// Reserved reports whether identifier equals or lies under one of roots
// (root, or root + "." and more), ignoring case: the rule for identifiers
// only Steward's own profiles may hold, wherever one is checked (an upload,
// a definition, a RemoveProfile command).
func Reserved(identifier string, roots ...string) bool {
	id := strings.ToLower(identifier)
	for _, r := range roots {
		r = strings.ToLower(r)
		if r != "" && (id == r || strings.HasPrefix(id, r+".")) {
			return true
		}
	}
	return false
}

// ValidateCustom checks an uploaded .mobileconfig: an XML or binary property
// list, or a CMS SignedData wrapping one. It returns an apperr error:
// payload_too_large above MaxCustomProfileSize, otherwise invalid_request when
// the data is not such a profile, a signature does not verify (the chain is
// not checked against any trust store), a required key is missing or
// malformed, identifiers repeat, a payload type is refused, or the
// top-level identifier equals or lies under one of reservedIdentifiers
// (pass the enrolment profile's identifier so an upload cannot replace it).
func ValidateCustom(mobileconfig []byte, reservedIdentifiers ...string) (CustomProfile, error) {
	if len(mobileconfig) > MaxCustomProfileSize {
		return CustomProfile{}, apperr.New(apperr.KindTooLarge, "profile is larger than %d bytes", MaxCustomProfileSize)
	}
	content, signed, err := unwrapProfile(mobileconfig)
	if err != nil {
		return CustomProfile{}, err
	}
	top, err := decodeProfile(content)
	if err != nil {
		return CustomProfile{}, err
	}
	prof := CustomProfile{Signed: signed}
	if err := checkCommonKeys(top, "profile"); err != nil {
		return CustomProfile{}, err
	}
	if t, _ := top["PayloadType"].(string); t != "Configuration" {
		return CustomProfile{}, apperr.Invalid(`profile: PayloadType must be "Configuration"`)
	}
	prof.Identifier = top["PayloadIdentifier"].(string)
	prof.DisplayName, _ = top["PayloadDisplayName"].(string)
	if Reserved(prof.Identifier, reservedIdentifiers...) {
		return CustomProfile{}, apperr.Invalid("profile: PayloadIdentifier is reserved for Steward's own profiles; choose another identifier")
	}
	if _, encrypted := top["EncryptedPayloadContent"]; encrypted {
		return CustomProfile{}, apperr.Invalid("profile: encrypted profiles cannot be checked; upload it unencrypted (Steward encrypts profiles with secrets at rest)")
	}
	list, ok := top["PayloadContent"].([]any)
	if !ok {
		return CustomProfile{}, apperr.Invalid("profile: PayloadContent must be an array of payload dictionaries")
	}
	seenIDs := map[string]bool{prof.Identifier: true}
	seenUUIDs := map[string]bool{strings.ToUpper(top["PayloadUUID"].(string)): true}
	for i, item := range list {
		where := fmt.Sprintf("payload %d", i)
		p, ok := item.(map[string]any)
		if !ok {
			return CustomProfile{}, apperr.Invalid("%s: must be a dictionary", where)
		}
		if err := checkCommonKeys(p, where); err != nil {
			return CustomProfile{}, err
		}
		typ := p["PayloadType"].(string)
		if why, refused := refusedPayloadTypes[typ]; refused {
			return CustomProfile{}, apperr.Invalid("%s: payload type %s is not allowed in custom profiles: %s", where, typ, why)
		}
		if typ == "Configuration" {
			return CustomProfile{}, apperr.Invalid("%s: nested Configuration payloads are not allowed", where)
		}
		id, uid := p["PayloadIdentifier"].(string), strings.ToUpper(p["PayloadUUID"].(string))
		if seenIDs[id] {
			return CustomProfile{}, apperr.Invalid("%s: PayloadIdentifier repeats another payload's; identifiers must be unique", where)
		}
		if seenUUIDs[uid] {
			return CustomProfile{}, apperr.Invalid("%s: PayloadUUID repeats another payload's; UUIDs must be unique", where)
		}
		seenIDs[id], seenUUIDs[uid] = true, true
		prof.PayloadTypes = append(prof.PayloadTypes, typ)
	}
	if len(prof.PayloadTypes) == 0 {
		return CustomProfile{}, apperr.Invalid("profile: PayloadContent holds no payloads")
	}
	nodes := 0
	if err := countValues(top, &nodes); err != nil {
		return CustomProfile{}, err
	}
	return prof, nil
}

// ProfileIdentifier returns the top-level PayloadIdentifier of a profile
// built by Definition.Build or accepted by ValidateCustom, signed or not;
// RemoveProfile needs it. It returns an apperr invalid_request error when
// the data is not a readable profile.
func ProfileIdentifier(mobileconfig []byte) (string, error) {
	id, _, err := ProfileVersion(mobileconfig)
	if err == nil && id == "" {
		err = apperr.Invalid("profile: PayloadIdentifier is missing")
	}
	return id, err
}

// unwrapProfile returns the property list inside data: data itself, or the
// content of a CMS SignedData whose signatures verify.
func unwrapProfile(data []byte) (content []byte, signed bool, err error) {
	if len(data) == 0 || data[0] != 0x30 { // not a DER SEQUENCE
		return data, false, nil
	}
	p7, err := parseCMS(data)
	if err != nil {
		return nil, false, apperr.Invalid("profile looks like a signed profile but is not valid CMS; upload the .mobileconfig as exported")
	}
	if len(p7.Content) == 0 {
		return nil, false, apperr.Invalid("signed profile carries no content (detached signature); upload a profile with the content attached")
	}
	if err := p7.Verify(); err != nil {
		return nil, false, apperr.Invalid("signed profile's signature does not verify; the profile was changed after signing, re-export it")
	}
	return p7.Content, true, nil
}

// parseCMS guards against panics in the ASN.1 walker on hostile input.
func parseCMS(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("malformed CMS")
		}
	}()
	return pkcs7.Parse(der)
}

// maxXMLDepth bounds container nesting in XML profiles; real ones nest a few
// levels, and deep nesting makes the plist decoder slow.
const maxXMLDepth = 64

// payloadDicts decodes a profile's PayloadContent dictionaries.
func payloadDicts(mobileconfig []byte) ([]map[string]any, error) {
	content, _, err := unwrapProfile(mobileconfig)
	if err != nil {
		return nil, err
	}
	top, err := decodeProfile(content)
	if err != nil {
		return nil, err
	}
	items, _ := top["PayloadContent"].([]any)
	var out []map[string]any
	for _, item := range items {
		if p, ok := item.(map[string]any); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func decodeProfile(content []byte) (top map[string]any, err error) {
	notPlist := apperr.Invalid("profile is not a property list dictionary; upload an XML or binary .mobileconfig")
	// Sniff the format first: the OpenStep text parser is slow on hostile
	// input and profiles are never written in it.
	body := bytes.TrimLeft(content, " \t\r\n\ufeff")
	switch {
	case bytes.HasPrefix(body, []byte("bplist")):
	case bytes.HasPrefix(body, []byte("<")):
		if xmlNestingDepth(body, maxXMLDepth) > maxXMLDepth {
			return nil, apperr.Invalid("profile nests deeper than %d levels; it is too complex to accept", maxXMLDepth)
		}
	default:
		return nil, notPlist
	}
	format, err := plistsafe.Unmarshal(content, &top, maxPlistNodes)
	if errors.Is(err, plistsafe.ErrTooComplex) {
		return nil, apperr.Invalid("profile has more than %d values; it is too complex to accept", maxPlistNodes)
	}
	if err != nil || top == nil {
		return nil, notPlist
	}
	if format != plist.XMLFormat && format != plist.BinaryFormat {
		return nil, apperr.Invalid("profile must be an XML or binary property list, not OpenStep/GNUstep text")
	}
	return top, nil
}

// xmlNestingDepth is the deepest <array>/<dict> nesting in an XML plist,
// counted up to limit+1. It reads the tokens with the decoder the plist
// library uses, so text hidden in comments, CDATA sections and directives
// counts for nothing, as it does for the library; a document the tokenizer
// refuses the library refuses too, and the depth up to that point is what
// it would have built.
func xmlNestingDepth(b []byte, limit int) int {
	dec := xml.NewDecoder(bytes.NewReader(b))
	depth, deepest := 0, 0
	for deepest <= limit {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if isContainer(t.Name) {
				depth++
				deepest = max(deepest, depth)
			}
		case xml.EndElement:
			if isContainer(t.Name) {
				depth--
			}
		}
	}
	return deepest
}

func isContainer(name xml.Name) bool { return name.Local == "array" || name.Local == "dict" }

// checkCommonKeys requires the keys every payload (and the profile) has.
func checkCommonKeys(p map[string]any, where string) error {
	for _, key := range []string{"PayloadType", "PayloadIdentifier", "PayloadUUID"} {
		if s, ok := p[key].(string); !ok || strings.TrimSpace(s) == "" {
			return apperr.Invalid("%s: %s is missing or not a non-empty string", where, key)
		}
	}
	if v, ok := p["PayloadVersion"].(uint64); !ok || v != 1 {
		return apperr.Invalid("%s: PayloadVersion must be the integer 1", where)
	}
	return nil
}

// countValues counts the values of v into nodes and fails once they pass
// maxPlistNodes; an XML plist is not measured before decoding.
func countValues(v any, nodes *int) error {
	*nodes++
	if *nodes > maxPlistNodes {
		return apperr.Invalid("profile has more than %d values; it is too complex to accept", maxPlistNodes)
	}
	switch t := v.(type) {
	case map[string]any:
		for _, child := range t {
			if err := countValues(child, nodes); err != nil {
				return err
			}
		}
	case []any:
		for _, child := range t {
			if err := countValues(child, nodes); err != nil {
				return err
			}
		}
	}
	return nil
}

// isEmptyValue reports an absent value or an empty string or data.
func isEmptyValue(v any) bool {
	switch t := v.(type) {
	case string:
		return t == ""
	case []byte:
		return len(t) == 0
	}
	return v == nil
}
