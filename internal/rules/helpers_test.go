package rules

import (
	"testing"
	"time"
)

// testNow is the fixed "now" of every time-dependent test.
var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func testSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := NewSchema(map[string]Type{
		"os.version":   TypeVersion,
		"os.build":     TypeString,
		"ownership":    TypeString,
		"model":        TypeString,
		"battery":      TypeNumber,
		"storage.free": TypeNumber,
		"supervised":   TypeBool,
		"encrypted":    TypeBool,
		"last_checkin": TypeTime,
		"enrolled_at":  TypeTime,
		"apps":         TypeStringSet,
		"tags":         TypeStringSet,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCompile(t testing.TB, s *Schema, rule string) *Rule {
	t.Helper()
	r, err := Compile([]byte(rule), s)
	if err != nil {
		t.Fatalf("Compile(%s): %v", rule, err)
	}
	return r
}

// fill sets facts by name from Go values; a test-only convenience, the
// production path holds handles.
func fill(t testing.TB, f *Facts, values map[string]any) {
	t.Helper()
	s := f.Schema()
	for name, v := range values {
		typ, _ := s.TypeOf(name)
		var err error
		switch typ {
		case TypeString:
			var a StringAttr
			if a, err = s.StringAttr(name); err == nil {
				f.SetString(a, v.(string))
			}
		case TypeVersion:
			var a VersionAttr
			if a, err = s.VersionAttr(name); err == nil {
				f.SetVersion(a, v.(string))
			}
		case TypeNumber:
			var a NumberAttr
			if a, err = s.NumberAttr(name); err == nil {
				f.SetNumber(a, v.(float64))
			}
		case TypeBool:
			var a BoolAttr
			if a, err = s.BoolAttr(name); err == nil {
				f.SetBool(a, v.(bool))
			}
		case TypeTime:
			var a TimeAttr
			if a, err = s.TimeAttr(name); err == nil {
				f.SetTime(a, v.(time.Time))
			}
		case TypeStringSet:
			var a StringSetAttr
			if a, err = s.StringSetAttr(name); err == nil {
				f.SetStringSet(a, v.([]string))
			}
		default:
			t.Fatalf("fill: unknown attribute %q", name)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func ago(d time.Duration) time.Time { return testNow.Add(-d) }
