package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	s := testSchema(t)
	tests := []struct {
		name string
		rule string
		path string
		want string // part of the message
	}{
		{"not JSON", `{"all":[`, "all", "ends too early"},
		{"syntax", `{"all":[}`, "all", "not valid JSON"},
		{"empty input", ``, "", "ends too early"},
		{"trailing data", `{"attr":"model","op":"exists"} {}`, "", "exactly one JSON object"},
		{"array root", `[]`, "", "is a list"},
		{"null root", `null`, "", "is null"},
		{"empty object", `{}`, "", "empty object"},
		{"duplicate key", `{"attr":"model","op":"exists","op":"missing"}`, "op", "duplicate key"},
		{"all plus key", `{"all":[{"attr":"model","op":"exists"}],"any":[]}`, "any", "no other keys"},
		{"empty all", `{"all":[]}`, "all", "at least one"},
		{"empty any nested", `{"all":[{"attr":"model","op":"exists"},{"any":[]}]}`, "all[1].any", "at least one"},
		{"all not a list", `{"all":{"attr":"model","op":"exists"}}`, "all", "list of rules"},
		{"not a list element", `{"any":[{"attr":"model","op":"exists"},"model"]}`, "any[1]", "is a string"},
		{"not of list", `{"not":[]}`, "not", "is a list"},
		{"unknown key", `{"attr":"model","op":"exists","vaule":1}`, "vaule", "unknown key"},
		{"attr missing", `{"op":"exists"}`, "attr", "attribute name"},
		{"attr not string", `{"attr":1,"op":"exists"}`, "attr", "attribute name"},
		{"unknown attribute", `{"all":[{"attr":"model","op":"exists"},{"attr":"os.versoin","op":"exists"}]}`, "all[1].attr", `did you mean "os.version"`},
		{"unknown attribute far", `{"attr":"zzzzzzzzzz","op":"exists"}`, "attr", "device schema"},
		{"op missing", `{"attr":"model"}`, "op", "use one of eq, ne, in, not_in, prefix"},
		{"unknown op", `{"attr":"model","op":"equals","value":"x"}`, "op", "unknown operator"},
		{"op wrong type", `{"attr":"model","op":"gte","value":"x"}`, "op", "gte does not apply to model (a string)"},
		{"prefix on version", `{"attr":"os.version","op":"prefix","value":"17"}`, "op", "does not apply"},
		{"contains on string", `{"attr":"model","op":"contains","value":"x"}`, "op", "does not apply"},
		{"eq on time", `{"attr":"last_checkin","op":"eq","value":"2026-01-01T00:00:00Z"}`, "op", "does not apply"},
		{"in on bool", `{"attr":"supervised","op":"in","value":[true]}`, "op", "does not apply"},
		{"value missing", `{"attr":"model","op":"eq"}`, "value", "is missing"},
		{"value on exists", `{"attr":"model","op":"exists","value":true}`, "value", "takes no value"},
		{"string got number", `{"attr":"model","op":"eq","value":1}`, "value", "is a number"},
		{"number got string", `{"attr":"battery","op":"lt","value":"0.2"}`, "value", "is a string"},
		{"number too large", `{"attr":"battery","op":"lt","value":1e999}`, "value", "too large"},
		{"bool got string", `{"attr":"supervised","op":"eq","value":"true"}`, "value", "true or false"},
		{"version as number", `{"attr":"os.version","op":"gte","value":17.4}`, "value", `as strings of dotted numbers`},
		{"bad version", `{"all":[{"attr":"os.version","op":"gte","value":"17.4 beta"}]}`, "all[0].value", "not a version"},
		{"bad version in list", `{"attr":"os.version","op":"in","value":["17","x"]}`, "value[1]", "not a version"},
		{"number list element", `{"attr":"battery","op":"in","value":[1,"2"]}`, "value[1]", "list of numbers"},
		{"string list element", `{"attr":"apps","op":"contains_any","value":["a",null]}`, "value[1]", "is null"},
		{"empty in", `{"attr":"model","op":"in","value":[]}`, "value", "empty list"},
		{"empty contains_all", `{"attr":"apps","op":"contains_all","value":[]}`, "value", "empty list"},
		{"in not list", `{"attr":"model","op":"in","value":"x"}`, "value", "non-empty list"},
		{"bad duration", `{"attr":"last_checkin","op":"within","value":"7 days"}`, "value", "not a valid duration"},
		{"duration number", `{"attr":"last_checkin","op":"within","value":7}`, "value", "duration string"},
		{"bad time", `{"attr":"enrolled_at","op":"lt","value":"2026-01-01"}`, "value", "RFC 3339"},
		{"long string", `{"attr":"model","op":"eq","value":"` + strings.Repeat("x", maxValueLen+1) + `"}`, "value", "the limit is 1024"},
		{"bad utf8", "{\"attr\":\"model\",\"op\":\"eq\",\"value\":\"\xff\"}", "", "UTF-8"},
		{"too many values", `{"attr":"model","op":"in","value":[` + strings.Repeat(`"x",`, maxListLen) + `"x"]}`, "value", "the limit is 1000"},
		{"too large", `{"attr":"model","op":"in","value":["` + strings.Repeat("x", maxRuleBytes) + `"]}`, "", "the limit is 65536"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile([]byte(tc.rule), s)
			var rerr *Error
			if !errors.As(err, &rerr) {
				t.Fatalf("Compile = %v, %v; want an *Error", r, err)
			}
			if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnsatisfiable) {
				t.Errorf("error %v should wrap ErrInvalid only", err)
			}
			if rerr.Path != tc.path || !strings.Contains(rerr.Message, tc.want) {
				t.Errorf("got path %q message %q; want path %q and message containing %q", rerr.Path, rerr.Message, tc.path, tc.want)
			}
		})
	}
}

func TestCompileErrorText(t *testing.T) {
	s := testSchema(t)
	_, err := Compile([]byte(`{"all":[{"attr":"model","op":"exists"},{"attr":"model","op":"eq","value":"SECRET-SERIAL","x":1}]}`), s)
	if err == nil || err.Error() != `all[1].x: unknown key; a condition has "attr", "op" and "value" (or use "all", "any", "not")` {
		t.Fatalf("err = %v", err)
	}
	_, err = Compile([]byte(`{"attr":"model","op":"eq","value":1}`), s)
	if err == nil || !strings.HasPrefix(err.Error(), "value: is a number") {
		t.Fatalf("err = %v", err)
	}
	_, err = Compile([]byte(`[]`), s)
	if err == nil || !strings.HasPrefix(err.Error(), "rule: ") {
		t.Fatalf("a root error should read \"rule: …\", got %v", err)
	}
	if _, err := Compile([]byte(`{"attr":"model","op":"exists"}`), nil); err == nil {
		t.Fatal("Compile without a schema must fail")
	}
}

// TestCompileErrorsDoNotEchoValues: values may identify a device or person
// and error messages end up in logs.
func TestCompileErrorsDoNotEchoValues(t *testing.T) {
	s := testSchema(t)
	const secret = "C02SECRET123"
	for _, rule := range []string{
		`{"attr":"model","op":"eq","value":"` + secret + `","x":1}`,
		`{"attr":"battery","op":"eq","value":"` + secret + `"}`,
		`{"attr":"os.version","op":"eq","value":"` + secret + `"}`,
		`{"attr":"last_checkin","op":"within","value":"` + secret + `"}`,
		`{"attr":"enrolled_at","op":"lt","value":"` + secret + `"}`,
		`{"all":[{"attr":"model","op":"eq","value":"` + secret + `"},{"attr":"model","op":"eq","value":"other"}]}`,
	} {
		_, err := Compile([]byte(rule), s)
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: err = %v", rule, err)
		}
	}
}

func TestCompileLimits(t *testing.T) {
	s := testSchema(t)
	cond := `{"attr":"model","op":"exists"}`
	nested := func(levels int) string {
		return strings.Repeat(`{"not":`, levels-1) + cond + strings.Repeat(`}`, levels-1)
	}
	wide := func(n int) string {
		return `{"any":[` + strings.TrimSuffix(strings.Repeat(cond+",", n), ",") + `]}`
	}
	var values []string
	for i := range maxListLen {
		values = append(values, fmt.Sprintf(`"%04d%s"`, i, strings.Repeat("<", 20)))
	}
	escapeHeavy := `{"attr":"model","op":"in","value":[` + strings.Join(values, ",") + `]}`
	tests := []struct {
		name string
		rule string
		ok   bool
	}{
		{"depth 16", nested(maxDepth), true},
		{"depth 17", nested(maxDepth + 1), false},
		{"very deep JSON", strings.Repeat(`{"not":`, 100000), false},
		{"255 conditions + any", wide(maxNodes - 1), true},
		{"256 conditions + any", wide(maxNodes), false},
		{"canonical form over the limit", escapeHeavy, false}, // "<" is escaped as \u003c: 60 KB in, 129 KB out
		{"1000 list values", `{"attr":"model","op":"in","value":[` + strings.TrimSuffix(strings.Repeat(`"x",`, maxListLen), ",") + `]}`, true},
	}
	for _, tc := range tests {
		_, err := Compile([]byte(tc.rule), s)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v should wrap ErrInvalid", tc.name, err)
		}
		if tc.rule == escapeHeavy && (err == nil || !strings.Contains(err.Error(), "canonical form exceeds")) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func ExampleCompile() {
	s, _ := NewSchema(map[string]Type{"os.version": TypeVersion, "ownership": TypeString})
	r, err := Compile([]byte(`{"all":[{"attr":"ownership","op":"eq","value":"corporate"},
		{"attr":"os.version","op":"lt","value":"17.4"}]}`), s)
	if err != nil {
		panic(err)
	}
	f := s.NewFacts()
	version, _ := s.VersionAttr("os.version")
	ownership, _ := s.StringAttr("ownership")
	f.SetString(ownership, "corporate")
	fmt.Println(r, "→", r.Eval(f, testNow)) // os.version never reported
	f.SetVersion(version, "17.3.1")
	fmt.Println(r, "→", r.Eval(f, testNow))
	// Output:
	// ownership = corporate and os.version < 17.4 → unknown
	// ownership = corporate and os.version < 17.4 → true
}
