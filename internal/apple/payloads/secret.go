package payloads

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Secret holds one secret value of a payload (a password, shared secret,
// challenge or PKCS#12 file). It has three states:
//
//   - unset: the zero value; the payload carries no secret here.
//   - present: the plaintext is held in memory and Build can use it.
//   - withheld: a value exists but lives elsewhere (split out for encryption
//     at rest, or hidden from an API response). Build refuses withheld
//     secrets; WithSecrets or MergeSecrets fill them in.
//
// In JSON a present value is written by the admin as a string; every encoding
// of a set secret is the marker {"set":true}, so plaintext never leaves the
// package as JSON. Decoding the marker yields a withheld secret.
// Formatting and slog print a placeholder.
type Secret struct {
	value    []byte
	withheld bool
	binary   bool // JSON text is base64 (PKCS#12 data) rather than UTF-8 text
}

// secretMarker is the JSON shape of a set secret in API output and storage.
type secretMarker struct {
	Set bool `json:"set"`
}

// NewSecret returns a present text secret.
func NewSecret(value string) Secret { return Secret{value: []byte(value)} }

// NewSecretData returns a present binary secret.
func NewSecretData(value []byte) SecretData {
	return SecretData{Secret{value: bytes.Clone(value), binary: true}}
}

// IsZero reports whether the secret is unset; it makes `omitzero` drop it.
func (s Secret) IsZero() bool { return len(s.value) == 0 && !s.withheld }

// IsSet reports whether a value exists, present or withheld.
func (s Secret) IsSet() bool { return !s.IsZero() }

// Withheld reports whether a value exists but is not held here.
func (s Secret) Withheld() bool { return s.withheld && len(s.value) == 0 }

// Reveal returns the plaintext (not a copy); nil when unset or withheld.
func (s Secret) Reveal() []byte { return s.value }

func (s Secret) withheldCopy() Secret {
	if s.IsZero() {
		return s
	}
	return Secret{withheld: true, binary: s.binary}
}

// MarshalJSON writes {"set":true} for a set secret and null otherwise; the
// plaintext is never encoded.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(secretMarker{Set: true})
}

// UnmarshalJSON accepts a string (the new value; base64 for binary secrets),
// the marker {"set":true} (keep the stored value), or null / {"set":false}
// (no secret).
func (s *Secret) UnmarshalJSON(data []byte) error {
	binary := s.binary
	*s = Secret{binary: binary}
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		return nil
	case len(data) > 0 && data[0] == '"':
		var text string
		if err := json.Unmarshal(data, &text); err != nil {
			return err
		}
		if !binary {
			s.value = []byte(text)
			return nil
		}
		raw, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return fmt.Errorf("secret is not valid base64: encode the file with standard base64")
		}
		s.value = raw
		return nil
	case len(data) > 0 && data[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var m secretMarker
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf(`secret must be a string or {"set":true}`)
		}
		s.withheld = m.Set
		return nil
	}
	return fmt.Errorf(`secret must be a string or {"set":true}`)
}

// Format redacts the value for every fmt verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// LogValue redacts the value in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// SecretData is a binary Secret (a PKCS#12 file) whose JSON string form is
// standard base64.
type SecretData struct{ Secret }

// UnmarshalJSON decodes like Secret.UnmarshalJSON, with base64 strings.
func (b *SecretData) UnmarshalJSON(data []byte) error {
	b.binary = true
	return b.Secret.UnmarshalJSON(data)
}
