package totp

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
)

// recoveryAlphabet is lower-case letters and digits without the look-alikes
// 0/o, 1/l/i, so codes survive being read aloud or copied from paper.
// 31 symbols, ~4.95 bits each.
const recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// recoveryLen is the number of random symbols per code (~49 bits).
const recoveryLen = 10

// NewRecoveryCodes returns n single-use recovery codes formatted
// "xxxxx-xxxxx" for display, and their hashes (HashRecoveryCode) for storage.
func NewRecoveryCodes(n int) (display []string, hashes [][]byte, err error) {
	if n <= 0 || n > 100 {
		return nil, nil, fmt.Errorf("totp: recovery code count %d out of range 1..100", n)
	}
	display = make([]string, 0, n)
	hashes = make([][]byte, 0, n)
	for range n {
		code, err := randomCode()
		if err != nil {
			return nil, nil, err
		}
		display = append(display, code[:5]+"-"+code[5:])
		hashes = append(hashes, HashRecoveryCode(code))
	}
	return display, hashes, nil
}

// randomCode draws recoveryLen symbols uniformly by rejection sampling.
func randomCode() (string, error) {
	var b strings.Builder
	buf := make([]byte, 32)
	for b.Len() < recoveryLen {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("totp: reading random recovery code: %w", err)
		}
		limit := byte(256 - 256%len(recoveryAlphabet))
		for _, c := range buf {
			if c < limit && b.Len() < recoveryLen {
				b.WriteByte(recoveryAlphabet[int(c)%len(recoveryAlphabet)])
			}
		}
	}
	return b.String(), nil
}

// NormaliseRecoveryCode lower-cases the input and removes spaces, tabs and
// dashes, so "ABCDE-FGHJK", "abcde fghjk" and "abcdefghjk" are equal.
func NormaliseRecoveryCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '\t', '\n', '\r':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, code)
}

// HashRecoveryCode returns SHA-256 of the normalised code. Codes carry ~49
// bits of entropy and are single-use and rate limited, so a fast hash is
// adequate and lets the store look codes up by hash.
func HashRecoveryCode(code string) []byte {
	sum := sha256.Sum256([]byte(NormaliseRecoveryCode(code)))
	return sum[:]
}
