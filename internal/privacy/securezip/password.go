package securezip

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// MinPasswordLen is the shortest password NewWriter accepts.
const MinPasswordLen = 12

// passwordAlphabet has no characters that are easily confused when read
// aloud or copied from paper: no 0/o, 1/l/i, and lower case only.
const passwordAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

const (
	passwordGroups    = 5
	passwordGroupSize = 4
)

// GeneratePassword returns a random password such as "k7mq-3xbe-pw9t-a4hn-rs2d":
// 20 characters from a 31-symbol alphabet (about 99 bits), grouped for reading
// aloud. The hyphens are part of the password.
func GeneratePassword() string {
	var sb strings.Builder
	sb.Grow(passwordGroups*(passwordGroupSize+1) - 1)
	for i := range passwordGroups * passwordGroupSize {
		if i > 0 && i%passwordGroupSize == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(passwordAlphabet[uniformIndex(len(passwordAlphabet))])
	}
	return sb.String()
}

// uniformIndex returns a uniformly random index below n (n <= 256), rejecting
// bytes that would bias the modulo.
func uniformIndex(n int) int {
	limit := 256 - 256%n
	var b [1]byte
	for {
		rand.Read(b[:]) // never fails: crypto/rand crashes the process rather than return an error
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

// checkPassword refuses passwords that are too short or that extractors could
// turn into different bytes: WinZip AES hashes the raw password bytes and
// tools disagree on the encoding of non-ASCII text.
func checkPassword(password string) error {
	if len(password) < MinPasswordLen {
		return fmt.Errorf("securezip: password must be at least %d characters", MinPasswordLen)
	}
	for i := 0; i < len(password); i++ {
		if c := password[i]; c < 0x20 || c > 0x7e {
			return errors.New("securezip: password must contain only printable ASCII characters")
		}
	}
	return nil
}
