package device

import (
	"fmt"
	"strconv"
	"strings"
)

// versionSegments is how many dotted segments a version key keeps.
const versionSegments = 4

// VersionKey renders an OS version so that text order is version order:
// "17.4.1" becomes "00017.00004.00001.00000". It returns "" for a version
// that is not dotted numbers (such values sort first and match no range).
func VersionKey(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	parts := strings.Split(v, ".")
	if len(parts) > versionSegments {
		return ""
	}
	out := make([]string, versionSegments)
	for i := range out {
		n := 0
		if i < len(parts) {
			var err error
			if n, err = strconv.Atoi(parts[i]); err != nil || n < 0 || n > 99999 {
				return ""
			}
		}
		out[i] = fmt.Sprintf("%05d", n)
	}
	return strings.Join(out, ".")
}
