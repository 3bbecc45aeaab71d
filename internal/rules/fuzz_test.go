package rules

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		`{"all":[{"attr":"os.version","op":"gte","value":"17.4"},{"attr":"ownership","op":"eq","value":"corporate"}]}`,
		`{"any":[{"attr":"apps","op":"contains_any","value":["a","b"]},{"not":{"attr":"last_checkin","op":"within","value":"7d"}}]}`,
		`{"all":[{"attr":"battery","op":"in","value":[1,2.5,-0]},{"attr":"battery","op":"not_in","value":[1]}]}`,
		`{"all":[{"attr":"os.version","op":"gte","value":"18"},{"attr":"os.version","op":"lt","value":"17"}]}`,
		`{"attr":"enrolled_at","op":"lt","value":"2026-01-01T00:00:00+01:00"}`,
		`{"attr":"supervised","op":"eq","value":true}`,
		`{"attr":"model","op":"missing"}`,
		`{"not":{"not":{"attr":"model","op":"prefix","value":"<iPhone>"}}}`,
		`{"attr":"model","op":"eq","value":"x","attr":"y"}`,
		`{"all":[`, `[]`, `null`, `{}`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	s := testSchema(f)
	facts := s.NewFacts()
	devices := []map[string]any{
		{},
		{"os.version": "17.4.1", "ownership": "corporate", "model": "iPhone16,1", "battery": 0.5, "supervised": true,
			"last_checkin": ago(time.Hour), "enrolled_at": ago(400 * 24 * time.Hour), "apps": []string{"a", "com.x"}, "tags": []string{}},
		{"os.version": "beta", "battery": -1.0, "supervised": false, "apps": []string{"b"}},
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Compile(raw, s)
		if err != nil {
			var rerr *Error
			if !errors.As(err, &rerr) || (!errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsatisfiable)) {
				t.Fatalf("error %v is not an *Error wrapping ErrInvalid or ErrUnsatisfiable", err)
			}
			return
		}
		for _, d := range devices {
			facts.Reset()
			fill(t, facts, d)
			if res := r.Eval(facts, testNow); res > True {
				t.Fatalf("Eval returned %d", res)
			}
		}
		if r.String() == "" {
			t.Fatal("empty String()")
		}
		for _, a := range r.Attributes() {
			if _, ok := s.TypeOf(a); !ok {
				t.Fatalf("Attributes() has %q, not in the schema", a)
			}
		}
		canonical, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Compile(canonical, s)
		if err != nil {
			t.Fatalf("canonical form %s does not compile: %v", canonical, err)
		}
		if b, _ := json.Marshal(again); string(b) != string(canonical) {
			t.Fatalf("canonical form not stable: %s → %s", canonical, b)
		}
		if again.String() != r.String() || !slices.Equal(again.Attributes(), r.Attributes()) {
			t.Fatal("recompiled canonical rule differs")
		}
	})
}

// FuzzParseVersion: versions come from devices, so from anyone.
func FuzzParseVersion(f *testing.F) {
	for _, seed := range []string{"17.4.1", "17", "17.10", "0.0.0.0.0.0.0.0", "21E236", "", "..", "4294967296", "017"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := parseVersion(s)
		if !v.ok {
			return
		}
		if strings.Trim(s, "0123456789.") != "" {
			t.Fatalf("accepted %q", s)
		}
		w := parseVersion(v.String())
		if !w.ok || w.compare(v) != 0 || w.n != v.n {
			t.Fatalf("%q → %q does not round-trip", s, v.String())
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, seed := range []string{"7d", "1w2d3h4m5s", "36h", "0s", "999999999w", "12h1d", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseDuration(s)
		if !ok {
			return
		}
		if d <= 0 || d > maxDuration {
			t.Fatalf("%q → %v out of range", s, d)
		}
		if back, ok := parseDuration(formatDuration(d)); !ok || back != d {
			t.Fatalf("%q → %v → %q does not round-trip", s, d, formatDuration(d))
		}
	})
}
