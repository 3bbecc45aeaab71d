package password

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Policy is the password policy applied when a password is set or changed.
// Zero values mean the defaults: MinLength 12, MaxLength 256. HistoryDepth is
// how many previous hashes the caller loads and passes to Check as history.
type Policy struct {
	MinLength, MaxLength int
	HistoryDepth         int
}

// Stable PolicyError codes, safe to show to API clients and to branch on.
const (
	CodeTooShort         = "too_short"
	CodeTooLong          = "too_long"
	CodeBreached         = "breached"
	CodeContainsPersonal = "contains_personal"
	CodeReused           = "reused"
)

// PolicyError explains why a password was rejected. Use errors.As to get it.
// It never contains the password itself.
type PolicyError struct {
	Code string
	msg  string
}

func (e *PolicyError) Error() string { return e.msg }

// minContextLen is the shortest personal-data item we check for: shorter
// fragments ("jo", "ann") match too many unrelated passwords.
const minContextLen = 4

func (p Policy) limits() (minLen, maxLen int) {
	minLen, maxLen = p.MinLength, p.MaxLength
	if minLen <= 0 {
		minLen = 12
	}
	if maxLen <= 0 {
		maxLen = 256
	}
	return minLen, maxLen
}

// Check validates pw. personal holds personal data (email local part, display
// name words) that must not appear in the password; history holds previous
// PHC hashes that must not match. Length is counted in Unicode code points
// (runes); no normalisation is applied. Checks run cheapest first and the
// history check, which costs one argon2 verification per entry, runs last.
func (p Policy) Check(ctx context.Context, pw string, personal []string, history []string) error {
	minLen, maxLen := p.limits()
	n := utf8.RuneCountInString(pw)
	if n < minLen {
		return &PolicyError{Code: CodeTooShort, msg: fmt.Sprintf("Password is too short: use at least %d characters.", minLen)}
	}
	if n > maxLen {
		return &PolicyError{Code: CodeTooLong, msg: fmt.Sprintf("Password is too long: use at most %d characters.", maxLen)}
	}
	if IsBreached(pw) {
		return &PolicyError{Code: CodeBreached, msg: "Password is too common: it (or its base word) appears in lists of breached passwords. Choose something else."}
	}
	lower := strings.ToLower(pw)
	for _, item := range personalWords(personal) {
		if strings.Contains(lower, item) {
			return &PolicyError{Code: CodeContainsPersonal, msg: "Password must not contain your name or email address."}
		}
	}
	for _, h := range history {
		ok, _, err := Verify(ctx, h, pw)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		// A malformed old hash cannot match; skipping it is safer than
		// blocking every password change.
		if err == nil && ok {
			return &PolicyError{Code: CodeReused, msg: "Password was used recently: choose one you have not used before."}
		}
	}
	return nil
}

// personalWords lower-cases the context items and also splits them at
// punctuation, so an email local part "alice.smith+ops" yields "alice",
// "smith" as well as the whole string. Items shorter than minContextLen are
// dropped.
func personalWords(personal []string) []string {
	var out []string
	add := func(w string) {
		if utf8.RuneCountInString(w) >= minContextLen {
			out = append(out, w)
		}
	}
	for _, item := range personal {
		item = strings.ToLower(strings.TrimSpace(item))
		add(item)
		parts := strings.FieldsFunc(item, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		if len(parts) > 1 {
			for _, p := range parts {
				add(p)
			}
		}
	}
	return out
}
