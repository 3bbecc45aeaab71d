// Package totp implements RFC 6238 time-based one-time passwords (HMAC-SHA-1,
// 6 digits, 30-second steps, the parameters every authenticator app supports)
// and single-use recovery codes.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

const (
	// SecretSize is 160 bits, the HMAC-SHA-1 block-size recommendation of RFC 4226.
	SecretSize = 20
	// Digits is the code length.
	Digits = 6
	// Period is the length of one time step.
	Period = 30 * time.Second
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a fresh random shared secret.
func NewSecret() ([]byte, error) {
	s := make([]byte, SecretSize)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("totp: reading random secret: %w", err)
	}
	return s, nil
}

// URI returns the otpauth:// provisioning URI (rendered as a QR code for
// authenticator apps): otpauth://totp/Issuer:account?secret=..&issuer=..
// Spaces are encoded as %20 (some apps show a literal "+"), and colons
// inside issuer or account are escaped so they cannot split the label.
func URI(issuer, account string, secret []byte) string {
	label := escape(account)
	if issuer != "" {
		label = escape(issuer) + ":" + label
	}
	query := "secret=" + b32.EncodeToString(secret)
	if issuer != "" {
		query += "&issuer=" + escape(issuer)
	}
	query += fmt.Sprintf("&algorithm=SHA1&digits=%d&period=%d", Digits, int(Period/time.Second))
	return "otpauth://totp/" + label + "?" + query
}

// escape percent-encodes s for use in either the label or a query value.
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// Step returns the RFC 6238 time-step counter for t.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Code returns the 6-digit code for secret at time t.
func Code(secret []byte, t time.Time) string { return hotp(secret, Step(t), Digits) }

// hotp is RFC 4226 HOTP with dynamic truncation to the given digit count.
func hotp(secret []byte, counter int64, digits int) string {
	mac := hmac.New(sha1.New, secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// Validate checks code against the steps now-1, now and now+1 (tolerating
// clock drift of up to one step either way). Only steps strictly greater than
// lastStep are accepted, so a code that was already used (or an older one)
// cannot be replayed; the caller must store the returned step as the new
// lastStep. Input that is not exactly 6 ASCII digits is rejected.
func Validate(secret []byte, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	if len(code) != Digits {
		return 0, false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, false
		}
	}
	cur := Step(now)
	// Check every candidate without an early exit so timing does not reveal
	// which window matched.
	var matched int64
	found := 0
	for s := cur - 1; s <= cur+1; s++ {
		eq := subtle.ConstantTimeCompare([]byte(hotp(secret, s, Digits)), []byte(code))
		if eq == 1 && s > lastStep && found == 0 {
			matched, found = s, 1
		}
	}
	if found == 0 {
		return 0, false
	}
	return matched, true
}
