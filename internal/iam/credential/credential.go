// Package credential mints and parses bearer secrets: session tokens, API
// tokens and one-time bootstrap codes.
//
// Format: <prefix><43 base62 chars: 32 random bytes><6 base62 chars: CRC32>
// e.g. "sws_" + 43 + 6 = 53 characters. The prefix lets secret scanners and
// humans recognise the kind; the checksum (over prefix and body) rejects
// typos and truncated pastes before any database lookup. Only SHA-256 of the
// whole display string is stored, so a database leak does not reveal usable
// secrets; the 256-bit random body makes a fast hash sufficient.
package credential

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"strings"
)

// Kind is the type of bearer secret, encoded in its prefix.
type Kind int

// Kinds. The zero value is invalid so an unset Kind is never mistaken for a
// real one.
const (
	Session Kind = iota + 1
	APIToken
	BootstrapCode
	// PortalToken lets an employee read their own data (employee portal).
	PortalToken
	// EnrolmentLink opens one device enrolment.
	EnrolmentLink
	// DeviceAccessToken identifies a device to conditional access.
	DeviceAccessToken
	// ReportLink opens one published report until it expires.
	ReportLink
)

var kinds = []struct {
	kind   Kind
	prefix string
	name   string
}{
	{Session, "sws_", "session"},
	{APIToken, "stt_", "api_token"},
	{BootstrapCode, "stb_", "bootstrap_code"},
	{PortalToken, "spt_", "portal_token"},
	{EnrolmentLink, "sel_", "enrolment_link"},
	{DeviceAccessToken, "sdt_", "device_access_token"},
	{ReportLink, "srl_", "report_link"},
}

// String returns a stable lower-case name such as "api_token".
func (k Kind) String() string {
	for _, e := range kinds {
		if e.kind == k {
			return e.name
		}
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Prefix returns the display prefix, or "" for an invalid Kind.
func (k Kind) Prefix() string {
	for _, e := range kinds {
		if e.kind == k {
			return e.prefix
		}
	}
	return ""
}

const (
	base62      = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	randomBytes = 32
	bodyLen     = 43 // ceil(256 / log2(62))
	checksumLen = 6  // 62^6 > 2^32
	prefixLen   = 4
	displayLen  = prefixLen + bodyLen + checksumLen
)

// ErrInvalid is wrapped by every Parse error.
var ErrInvalid = errors.New("invalid credential")

// New mints a credential of the given kind. display is shown to the user
// exactly once; hash (SHA-256 of display) is what gets stored.
func New(kind Kind) (display string, hash []byte, err error) {
	prefix := kind.Prefix()
	if prefix == "" {
		return "", nil, fmt.Errorf("credential: unknown kind %v", kind)
	}
	raw := make([]byte, randomBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("credential: reading random bytes: %w", err)
	}
	head := prefix + encodeBase62(new(big.Int).SetBytes(raw), bodyLen)
	display = head + checksum(head)
	return display, Hash(display), nil
}

// Parse checks display's length, prefix, alphabet and checksum and returns
// its kind and storage hash. Errors wrap ErrInvalid and never echo the input.
func Parse(display string) (Kind, []byte, error) {
	if len(display) != displayLen {
		return 0, nil, fmt.Errorf("%w: wrong length", ErrInvalid)
	}
	var kind Kind
	for _, e := range kinds {
		if strings.HasPrefix(display, e.prefix) {
			kind = e.kind
		}
	}
	if kind == 0 {
		return 0, nil, fmt.Errorf("%w: unknown prefix", ErrInvalid)
	}
	for i := prefixLen; i < len(display); i++ {
		if strings.IndexByte(base62, display[i]) < 0 {
			return 0, nil, fmt.Errorf("%w: unexpected character", ErrInvalid)
		}
	}
	head := display[:prefixLen+bodyLen]
	if checksum(head) != display[prefixLen+bodyLen:] {
		return 0, nil, fmt.Errorf("%w: checksum mismatch (mistyped or truncated?)", ErrInvalid)
	}
	return kind, Hash(display), nil
}

// Hash returns SHA-256 of the display string, the value stored and looked up.
func Hash(display string) []byte {
	sum := sha256.Sum256([]byte(display))
	return sum[:]
}

func checksum(head string) string {
	return encodeBase62(new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(head)))), checksumLen)
}

// encodeBase62 renders n in base62, left-padded with '0' to width.
func encodeBase62(n *big.Int, width int) string {
	out := make([]byte, width)
	for i := range out {
		out[i] = '0'
	}
	base := big.NewInt(62)
	mod := new(big.Int)
	n = new(big.Int).Set(n)
	for i := width - 1; i >= 0 && n.Sign() > 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}
