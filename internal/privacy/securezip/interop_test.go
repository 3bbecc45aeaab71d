package securezip

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sevenZip finds Debian's 7z (package p7zip-full). CI must have it: there a
// missing binary fails the test instead of skipping it.
func sevenZip(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("7z")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("7z not found; install p7zip-full in CI")
		}
		t.Skip("7z not found; install p7zip-full to run the interoperability test")
	}
	return path
}

func run7z(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = nil // never wait for an interactive password prompt
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeArchiveFile(t *testing.T, archive []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.zip")
	if err := os.WriteFile(path, archive, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSevenZipExtracts(t *testing.T) {
	bin := sevenZip(t)
	files := sampleFiles(t)
	zipPath := writeArchiveFile(t, buildArchive(t, testPassword, files))

	listing, err := run7z(t, bin, "l", "-slt", "-p"+testPassword, zipPath)
	if err != nil {
		t.Fatalf("7z l: %v\n%s", err, listing)
	}
	if n := strings.Count(listing, "Method = AES-256 Deflate"); n != len(files) {
		t.Errorf("7z lists %d entries as AES-256 Deflate, want %d:\n%s", n, len(files), listing)
	}

	dest := t.TempDir()
	out, err := run7z(t, bin, "x", "-y", "-p"+testPassword, "-o"+dest, zipPath)
	if err != nil {
		t.Fatalf("7z x: %v\n%s", err, out)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(f.name)))
		if err != nil {
			t.Errorf("extracted %q: %v", f.name, err)
			continue
		}
		if !bytes.Equal(got, f.data) {
			t.Errorf("7z extracted %q as %d bytes that differ from the %d written", f.name, len(got), len(f.data))
		}
	}
}

func TestSevenZipRejectsWrongPassword(t *testing.T) {
	bin := sevenZip(t)
	zipPath := writeArchiveFile(t, buildArchive(t, testPassword, sampleFiles(t)))

	out, err := run7z(t, bin, "t", "-p"+testPassword, zipPath)
	if err != nil {
		t.Fatalf("7z t with the right password: %v\n%s", err, out)
	}
	out, err = run7z(t, bin, "t", "-pincorrect-horse-battery", zipPath)
	if err == nil {
		t.Fatalf("7z t accepted a wrong password:\n%s", out)
	}
	if !strings.Contains(strings.ToLower(out), "wrong password") {
		t.Errorf("7z t failed without reporting a wrong password:\n%s", out)
	}
}

func TestSevenZipRejectsTamperedCiphertext(t *testing.T) {
	bin := sevenZip(t)
	archive := buildArchive(t, testPassword, []testFile{{"data.json", bytes.Repeat([]byte("personal data "), 100)}})
	start, _ := ciphertextRange(t, archive)
	archive[start+5] ^= 0x01
	out, err := run7z(t, bin, "t", "-p"+testPassword, writeArchiveFile(t, archive))
	if err == nil {
		t.Fatalf("7z t accepted an archive with a flipped ciphertext byte:\n%s", out)
	}
}

// bsdtar (libarchive, the engine behind many Linux archive managers) is a
// second, independent implementation. It is optional, also in CI.
func TestBsdtarExtracts(t *testing.T) {
	bin, err := exec.LookPath("bsdtar")
	if err != nil {
		t.Skip("bsdtar not found; install libarchive-tools to run this check")
	}
	files := sampleFiles(t)
	zipPath := writeArchiveFile(t, buildArchive(t, testPassword, files))
	dest := t.TempDir()
	cmd := exec.Command(bin, "--passphrase", testPassword, "-xf", zipPath, "-C", dest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bsdtar -x: %v\n%s", err, out)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(f.name)))
		if err != nil {
			t.Errorf("extracted %q: %v", f.name, err)
		} else if !bytes.Equal(got, f.data) {
			t.Errorf("bsdtar extracted %q as %d bytes that differ from the %d written", f.name, len(got), len(f.data))
		}
	}
}
