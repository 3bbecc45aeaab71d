package privacy_test

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
)

// TestValidateReason: a reason is plain text of 10 to 500 characters. Line
// breaks and tabs a form may send are plain text; escape sequences and other
// control characters, which could rewrite what an auditor's terminal shows,
// are not.
func TestValidateReason(t *testing.T) {
	for reason, ok := range map[string]bool{
		"  found the phone in the office  ":    true,
		"ticket 4711:\r\nthe employee asked\t": true,
		"too short":                            false,
		"found it\x1b[2J on the desk":          false,
		"found it\x00 on the desk":             false,
		"found it\u0085 on the desk":           false,
		// Characters, not bytes: 500 umlauts are 1,000 bytes.
		strings.Repeat("ä", 500): true,
		strings.Repeat("ä", 501): false,
		strings.Repeat("a", 501): false,
	} {
		got, err := privacy.ValidateReason(reason)
		if (err == nil) != ok {
			t.Errorf("ValidateReason(%q) = %q, %v; want accepted %v", reason, got, err, ok)
		}
	}
}
