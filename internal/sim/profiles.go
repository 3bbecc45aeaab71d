package sim

import (
	"maps"
	"slices"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"
)

// profileMeta is what a ProfileList reports of an installed profile: its
// top-level keys and its payloads' (profile.list.yaml).
type profileMeta struct {
	PayloadIdentifier, PayloadUUID                              string
	PayloadDisplayName, PayloadOrganization, PayloadDescription string
	PayloadVersion                                              int
	PayloadRemovalDisallowed, Encrypted                         bool
	PayloadContent                                              []payloadSummary
}

type payloadSummary struct {
	PayloadType, PayloadIdentifier, PayloadUUID                 string
	PayloadDisplayName, PayloadDescription, PayloadOrganization string
	PayloadVersion                                              int
}

// decodeProfileMeta reads a profile's plist; a key of an unexpected type
// is left out rather than failing the profile.
func decodeProfileMeta(content []byte) (profileMeta, error) {
	var doc map[string]any
	if _, err := plist.Unmarshal(content, &doc); err != nil {
		return profileMeta{}, err
	}
	str := func(m map[string]any, k string) string { v, _ := m[k].(string); return v }
	num := func(m map[string]any, k string) int {
		switch v := m[k].(type) {
		case uint64:
			return int(min(v, 1<<31))
		case int64:
			return int(max(min(v, 1<<31), 0))
		}
		return 0
	}
	m := profileMeta{PayloadIdentifier: str(doc, "PayloadIdentifier"), PayloadUUID: str(doc, "PayloadUUID"),
		PayloadDisplayName: str(doc, "PayloadDisplayName"), PayloadOrganization: str(doc, "PayloadOrganization"),
		PayloadDescription: str(doc, "PayloadDescription"), PayloadVersion: num(doc, "PayloadVersion")}
	m.PayloadRemovalDisallowed, _ = doc["PayloadRemovalDisallowed"].(bool)
	_, m.Encrypted = doc["EncryptedPayloadContent"]
	payloads, _ := doc["PayloadContent"].([]any)
	for _, p := range payloads {
		if p, ok := p.(map[string]any); ok {
			m.PayloadContent = append(m.PayloadContent, payloadSummary{PayloadType: str(p, "PayloadType"),
				PayloadIdentifier: str(p, "PayloadIdentifier"), PayloadUUID: str(p, "PayloadUUID"),
				PayloadDisplayName: str(p, "PayloadDisplayName"), PayloadDescription: str(p, "PayloadDescription"),
				PayloadOrganization: str(p, "PayloadOrganization"), PayloadVersion: num(p, "PayloadVersion")})
		}
	}
	return m, nil
}

// signerChain is a CMS signature's certificates, its signer first.
func signerChain(p7 *pkcs7.PKCS7) [][]byte {
	signer := p7.GetOnlySigner()
	var chain [][]byte
	if signer != nil {
		chain = append(chain, signer.Raw)
	}
	for _, c := range p7.Certificates {
		if signer == nil || !c.Equal(signer) {
			chain = append(chain, c.Raw)
		}
	}
	return chain
}

// readProfileMeta reads an installed profile, signed or not; ok is false
// when it does not decode or has no PayloadIdentifier.
func readProfileMeta(payload []byte) (meta profileMeta, signers [][]byte, ok bool) {
	content := payload
	if p7, err := pkcs7.Parse(payload); err == nil {
		content, signers = p7.Content, signerChain(p7)
	}
	meta, err := decodeProfileMeta(content)
	if err != nil || meta.PayloadIdentifier == "" {
		return profileMeta{}, nil, false
	}
	return meta, signers, true
}

// profileListItem describes one installed profile as d's ProfileList does
// (profile.list.yaml): PayloadIdentifier and PayloadUUID always, the other
// keys when the profile has them. IsManaged (every profile the simulator
// holds came from its MDM server, its enrolment profile included) is not
// reported by macOS nor by a supervised device; a payload's PayloadUUID
// only from iOS 17 and macOS 14.
func (d *Device) profileListItem(m profileMeta, signers [][]byte) map[string]any {
	item := map[string]any{"PayloadIdentifier": m.PayloadIdentifier, "PayloadUUID": m.PayloadUUID}
	if m.PayloadVersion != 0 {
		item["PayloadVersion"] = m.PayloadVersion
	}
	for k, v := range map[string]string{"PayloadDisplayName": m.PayloadDisplayName, "PayloadOrganization": m.PayloadOrganization,
		"PayloadDescription": m.PayloadDescription} {
		if v != "" {
			item[k] = v
		}
	}
	if m.PayloadRemovalDisallowed {
		item["PayloadRemovalDisallowed"] = true
	}
	if len(signers) > 0 {
		item["SignerCertificates"] = signers
	}
	if !d.mac() && !d.Supervised {
		item["IsManaged"] = true
	}
	if m.Encrypted {
		item["IsEncrypted"] = true
		return item // its payloads are not listed
	}
	payloadUUIDs := !versionBelow(d.OSVersion, "17.0")
	if d.mac() {
		payloadUUIDs = !versionBelow(d.OSVersion, "14.0")
	}
	content := make([]map[string]any, 0, len(m.PayloadContent))
	for _, p := range m.PayloadContent {
		if p.PayloadType == "com.apple.profileRemovalPassword" {
			item["HasRemovalPasscode"] = true
		}
		version := p.PayloadVersion
		if version == 0 {
			version = 1
		}
		c := map[string]any{"PayloadType": p.PayloadType, "PayloadVersion": version, "PayloadIdentifier": p.PayloadIdentifier}
		if payloadUUIDs {
			c["PayloadUUID"] = p.PayloadUUID
		}
		for k, v := range map[string]string{"PayloadDisplayName": p.PayloadDisplayName, "PayloadDescription": p.PayloadDescription,
			"PayloadOrganization": p.PayloadOrganization} {
			if v != "" {
				c[k] = v
			}
		}
		content = append(content, c)
	}
	item["PayloadContent"] = content
	return item
}

// profileList is a ProfileList's answer for the profiles in installed (by
// PayloadIdentifier), in identifier order, after the enrolment profile
// when there is one. Every profile the simulator holds is managed, so
// ManagedOnly (which a User Enrollment always applies) leaves them all.
func (d *Device) profileList(installed map[string][]byte, enrolment bool) []map[string]any {
	list := []map[string]any{}
	if enrolment && d.profile.listed.PayloadIdentifier != "" {
		list = append(list, d.profileListItem(d.profile.listed, d.profile.signers))
	}
	for _, id := range slices.Sorted(maps.Keys(installed)) {
		if enrolment && id == d.profile.listed.PayloadIdentifier {
			continue
		}
		if m, signers, ok := readProfileMeta(installed[id]); ok {
			list = append(list, d.profileListItem(m, signers))
		}
	}
	return list
}
