package rules

import (
	"testing"
	"time"
)

func TestEvalOperators(t *testing.T) {
	s := testSchema(t)
	day := 24 * time.Hour
	type facts = map[string]any
	none := facts{}
	tests := []struct {
		name  string
		rule  string
		facts facts
		want  Result
	}{
		// String.
		{"string eq", `{"attr":"ownership","op":"eq","value":"corporate"}`, facts{"ownership": "corporate"}, True},
		{"string eq is case-sensitive", `{"attr":"ownership","op":"eq","value":"corporate"}`, facts{"ownership": "Corporate"}, False},
		{"string eq unknown", `{"attr":"ownership","op":"eq","value":"corporate"}`, none, Unknown},
		{"string ne", `{"attr":"ownership","op":"ne","value":"corporate"}`, facts{"ownership": "personal"}, True},
		{"string ne same", `{"attr":"ownership","op":"ne","value":"corporate"}`, facts{"ownership": "corporate"}, False},
		{"string ne unknown", `{"attr":"ownership","op":"ne","value":"corporate"}`, none, Unknown},
		{"string in", `{"attr":"model","op":"in","value":["iPhone15,2","iPhone16,1"]}`, facts{"model": "iPhone16,1"}, True},
		{"string in miss", `{"attr":"model","op":"in","value":["iPhone15,2","iPhone16,1"]}`, facts{"model": "iPad"}, False},
		{"string not_in", `{"attr":"model","op":"not_in","value":["iPhone15,2"]}`, facts{"model": "iPad"}, True},
		{"string not_in hit", `{"attr":"model","op":"not_in","value":["iPhone15,2"]}`, facts{"model": "iPhone15,2"}, False},
		{"string not_in unknown", `{"attr":"model","op":"not_in","value":["iPhone15,2"]}`, none, Unknown},
		{"string prefix", `{"attr":"model","op":"prefix","value":"iPhone"}`, facts{"model": "iPhone16,1"}, True},
		{"string prefix miss", `{"attr":"model","op":"prefix","value":"iPhone"}`, facts{"model": "iPad14,1"}, False},
		{"string empty value known", `{"attr":"model","op":"eq","value":""}`, facts{"model": ""}, True},
		// Version.
		{"version gte", `{"attr":"os.version","op":"gte","value":"17.4"}`, facts{"os.version": "17.4.1"}, True},
		{"version gte equal", `{"attr":"os.version","op":"gte","value":"17.4"}`, facts{"os.version": "17.4"}, True},
		{"version lt", `{"attr":"os.version","op":"lt","value":"17.4"}`, facts{"os.version": "17.3.9"}, True},
		{"version lte", `{"attr":"os.version","op":"lte","value":"17.4"}`, facts{"os.version": "17.4.0"}, True},
		{"version gt", `{"attr":"os.version","op":"gt","value":"17.4"}`, facts{"os.version": "17.4.0.1"}, True},
		{"version eq", `{"attr":"os.version","op":"eq","value":"17"}`, facts{"os.version": "17.0.0"}, True},
		{"version ne", `{"attr":"os.version","op":"ne","value":"17"}`, facts{"os.version": "17.0.1"}, True},
		{"version in", `{"attr":"os.version","op":"in","value":["16.7","17.0"]}`, facts{"os.version": "17"}, True},
		{"version not_in", `{"attr":"os.version","op":"not_in","value":["16.7","17.0"]}`, facts{"os.version": "17.1"}, True},
		{"version unknown", `{"attr":"os.version","op":"gte","value":"17"}`, none, Unknown},
		{"version not comparable", `{"attr":"os.version","op":"gte","value":"17"}`, facts{"os.version": "17.4 beta"}, Unknown},
		{"version not comparable ne", `{"attr":"os.version","op":"ne","value":"17"}`, facts{"os.version": "abc"}, Unknown},
		{"version not comparable exists", `{"attr":"os.version","op":"exists"}`, facts{"os.version": "abc"}, True},
		// Number.
		{"number eq", `{"attr":"battery","op":"eq","value":0.5}`, facts{"battery": 0.5}, True},
		{"number ne", `{"attr":"battery","op":"ne","value":0.5}`, facts{"battery": 0.25}, True},
		{"number lt", `{"attr":"battery","op":"lt","value":0.2}`, facts{"battery": 0.1}, True},
		{"number lt equal", `{"attr":"battery","op":"lt","value":0.2}`, facts{"battery": 0.2}, False},
		{"number lte", `{"attr":"battery","op":"lte","value":0.2}`, facts{"battery": 0.2}, True},
		{"number gt", `{"attr":"storage.free","op":"gt","value":10}`, facts{"storage.free": 10.5}, True},
		{"number gte", `{"attr":"storage.free","op":"gte","value":10}`, facts{"storage.free": 9.99}, False},
		{"number in", `{"attr":"storage.free","op":"in","value":[1,2,3]}`, facts{"storage.free": 2.0}, True},
		{"number not_in", `{"attr":"storage.free","op":"not_in","value":[1,2,3]}`, facts{"storage.free": 2.0}, False},
		{"number negative zero", `{"attr":"battery","op":"eq","value":-0}`, facts{"battery": 0.0}, True},
		{"number unknown", `{"attr":"battery","op":"lt","value":0.2}`, none, Unknown},
		// Bool.
		{"bool eq true", `{"attr":"supervised","op":"eq","value":true}`, facts{"supervised": true}, True},
		{"bool eq false", `{"attr":"supervised","op":"eq","value":false}`, facts{"supervised": true}, False},
		{"bool ne", `{"attr":"supervised","op":"ne","value":true}`, facts{"supervised": false}, True},
		{"bool unknown", `{"attr":"supervised","op":"eq","value":false}`, none, Unknown},
		{"bools do not share slots", `{"attr":"encrypted","op":"eq","value":true}`, facts{"supervised": true, "battery": 1.0}, Unknown},
		// Time.
		{"time within", `{"attr":"last_checkin","op":"within","value":"7d"}`, facts{"last_checkin": ago(6 * day)}, True},
		{"time within boundary", `{"attr":"last_checkin","op":"within","value":"7d"}`, facts{"last_checkin": ago(7 * day)}, True},
		{"time within too old", `{"attr":"last_checkin","op":"within","value":"7d"}`, facts{"last_checkin": ago(7*day + time.Second)}, False},
		{"time within future", `{"attr":"last_checkin","op":"within","value":"1h"}`, facts{"last_checkin": testNow.Add(time.Hour)}, True},
		{"time older_than", `{"attr":"last_checkin","op":"older_than","value":"30d"}`, facts{"last_checkin": ago(31 * day)}, True},
		{"time older_than boundary", `{"attr":"last_checkin","op":"older_than","value":"30d"}`, facts{"last_checkin": ago(30 * day)}, False},
		{"time older_than unknown", `{"attr":"last_checkin","op":"older_than","value":"30d"}`, none, Unknown},
		{"time lt", `{"attr":"enrolled_at","op":"lt","value":"2026-01-01T00:00:00Z"}`, facts{"enrolled_at": time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC)}, True},
		{"time lte equal other zone", `{"attr":"enrolled_at","op":"lte","value":"2026-01-01T01:00:00+01:00"}`, facts{"enrolled_at": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, True},
		{"time gt", `{"attr":"enrolled_at","op":"gt","value":"2026-01-01T00:00:00Z"}`, facts{"enrolled_at": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, False},
		{"time gte", `{"attr":"enrolled_at","op":"gte","value":"2026-01-01T00:00:00Z"}`, facts{"enrolled_at": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, True},
		{"zero time is unknown", `{"attr":"last_checkin","op":"exists"}`, facts{"last_checkin": time.Time{}}, False},
		// String set.
		{"set contains", `{"attr":"apps","op":"contains","value":"com.bad"}`, facts{"apps": []string{"com.a", "com.bad"}}, True},
		{"set contains miss", `{"attr":"apps","op":"contains","value":"com.bad"}`, facts{"apps": []string{"com.a"}}, False},
		{"set contains empty set", `{"attr":"apps","op":"contains","value":"com.bad"}`, facts{"apps": []string{}}, False},
		{"set contains unknown", `{"attr":"apps","op":"contains","value":"com.bad"}`, none, Unknown},
		{"set contains_any", `{"attr":"apps","op":"contains_any","value":["x","com.a"]}`, facts{"apps": []string{"com.b", "com.a"}}, True},
		{"set contains_any miss", `{"attr":"apps","op":"contains_any","value":["x","y"]}`, facts{"apps": []string{"com.b", "com.a"}}, False},
		{"set contains_all", `{"attr":"tags","op":"contains_all","value":["a","b"]}`, facts{"tags": []string{"b", "c", "a", "a"}}, True},
		{"set contains_all partial", `{"attr":"tags","op":"contains_all","value":["a","b"]}`, facts{"tags": []string{"a"}}, False},
		// exists / missing never return Unknown.
		{"exists", `{"attr":"model","op":"exists"}`, facts{"model": "x"}, True},
		{"exists absent", `{"attr":"model","op":"exists"}`, none, False},
		{"missing", `{"attr":"model","op":"missing"}`, none, True},
		{"missing present", `{"attr":"model","op":"missing"}`, facts{"model": "x"}, False},
	}
	f := s.NewFacts()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustCompile(t, s, tc.rule)
			f.Reset()
			fill(t, f, tc.facts)
			if got := r.Eval(f, testNow); got != tc.want {
				t.Errorf("Eval = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestEvalThreeValuedLogic pins the Kleene truth tables of all, any and not.
func TestEvalThreeValuedLogic(t *testing.T) {
	s := testSchema(t)
	const (
		tr = `{"attr":"model","op":"exists"}`                     // True
		fa = `{"attr":"model","op":"missing"}`                    // False
		un = `{"attr":"os.version","op":"gte","value":"17"}`      // Unknown (never reported)
		u2 = `{"attr":"ownership","op":"eq","value":"corporate"}` // Unknown
	)
	tests := []struct {
		rule string
		want Result
	}{
		{`{"all":[` + tr + `,` + tr + `]}`, True},
		{`{"all":[` + tr + `,` + un + `]}`, Unknown},
		{`{"all":[` + un + `,` + fa + `]}`, False}, // a later False decides
		{`{"any":[` + fa + `,` + tr + `]}`, True},
		{`{"any":[` + un + `,` + tr + `]}`, True},
		{`{"any":[` + un + `,` + fa + `]}`, Unknown},
		{`{"any":[` + fa + `,` + fa + `]}`, False},
		{`{"not":` + un + `}`, Unknown}, // a device that never reported is not "not compliant" either
		{`{"not":` + tr + `}`, False},
		{`{"not":{"all":[` + un + `,` + u2 + `]}}`, Unknown},
		{`{"not":{"any":[` + fa + `,` + fa + `]}}`, True},
	}
	f := s.NewFacts()
	fill(t, f, map[string]any{"model": "iPhone"})
	for _, tc := range tests {
		if got := mustCompile(t, s, tc.rule).Eval(f, testNow); got != tc.want {
			t.Errorf("%s: Eval = %v, want %v", tc.rule, got, tc.want)
		}
	}
}

func TestResult(t *testing.T) {
	var zero Result
	if zero != Unknown || zero.Matches() {
		t.Fatal("the zero Result must be Unknown and must not match")
	}
	for _, tc := range []struct {
		r       Result
		not     Result
		str     string
		matches bool
	}{{True, False, "true", true}, {False, True, "false", false}, {Unknown, Unknown, "unknown", false}} {
		if tc.r.Not() != tc.not || tc.r.String() != tc.str || tc.r.Matches() != tc.matches {
			t.Errorf("%v: Not=%v String=%q Matches=%v", tc.r, tc.r.Not(), tc.r.String(), tc.r.Matches())
		}
	}
}

func TestEvalPanicsOnForeignFacts(t *testing.T) {
	r := mustCompile(t, testSchema(t), `{"attr":"model","op":"exists"}`)
	defer func() {
		if recover() == nil {
			t.Fatal("Eval with Facts of another schema did not panic")
		}
	}()
	r.Eval(testSchema(t).NewFacts(), testNow)
}

// TestEvalConcurrent shares one Rule between goroutines, each with its own
// Facts, as a group refresh does; run with -race.
func TestEvalConcurrent(t *testing.T) {
	s := testSchema(t)
	r := mustCompile(t, s, `{"all":[{"attr":"os.version","op":"gte","value":"17"},{"attr":"apps","op":"contains","value":"a"}]}`)
	versionAttr, _ := s.VersionAttr("os.version")
	apps, _ := s.StringSetAttr("apps")
	results := make(chan Result, 4)
	for i := range 4 {
		go func() {
			f := s.NewFacts()
			version := "16.0"
			if i%2 == 0 {
				version = "17.1"
			}
			var last Result
			for range 1000 {
				f.Reset()
				f.SetVersion(versionAttr, version)
				f.SetStringSet(apps, []string{"a"})
				last = r.Eval(f, testNow)
			}
			results <- last
		}()
	}
	trues := 0
	for range 4 {
		if <-results == True {
			trues++
		}
	}
	if trues != 2 {
		t.Fatalf("%d goroutines saw True, want 2", trues)
	}
}
