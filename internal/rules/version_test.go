package rules

import (
	"testing"
	"time"
)

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"17", "17.0.0", 0},
		{"17.0", "17", 0},
		{"17.10", "17.9", 1},
		{"17.9", "17.10", -1},
		{"17.4.1", "17.4", 1},
		{"17.4", "17.4.0.0.0.0.0.1", -1},
		{"9", "10", -1},
		{"017.04", "17.4", 0},
		{"4294967295", "4294967294", 1},
		{"0", "0.0", 0},
	}
	for _, tc := range tests {
		a, b := parseVersion(tc.a), parseVersion(tc.b)
		if !a.ok || !b.ok {
			t.Fatalf("%q or %q did not parse", tc.a, tc.b)
		}
		if got := a.compare(b); got != tc.want {
			t.Errorf("compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := b.compare(a); got != -tc.want {
			t.Errorf("compare(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestParseVersionRejects(t *testing.T) {
	for _, s := range []string{
		"", ".", "17.", ".17", "17..4", "17.4 beta", " 17.4", "17.4b", "v17", "-1", "+1", "1.2.3.4.5.6.7.8.9",
		"4294967296", "17.٣", "21E236", "1e3",
	} {
		if v := parseVersion(s); v.ok {
			t.Errorf("parseVersion(%q) accepted %v", s, v)
		}
	}
	if v := parseVersion("1.2.3.4.5.6.7.8"); !v.ok || v.String() != "1.2.3.4.5.6.7.8" {
		t.Errorf("eight segments: got %v ok=%v", v, v.ok)
	}
}

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		in        string
		want      time.Duration
		ok        bool
		canonical string
	}{
		{"7d", 7 * day, true, "7d"},
		{"12h", 12 * time.Hour, true, "12h"},
		{"1d12h", 36 * time.Hour, true, "1d12h"},
		{"36h", 36 * time.Hour, true, "1d12h"},
		{"2w", 14 * day, true, "14d"},
		{"90m", 90 * time.Minute, true, "1h30m"},
		{"30s", 30 * time.Second, true, "30s"},
		{"1w2d3h4m5s", 9*day + 3*time.Hour + 4*time.Minute + 5*time.Second, true, "9d3h4m5s"},
		{"36500d", 36500 * day, true, "36500d"},
		{"36501d", 0, false, ""},
		{"999999999w", 0, false, ""},
		{"0d", 0, false, ""},
		{"", 0, false, ""},
		{"7", 0, false, ""},
		{"d", 0, false, ""},
		{"7D", 0, false, ""},
		{"7y", 0, false, ""},
		{"12h1d", 0, false, ""}, // largest unit first
		{"1d1d", 0, false, ""},
		{"-1d", 0, false, ""},
		{"1.5d", 0, false, ""},
		{"7d ", 0, false, ""},
		{"1000000000s", 0, false, ""},
	}
	for _, tc := range tests {
		got, ok := parseDuration(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok && formatDuration(got) != tc.canonical {
			t.Errorf("formatDuration(%v) = %q, want %q", got, formatDuration(got), tc.canonical)
		}
	}
}
