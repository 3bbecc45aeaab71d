package rules

import (
	"fmt"
	"testing"
	"time"
)

const (
	benchGroupRule = `{"all":[{"attr":"ownership","op":"eq","value":"corporate"},{"attr":"model","op":"prefix","value":"iPhone"},
		{"attr":"os.version","op":"lt","value":"17.4"}]}`
	benchComplianceRule = `{"all":[{"attr":"os.version","op":"gte","value":"17.4"},{"attr":"encrypted","op":"eq","value":true},
		{"attr":"last_checkin","op":"within","value":"7d"},
		{"not":{"attr":"apps","op":"contains_any","value":["com.bad.one","com.bad.two","com.bad.three","com.bad.four"]}}]}`
)

// benchFacts is a device with a 500-app inventory.
func benchFacts(tb testing.TB, s *Schema) *Facts {
	apps := make([]string, 500)
	for i := range apps {
		apps[i] = fmt.Sprintf("com.vendor%03d.app", i)
	}
	f := s.NewFacts()
	fill(tb, f, map[string]any{"ownership": "corporate", "model": "iPhone16,1", "os.version": "17.3.1",
		"encrypted": true, "last_checkin": ago(time.Hour), "apps": apps})
	return f
}

func TestEvalDoesNotAllocate(t *testing.T) {
	s := testSchema(t)
	f := benchFacts(t, s)
	for _, rule := range []string{benchGroupRule, benchComplianceRule,
		`{"any":[{"attr":"model","op":"in","value":["a","b"]},{"attr":"os.version","op":"in","value":["1","2"]},{"attr":"battery","op":"not_in","value":[1]}]}`} {
		r := mustCompile(t, s, rule)
		if allocs := testing.AllocsPerRun(100, func() { r.Eval(f, testNow) }); allocs != 0 {
			t.Errorf("%s: %v allocations per Eval", rule, allocs)
		}
	}
}

func TestRefillDoesNotAllocate(t *testing.T) {
	s := testSchema(t)
	f := benchFacts(t, s)
	apps, _ := s.StringSetAttr("apps")
	version, _ := s.VersionAttr("os.version")
	list := []string{"c", "a", "b"}
	if allocs := testing.AllocsPerRun(100, func() {
		f.Reset()
		f.SetVersion(version, "17.4.1")
		f.SetStringSet(apps, list)
	}); allocs != 0 {
		t.Errorf("%v allocations per Reset+set", allocs)
	}
}

func BenchmarkEvalGroupRule(b *testing.B) {
	s := testSchema(b)
	f := benchFacts(b, s)
	r := mustCompile(b, s, benchGroupRule)
	b.ReportAllocs()
	for b.Loop() {
		r.Eval(f, testNow)
	}
}

func BenchmarkEvalComplianceWith500Apps(b *testing.B) {
	s := testSchema(b)
	f := benchFacts(b, s)
	version, _ := s.VersionAttr("os.version")
	f.SetVersion(version, "17.5") // passes the version check, so every condition runs
	r := mustCompile(b, s, benchComplianceRule)
	b.ReportAllocs()
	for b.Loop() {
		r.Eval(f, testNow)
	}
}

func BenchmarkCompile(b *testing.B) {
	s := testSchema(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile([]byte(benchComplianceRule), s); err != nil {
			b.Fatal(err)
		}
	}
}
