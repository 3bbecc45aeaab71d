package mdmproto

import (
	"fmt"
	"log/slog"
)

const redacted = "[redacted]"

// SecretString holds a secret text such as a device lock PIN. Formatting and
// structured logging print a placeholder; Reveal is the only way to the value.
type SecretString string

// Reveal returns the secret value.
func (s SecretString) Reveal() string { return string(s) }

// Format redacts the value for every fmt verb, %#v included.
func (s SecretString) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue redacts the value in slog output.
func (s SecretString) LogValue() slog.Value { return slog.StringValue(redacted) }

// SecretBytes holds secret binary data such as an UnlockToken or a
// BootstrapToken. Formatting and structured logging print a placeholder.
type SecretBytes []byte

// Reveal returns the secret bytes (not a copy).
func (s SecretBytes) Reveal() []byte { return []byte(s) }

// Format redacts the value for every fmt verb, %#v included.
func (s SecretBytes) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue redacts the value in slog output.
func (s SecretBytes) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON redacts the value when a struct holding it is encoded, as
// slog's JSON handler does with nested values.
func (s SecretString) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText redacts the value; see MarshalJSON.
func (s SecretString) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON redacts the value; see SecretString.MarshalJSON.
func (s SecretBytes) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText redacts the value; see SecretString.MarshalJSON.
func (s SecretBytes) MarshalText() ([]byte, error) { return []byte(redacted), nil }
