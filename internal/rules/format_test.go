package rules

import (
	"encoding/json"
	"testing"
)

func TestStringAndCanonicalJSON(t *testing.T) {
	s := testSchema(t)
	tests := []struct {
		rule, str, canonical string
	}{
		{`{"all":[{"attr":"os.version","op":"gte","value":"17.04"},{"attr":"ownership","op":"eq","value":"corporate"}]}`,
			`os.version ≥ 17.4 and ownership = corporate`,
			`{"all":[{"attr":"os.version","op":"gte","value":"17.4"},{"attr":"ownership","op":"eq","value":"corporate"}]}`},
		{`{"any":[{"all":[{"attr":"model","op":"prefix","value":"iPhone"},{"attr":"battery","op":"lt","value":2e-1}]},{"not":{"attr":"supervised","op":"eq","value":true}}]}`,
			`(model starts with iPhone and battery < 0.2) or not (supervised = true)`,
			`{"any":[{"all":[{"attr":"model","op":"prefix","value":"iPhone"},{"attr":"battery","op":"lt","value":0.2}]},{"not":{"attr":"supervised","op":"eq","value":true}}]}`},
		{`{"value":["b","a b","b"],"op":"in","attr":"model"}`,
			`model in ["a b", b]`,
			`{"attr":"model","op":"in","value":["a b","b"]}`},
		{`{"attr":"os.version","op":"not_in","value":["17.0","16","17"]}`,
			`os.version not in [16, 17]`,
			`{"attr":"os.version","op":"not_in","value":["16","17"]}`},
		{`{"attr":"battery","op":"in","value":[3,1,1,2.5]}`, `battery in [1, 2.5, 3]`, `{"attr":"battery","op":"in","value":[1,2.5,3]}`},
		{`{"attr":"last_checkin","op":"within","value":"36h"}`, `last_checkin within 1d12h`, `{"attr":"last_checkin","op":"within","value":"1d12h"}`},
		{`{"attr":"last_checkin","op":"older_than","value":"2w"}`, `last_checkin older than 14d`, `{"attr":"last_checkin","op":"older_than","value":"14d"}`},
		{`{"attr":"enrolled_at","op":"lt","value":"2026-01-01T01:00:00+01:00"}`, `enrolled_at < 2026-01-01T00:00:00Z`, `{"attr":"enrolled_at","op":"lt","value":"2026-01-01T00:00:00Z"}`},
		{`{"attr":"apps","op":"contains_all","value":["x","<y>"]}`, `apps contains all of ["<y>", x]`, `{"attr":"apps","op":"contains_all","value":["\u003cy\u003e","x"]}`},
		{`{"attr":"apps","op":"contains_any","value":["and"]}`, `apps contains any of ["and"]`, `{"attr":"apps","op":"contains_any","value":["and"]}`},
		{`{"attr":"apps","op":"contains","value":""}`, `apps contains ""`, `{"attr":"apps","op":"contains","value":""}`},
		{`{"attr":"model","op":"exists"}`, `model exists`, `{"attr":"model","op":"exists"}`},
		{`{"attr":"model","op":"missing"}`, `model is missing`, `{"attr":"model","op":"missing"}`},
		{`{"attr":"supervised","op":"ne","value":false}`, `supervised ≠ false`, `{"attr":"supervised","op":"ne","value":false}`},
		{`{"attr":"battery","op":"eq","value":0}`, `battery = 0`, `{"attr":"battery","op":"eq","value":0}`},
		{`{"all":[{"attr":"model","op":"exists"}]}`, `model exists`, `{"all":[{"attr":"model","op":"exists"}]}`},
	}
	for _, tc := range tests {
		r := mustCompile(t, s, tc.rule)
		if got := r.String(); got != tc.str {
			t.Errorf("%s\nString() = %s\nwant       %s", tc.rule, got, tc.str)
		}
		got, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if direct, _ := r.MarshalJSON(); string(direct) != string(got) {
			t.Errorf("MarshalJSON %s differs from json.Marshal %s", direct, got)
		}
		if string(got) != tc.canonical {
			t.Errorf("%s\nMarshalJSON = %s\nwant          %s", tc.rule, got, tc.canonical)
		}
		again, err := json.Marshal(mustCompile(t, s, string(got)))
		if err != nil || string(again) != string(got) {
			t.Errorf("canonical form is not stable: %s → %s (%v)", got, again, err)
		}
	}
}
