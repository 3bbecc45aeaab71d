// Package exporttest opens a person's data export as the person would: with
// Debian's 7z, the stock tool for AES-encrypted ZIP archives.
package exporttest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
)

// SevenZip returns the path of 7z; without it the test fails on CI and is
// skipped elsewhere.
func SevenZip(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("7z")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("7z not found; CI installs p7zip-full")
		}
		t.Skip("7z not found (apt-get install p7zip-full)")
	}
	return bin
}

// Open extracts arc with its password and returns its data.json, the
// directory it was extracted to, and the archive's path.
func Open(t testing.TB, arc privacy.ExportArchive) (exp privacy.SubjectExport, dir, zipPath string) {
	t.Helper()
	bin := SevenZip(t)
	work := t.TempDir()
	zipPath = filepath.Join(work, arc.FileName)
	if err := os.WriteFile(zipPath, arc.Archive, 0o600); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(work, "out")
	if b, err := exec.Command(bin, "x", "-y", "-p"+arc.Password, "-o"+dir, zipPath).CombinedOutput(); err != nil {
		t.Fatalf("7z x: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	return exp, dir, zipPath
}
