package rules

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestNewSchemaErrors(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]Type
		want  string
	}{
		{"empty", map[string]Type{}, "at least one"},
		{"empty name", map[string]Type{"": TypeString}, "1–128 bytes"},
		{"space in name", map[string]Type{"os version": TypeString}, "without whitespace"},
		{"long name", map[string]Type{strings.Repeat("a", 129): TypeString}, "1–128 bytes"},
		{"zero type", map[string]Type{"a": 0}, "invalid type"},
		{"unknown type", map[string]Type{"a": TypeStringSet + 1}, "invalid type"},
	}
	for _, tc := range tests {
		if _, err := NewSchema(tc.attrs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestSchemaLookups(t *testing.T) {
	s := testSchema(t)
	if _, err := s.StringAttr("nope"); !errors.Is(err, ErrUnknownAttribute) {
		t.Errorf("unknown name: err = %v, want ErrUnknownAttribute", err)
	}
	if _, err := s.StringAttr("os.version"); err == nil || !strings.Contains(err.Error(), "is a version") {
		t.Errorf("wrong type: err = %v", err)
	}
	for name, lookup := range map[string]func() error{
		"ownership":    func() error { _, err := s.StringAttr("ownership"); return err },
		"os.version":   func() error { _, err := s.VersionAttr("os.version"); return err },
		"battery":      func() error { _, err := s.NumberAttr("battery"); return err },
		"supervised":   func() error { _, err := s.BoolAttr("supervised"); return err },
		"last_checkin": func() error { _, err := s.TimeAttr("last_checkin"); return err },
		"apps":         func() error { _, err := s.StringSetAttr("apps"); return err },
	} {
		if err := lookup(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if typ, ok := s.TypeOf("apps"); !ok || typ != TypeStringSet {
		t.Errorf("TypeOf(apps) = %v, %v", typ, ok)
	}
	if names := s.Names(); len(names) != 12 || names[0] != "apps" {
		t.Errorf("Names() = %v", names)
	}
}

func TestFactsResetAndUnset(t *testing.T) {
	s := testSchema(t)
	f := s.NewFacts()
	exists := func(attr string) Result {
		return mustCompile(t, s, `{"attr":"`+attr+`","op":"exists"}`).Eval(f, testNow)
	}
	fill(t, f, map[string]any{"model": "x", "apps": []string{"a"}, "battery": 0.5})
	f.Unset("model")
	f.Unset("not.an.attribute") // ignored
	if exists("model") != False || exists("apps") != True {
		t.Fatal("Unset did not make exactly model unknown")
	}
	f.Reset()
	for _, name := range s.Names() {
		if exists(name) != False {
			t.Errorf("%s still known after Reset", name)
		}
	}
	apps, _ := s.StringSetAttr("apps")
	if set := f.sets[apps.sub]; cap(set) == 0 || len(set) != 0 || set[:1][0] != "" {
		t.Error("Reset must keep the set buffer for reuse but drop its strings")
	}
}

func TestFactsSpecialValues(t *testing.T) {
	s := testSchema(t)
	f := s.NewFacts()
	battery, _ := s.NumberAttr("battery")
	checkin, _ := s.TimeAttr("last_checkin")
	apps, _ := s.StringSetAttr("apps")
	exists := func(attr string) Result {
		return mustCompile(t, s, `{"attr":"`+attr+`","op":"exists"}`).Eval(f, testNow)
	}
	f.SetNumber(battery, 1)
	f.SetNumber(battery, math.NaN())
	if exists("battery") != False {
		t.Error("NaN must leave a number unknown")
	}
	f.SetTime(checkin, testNow)
	f.SetTime(checkin, time.Time{})
	if exists("last_checkin") != False {
		t.Error("the zero time must leave a time unknown")
	}
	input := []string{"b", "a", "b"}
	f.SetStringSet(apps, input)
	input[0] = "z" // the Facts must hold its own copy
	if got := mustCompile(t, s, `{"attr":"apps","op":"contains_all","value":["a","b"]}`).Eval(f, testNow); got != True {
		t.Errorf("set lost a value: %v", got)
	}
	if len(f.sets[apps.sub]) != 2 {
		t.Errorf("set kept duplicates: %v", f.sets[apps.sub])
	}
}

func TestFactsSetterPanicsOnForeignHandle(t *testing.T) {
	s, other := testSchema(t), testSchema(t)
	a, _ := other.StringAttr("model")
	for name, set := range map[string]func(){
		"foreign": func() { s.NewFacts().SetString(a, "x") },
		"zero":    func() { s.NewFacts().SetString(StringAttr{}, "x") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s handle: no panic", name)
				}
			}()
			set()
		}()
	}
}

func TestAttributes(t *testing.T) {
	s := testSchema(t)
	r := mustCompile(t, s, `{"all":[{"attr":"os.version","op":"lt","value":"17"},
		{"any":[{"attr":"apps","op":"contains","value":"x"},{"not":{"attr":"os.version","op":"eq","value":"16"}}]}]}`)
	got := r.Attributes()
	if strings.Join(got, ",") != "apps,os.version" {
		t.Fatalf("Attributes() = %v", got)
	}
	got[0] = "changed"
	if r.Attributes()[0] != "apps" {
		t.Fatal("Attributes() must return a copy")
	}
}
