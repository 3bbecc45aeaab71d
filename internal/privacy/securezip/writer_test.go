package securezip

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"
)

const testPassword = "correct-horse-battery"

type testFile struct {
	name string
	data []byte
}

// sampleFiles covers an empty file, small text, 1 MiB of incompressible and
// 1 MiB of compressible data, a nested path and a non-ASCII name.
func sampleFiles(t *testing.T) []testFile {
	t.Helper()
	random := make([]byte, 1<<20)
	rand.Read(random)
	return []testFile{
		{"empty.txt", nil},
		{"data.json", []byte(`{"name":"Ada","devices":[{"serial":"C02XYZ"}]}`)},
		{"random.bin", random},
		{"logs/repeated.txt", bytes.Repeat([]byte("device checked in\n"), (1<<20)/18)},
		{"données-résumé.html", []byte("<p>Grüße</p>")},
	}
}

var testModified = time.Date(2026, 11, 23, 10, 30, 42, 0, time.UTC)

func buildArchive(t *testing.T, password string, files []testFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := NewWriter(&buf, password)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for _, f := range files {
		w, err := zw.Create(f.name, testModified)
		if err != nil {
			t.Fatalf("Create(%q): %v", f.name, err)
		}
		// Several writes, so the encryption stream is fed in uneven pieces.
		for chunk := f.data; len(chunk) > 0; {
			n := min(len(chunk), 70001)
			if _, err := w.Write(chunk[:n]); err != nil {
				t.Fatalf("Write(%q): %v", f.name, err)
			}
			chunk = chunk[n:]
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	files := sampleFiles(t)
	archive := buildArchive(t, testPassword, files)

	got, err := readAll(archive, testPassword)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if len(got) != len(files) {
		t.Fatalf("archive has %d entries, want %d", len(got), len(files))
	}
	for _, f := range files {
		data, ok := got[f.name]
		if !ok {
			t.Fatalf("entry %q missing", f.name)
		}
		if !bytes.Equal(data, f.data) {
			t.Errorf("entry %q: got %d bytes that differ from the %d written", f.name, len(data), len(f.data))
		}
	}
}

func TestHeadersFollowAE2(t *testing.T) {
	files := sampleFiles(t)
	archive := buildArchive(t, testPassword, files)
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range zr.File {
		if f.Name != files[i].name {
			t.Errorf("entry %d is %q, want %q", i, f.Name, files[i].name)
		}
		if f.Method != 99 || f.Flags&flagEncrypted == 0 || f.CRC32 != 0 || f.ReaderVersion != 51 {
			t.Errorf("%q: method %d flags %#x crc %#x version %d; want 99, encrypted, 0, 51",
				f.Name, f.Method, f.Flags, f.CRC32, f.ReaderVersion)
		}
		if nonASCII := !isASCII(f.Name); nonASCII != (f.Flags&flagUTF8 != 0) {
			t.Errorf("%q: UTF-8 flag %v, want %v", f.Name, f.Flags&flagUTF8 != 0, nonASCII)
		}
		if want := uint64(len(files[i].data)); f.UncompressedSize64 != want {
			t.Errorf("%q: uncompressed size %d, want %d", f.Name, f.UncompressedSize64, want)
		}
		if !f.Modified.Equal(testModified) {
			t.Errorf("%q: modified %v, want %v", f.Name, f.Modified, testModified)
		}
		if perm := f.Mode().Perm(); perm != 0o600 {
			t.Errorf("%q: mode %v, want 0600", f.Name, perm)
		}
	}
	// Compression happens before encryption: the repetitive megabyte must shrink.
	if c := zr.File[3].CompressedSize64; c > 64<<10 {
		t.Errorf("repetitive 1 MiB entry stored as %d bytes; not compressed", c)
	}
}

func TestWrongPasswordFailsVerifier(t *testing.T) {
	// A fixed seed makes the salts, and so the verifiers, deterministic: a
	// random wrong password matches the 2-byte verifier once in 65536 runs.
	cryptotest.SetGlobalRandom(t, 1)
	archive := buildArchive(t, testPassword, sampleFiles(t))
	_, err := readAll(archive, "incorrect-horse-battery")
	if !errors.Is(err, errWrongPassword) {
		t.Fatalf("reading with a wrong password: got %v, want %v", err, errWrongPassword)
	}
}

// ciphertextRange locates the ciphertext of the archive's first entry:
// after salt and verifier, before the authentication code.
func ciphertextRange(t *testing.T, archive []byte) (start, end int) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	f := zr.File[0]
	data, err := f.DataOffset()
	if err != nil {
		t.Fatal(err)
	}
	start = int(data) + saltLen + verifierLen
	end = int(data) + int(f.CompressedSize64) - macLen
	if end <= start {
		t.Fatalf("entry %q has no ciphertext", f.Name)
	}
	return start, end
}

func TestTamperingDetectedByMAC(t *testing.T) {
	archive := buildArchive(t, testPassword, []testFile{{"data.json", []byte(strings.Repeat("personal data ", 100))}})
	ctStart, ctEnd := ciphertextRange(t, archive)
	for name, at := range map[string]int{
		"first ciphertext byte": ctStart,
		"last ciphertext byte":  ctEnd - 1,
		"authentication code":   ctEnd,
	} {
		t.Run(name, func(t *testing.T) {
			tampered := bytes.Clone(archive)
			tampered[at] ^= 0x01
			if _, err := readAll(tampered, testPassword); !errors.Is(err, errAuthFailed) {
				t.Fatalf("got %v, want %v", err, errAuthFailed)
			}
		})
	}
	// The untouched archive still opens, so the failures above come from the flips.
	if _, err := readAll(archive, testPassword); err != nil {
		t.Fatalf("untampered archive: %v", err)
	}
}

func TestEntriesUseFreshSalts(t *testing.T) {
	same := []byte("identical contents")
	archive := buildArchive(t, testPassword, []testFile{{"a.txt", same}, {"b.txt", same}})
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	var raws [][]byte
	for _, f := range zr.File {
		r, err := f.OpenRaw()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(r)
		raws = append(raws, raw)
	}
	if bytes.Equal(raws[0][:saltLen], raws[1][:saltLen]) || bytes.Equal(raws[0][saltLen:], raws[1][saltLen:]) {
		t.Fatal("two entries with the same contents share salt or ciphertext")
	}
}

func TestNewWriterRejectsWeakPasswords(t *testing.T) {
	for _, pw := range []string{"", "short", "elevenchars", "twelve chars\n", "naïve-password-123"} {
		if _, err := NewWriter(io.Discard, pw); err == nil {
			t.Errorf("NewWriter accepted password of %d bytes that should be refused", len(pw))
		} else if strings.Contains(err.Error(), pw) && pw != "" {
			t.Errorf("error %q repeats the password", err)
		}
	}
	if _, err := NewWriter(io.Discard, "twelve chars"); err != nil {
		t.Errorf("NewWriter refused a 12-character password: %v", err)
	}
	if _, err := NewWriter(nil, testPassword); err == nil {
		t.Error("NewWriter accepted a nil destination")
	}
}

func TestCreateRejectsUnsafeNames(t *testing.T) {
	zw, err := NewWriter(io.Discard, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"", "/etc/passwd", "../escape.txt", "a/../../b", "a//b", "./a", "dir/",
		`a\b.txt`, "C:evil", "bell\a.txt", string([]byte{0xff, 'a'}),
	} {
		if _, err := zw.Create(name, testModified); err == nil {
			t.Errorf("Create(%q) succeeded, want an error", name)
		}
	}
	if _, err := zw.Create("Report.txt", testModified); err != nil {
		t.Fatalf("Create of a valid name: %v", err)
	}
	if _, err := zw.Create("report.TXT", testModified); err == nil {
		t.Error("Create accepted a name differing only in case from an earlier one")
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("Close after refused names: %v", err)
	}
}

func TestWriterLifecycle(t *testing.T) {
	var buf bytes.Buffer
	zw, err := NewWriter(&buf, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	first, err := zw.Create("first.txt", testModified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Create("second.txt", testModified); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Write([]byte("late")); err == nil {
		t.Error("writing to an entry after the next Create succeeded")
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if _, err := zw.Create("third.txt", testModified); err == nil {
		t.Error("Create after Close succeeded")
	}
	got, err := readAll(buf.Bytes(), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got["first.txt"]) != 0 {
		t.Errorf("archive holds %v, want two empty entries", got)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestDestinationErrorIsReported(t *testing.T) {
	zw, err := NewWriter(failingWriter{}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Create("a.txt", testModified); err != nil {
		t.Fatal(err)
	}
	err = zw.Close()
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close = %v, want the destination's error", err)
	}
	if _, err := zw.Create("b.txt", testModified); err == nil {
		t.Error("Create succeeded after the destination failed")
	}
}

func TestModifiedTimeOutsideRanges(t *testing.T) {
	for _, mod := range []time.Time{{}, time.Date(1975, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)} {
		var buf bytes.Buffer
		zw, err := NewWriter(&buf, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create("a.txt", mod)
		if err != nil {
			t.Fatalf("Create with time %v: %v", mod, err)
		}
		w.Write([]byte("x"))
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if got, err := readAll(buf.Bytes(), testPassword); err != nil || string(got["a.txt"]) != "x" {
			t.Errorf("time %v: read back %q, %v", mod, got["a.txt"], err)
		}
	}
}
