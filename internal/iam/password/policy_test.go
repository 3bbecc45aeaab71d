package password

import (
	"errors"
	"strings"
	"testing"
)

func TestBreachedList(t *testing.T) {
	if n := BreachedListSize(); n < 30000 {
		t.Fatalf("BreachedListSize = %d, want >= 30000", n)
	}
	for _, pw := range []string{"password", "PASSWORD", "Password123!", "dragon2024", "qwertyuiop", "trustno1"} {
		if !IsBreached(pw) {
			t.Errorf("IsBreached(%q) = false, want true", pw)
		}
	}
	for _, pw := range []string{"", "ab12", "x7#Lq-vMrt-2pWz", "abc!!!", "glimmering-otter-lattice"} {
		if IsBreached(pw) {
			t.Errorf("IsBreached(%q) = true, want false", pw)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	p := Policy{}
	personal := []string{"alice.smith+ops", "Al", "Bo"}
	cases := []struct {
		pw, code string
	}{
		{"tiny-pw", CodeTooShort},
		{strings.Repeat("é", 11), CodeTooShort}, // 11 runes, 22 bytes
		{strings.Repeat("x7#", 86), CodeTooLong},
		{"Password123!", CodeBreached},
		{"baseball1234", CodeBreached},
		{"my-alice-is-long-enough", CodeContainsPersonal},
		{"I am SMITHSONIAN x9", CodeContainsPersonal},
		{"alice.smith+ops rocks", CodeContainsPersonal},
		{"bo-al ops quartz lantern", ""}, // "ops", "bo", "al" are too short to count
		{"albatross gravel mint", ""},    // "al" is shorter than minContextLen
		{strings.Repeat("é", 12), ""},
	}
	for _, c := range cases {
		err := p.Check(t.Context(), c.pw, personal, nil)
		var pe *PolicyError
		switch {
		case c.code == "" && err != nil:
			t.Errorf("Check(%q) = %v, want nil", c.pw, err)
		case c.code != "" && (!errors.As(err, &pe) || pe.Code != c.code):
			t.Errorf("Check(%q) = %v, want code %s", c.pw, err, c.code)
		case pe != nil && (pe.Error() == "" || strings.Contains(pe.Error(), c.pw)):
			t.Errorf("Check(%q) message %q is empty or leaks the password", c.pw, pe.Error())
		}
	}
	if err := (Policy{MinLength: 20}).Check(t.Context(), "albatross gravel", nil, nil); err == nil {
		t.Error("custom MinLength not applied")
	}
}

func TestPolicyReuse(t *testing.T) {
	old, err := Hash(t.Context(), "lattice otter glimmer 7")
	if err != nil {
		t.Fatal(err)
	}
	history := []string{"not-a-hash", old}
	var pe *PolicyError
	if err := (Policy{}).Check(t.Context(), "lattice otter glimmer 7", nil, history); !errors.As(err, &pe) || pe.Code != CodeReused {
		t.Fatalf("reused password: got %v", err)
	}
	if err := (Policy{}).Check(t.Context(), "lattice otter glimmer 8", nil, history); err != nil {
		t.Fatalf("new password rejected: %v", err)
	}
}
