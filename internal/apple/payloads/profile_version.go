package payloads

import "github.com/steward-mdm/steward/internal/apperr"

// ProfileVersion returns a profile's PayloadIdentifier and top-level
// PayloadUUID: which profile it is, and which version of it. Neither
// carries a secret (Build derives UUIDs from everything but the secrets),
// so both may be kept where the profile's content may not, as in an audit
// entry. A digest of the bytes would not do: it could be matched offline
// against profiles rebuilt with guessed passwords.
func ProfileVersion(mobileconfig []byte) (identifier, uuid string, err error) {
	if len(mobileconfig) > MaxCustomProfileSize {
		return "", "", apperr.New(apperr.KindTooLarge, "profile is larger than %d bytes", MaxCustomProfileSize)
	}
	content, _, err := unwrapProfile(mobileconfig)
	if err != nil {
		return "", "", err
	}
	top, err := decodeProfile(content)
	if err != nil {
		return "", "", err
	}
	identifier, _ = top["PayloadIdentifier"].(string)
	uuid, _ = top["PayloadUUID"].(string)
	return identifier, uuid, nil
}
