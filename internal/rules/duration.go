package rules

import (
	"strconv"
	"strings"
	"time"
)

// maxDuration bounds within/older_than: a century covers any real policy
// and keeps time arithmetic far from overflow.
const maxDuration = 36500 * 24 * time.Hour

var durationUnits = []struct {
	unit byte
	size time.Duration
}{
	{'w', 7 * 24 * time.Hour}, {'d', 24 * time.Hour}, {'h', time.Hour}, {'m', time.Minute}, {'s', time.Second},
}

// parseDuration reads "7d", "12h", "1d12h", "2w", "90m", "30s": one or more
// <whole number><unit> pairs, units w d h m s, each at most once and
// largest first. The total must be positive and at most 36500 days.
func parseDuration(s string) (time.Duration, bool) {
	if s == "" || len(s) > 64 {
		return 0, false
	}
	var total time.Duration
	next := 0 // index into durationUnits of the largest unit still allowed
	for s != "" {
		digits := 0
		for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
			digits++
		}
		if digits == 0 || digits == len(s) || digits > 9 {
			return 0, false
		}
		n, err := strconv.Atoi(s[:digits])
		if err != nil {
			return 0, false
		}
		found := false
		for ; next < len(durationUnits); next++ {
			if u := durationUnits[next]; u.unit == s[digits] {
				if time.Duration(n) > maxDuration/u.size {
					return 0, false // checked before multiplying, which could overflow
				}
				total += time.Duration(n) * u.size
				found = true
				next++
				break
			}
		}
		if !found || total > maxDuration {
			return 0, false
		}
		s = s[digits+1:]
	}
	return total, total > 0
}

// formatDuration writes d in the canonical form parseDuration reads back:
// days, hours, minutes and seconds, largest first, zero parts left out.
func formatDuration(d time.Duration) string {
	var b strings.Builder
	for _, u := range durationUnits[1:] { // weeks are written as days
		if n := d / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteByte(u.unit)
			d -= n * u.size
		}
	}
	return b.String()
}
