package securezip

import (
	"io"
	"regexp"
	"testing"
)

func TestGeneratePassword(t *testing.T) {
	format := regexp.MustCompile(`^[` + passwordAlphabet + `]{4}(-[` + passwordAlphabet + `]{4}){4}$`)
	seen := make(map[string]bool)
	for range 200 {
		pw := GeneratePassword()
		if !format.MatchString(pw) {
			t.Fatalf("password %q is not five groups of four unambiguous characters", pw)
		}
		if seen[pw] {
			t.Fatalf("password %q generated twice", pw)
		}
		seen[pw] = true
		if _, err := NewWriter(io.Discard, pw); err != nil {
			t.Fatalf("NewWriter refused a generated password: %v", err)
		}
	}
}

func TestPasswordAlphabetIsUnambiguous(t *testing.T) {
	for _, c := range "0O1lIio" {
		for _, a := range passwordAlphabet {
			if a == c {
				t.Errorf("alphabet contains ambiguous character %q", c)
			}
		}
	}
}
