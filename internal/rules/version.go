package rules

import (
	"strconv"
	"strings"
)

// maxVersionSegments bounds a version; longer ones are not comparable.
const maxVersionSegments = 8

// version is a parsed dotted numeric version. Segments past n are zero, so
// "17" and "17.0.0" compare equal. A version with ok == false was reported
// but is not dotted numbers ("17.4 beta"): it compares with nothing.
type version struct {
	seg [maxVersionSegments]uint32
	n   uint8
	ok  bool
}

// parseVersion parses "17.4.1". It accepts 1–8 segments of decimal digits,
// each below 2^32, and nothing else (no spaces, signs or suffixes).
func parseVersion(s string) version {
	var v version
	if s == "" {
		return v
	}
	for part := range strings.SplitSeq(s, ".") {
		if int(v.n) == maxVersionSegments || part == "" || len(part) > 10 {
			return version{}
		}
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return version{}
			}
		}
		n, err := strconv.ParseUint(part, 10, 32)
		if err != nil {
			return version{}
		}
		v.seg[v.n] = uint32(n)
		v.n++
	}
	v.ok = true
	return v
}

// compare returns -1, 0 or +1. Both versions must be ok.
func (v version) compare(w version) int {
	for i := range v.seg {
		switch {
		case v.seg[i] < w.seg[i]:
			return -1
		case v.seg[i] > w.seg[i]:
			return 1
		}
	}
	return 0
}

// String renders the version with the segments it was written with, minus
// leading zeros inside segments ("17.04" → "17.4").
func (v version) String() string {
	var b strings.Builder
	for i := 0; i < int(v.n); i++ {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatUint(uint64(v.seg[i]), 10))
	}
	return b.String()
}
