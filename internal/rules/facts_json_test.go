package rules

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFactsSetJSON(t *testing.T) {
	s := testSchema(t)
	tests := []struct {
		attr, raw string
		rule      string // evaluated after setting
		want      Result
		errPart   string
	}{
		{"model", `"iPhone16,1"`, `{"attr":"model","op":"eq","value":"iPhone16,1"}`, True, ""},
		{"os.version", `"17.4.1"`, `{"attr":"os.version","op":"gt","value":"17.4"}`, True, ""},
		{"os.version", `"17.4 beta"`, `{"attr":"os.version","op":"gt","value":"17.4"}`, Unknown, ""},
		{"battery", `0.25`, `{"attr":"battery","op":"lt","value":0.5}`, True, ""},
		{"supervised", `false`, `{"attr":"supervised","op":"eq","value":false}`, True, ""},
		{"last_checkin", `"2026-11-22T12:00:00Z"`, `{"attr":"last_checkin","op":"within","value":"1d"}`, True, ""},
		{"apps", `["b","a"]`, `{"attr":"apps","op":"contains_all","value":["a","b"]}`, True, ""},
		{"apps", `null`, `{"attr":"apps","op":"exists"}`, False, ""},
		{"model", " null\n", `{"attr":"model","op":"exists"}`, False, ""},
		{"model", `17`, `{"attr":"model","op":"exists"}`, False, `"model" must be JSON text`},
		{"battery", `"0.25"`, `{"attr":"battery","op":"exists"}`, False, "a number"},
		{"supervised", `1`, `{"attr":"supervised","op":"exists"}`, False, "true or false"},
		{"last_checkin", `"yesterday"`, `{"attr":"last_checkin","op":"exists"}`, False, "RFC 3339"},
		{"apps", `["a",1]`, `{"attr":"apps","op":"exists"}`, False, "list of strings"},
		{"apps", `{`, `{"attr":"apps","op":"exists"}`, False, "list of strings"},
	}
	f := s.NewFacts()
	for _, tc := range tests {
		f.Reset()
		fill(t, f, map[string]any{"model": "old", "battery": 1.0, "supervised": true, "last_checkin": testNow, "apps": []string{"x"}})
		err := f.SetJSON(tc.attr, []byte(tc.raw))
		if (err == nil) != (tc.errPart == "") || err != nil && !strings.Contains(err.Error(), tc.errPart) {
			t.Errorf("SetJSON(%s, %s) = %v, want error containing %q", tc.attr, tc.raw, err, tc.errPart)
		}
		if err != nil && strings.Contains(err.Error(), tc.raw) {
			t.Errorf("error %q repeats the value", err)
		}
		if got := mustCompile(t, s, tc.rule).Eval(f, testNow); got != tc.want {
			t.Errorf("SetJSON(%s, %s) then %s = %v, want %v", tc.attr, tc.raw, tc.rule, got, tc.want)
		}
	}
	if err := f.SetJSON("nope", []byte(`1`)); !errors.Is(err, ErrUnknownAttribute) {
		t.Errorf("unknown attribute: %v", err)
	}
}

// FuzzFactsSetJSON: facts come from devices.
func FuzzFactsSetJSON(f *testing.F) {
	s := testSchema(f)
	names := s.Names()
	for i, seed := range []string{`"17.4"`, `1e308`, `true`, `null`, `["a","a"]`, `"2026-01-01T00:00:00Z"`, `{"x":1}`, `"\ud800"`} {
		f.Add(uint8(i), []byte(seed))
	}
	rule := mustCompile(f, s, `{"any":[{"attr":"apps","op":"contains","value":"a"},{"attr":"os.version","op":"gte","value":"1"},
		{"attr":"battery","op":"gt","value":0},{"attr":"last_checkin","op":"within","value":"1d"},{"attr":"model","op":"prefix","value":"a"}]}`)
	facts := s.NewFacts()
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		facts.Reset()
		if err := facts.SetJSON(names[int(which)%len(names)], raw); err != nil && facts.known[s.index[names[int(which)%len(names)]]] {
			t.Fatal("a fact that failed to decode must stay unknown")
		}
		rule.Eval(facts, time.Now())
	})
}
