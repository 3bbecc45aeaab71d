package main

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseZxcvbnPasswords(t *testing.T) {
	src := "FREQUENCY_LISTS = {\n    \"passwords\": \"123456,Password,abc\".split(\",\"),\n    \"male_names\": \"james\".split(\",\"),\n}\n"
	got, err := parseZxcvbnPasswords([]byte(src))
	if err != nil || !reflect.DeepEqual(got, []string{"123456", "Password", "abc"}) {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range []string{"", `"passwords": "a,b`, "\"passwords\": \"a\nb\".split(\",\")"} {
		if _, err := parseZxcvbnPasswords([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	zx := filepath.Join(dir, "f.py")
	john := filepath.Join(dir, "p.lst")
	out := filepath.Join(dir, "out.gz")
	os.WriteFile(zx, []byte(`"passwords": "dragon,abc,Secret1".split(","),`), 0o600)
	os.WriteFile(john, []byte("#!comment: header\nDRAGON\nletmein\n\n"), 0o600)
	if err := run(zx, john, out, 4); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(zr)
	if got := strings.Split(strings.TrimSpace(string(data)), "\n"); !reflect.DeepEqual(got, []string{"dragon", "letmein", "secret1"}) {
		t.Fatalf("got %q", got)
	}
}
