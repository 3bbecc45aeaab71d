package securezip

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// maxEntrySize keeps every entry within the 32-bit size fields of the local
// header: sizes are written there up front, and archive/zip adds no ZIP64
// record to local headers of raw entries.
const maxEntrySize = math.MaxUint32 - 1

// ErrEntryTooLarge is returned when one entry would exceed maxEntrySize.
var ErrEntryTooLarge = errors.New("securezip: entry is larger than 4 GiB")

// Writer writes a ZIP archive whose entries are all encrypted with AES-256
// (WinZip AE-2) under one password. Each entry is compressed and encrypted
// in memory and written out when the next entry is created or the Writer is
// closed, so the sizes can go in the local header, which is what every
// extractor reads most reliably. A Writer is not safe for concurrent use.
type Writer struct {
	zw       *zip.Writer
	password string
	names    map[string]bool // lower-cased: names must not clash on case-insensitive file systems
	current  *entry
	err      error // first failure; the archive is unusable after it
	closed   bool
}

// NewWriter starts an archive written to w. The password must have at least
// MinPasswordLen printable ASCII characters.
func NewWriter(w io.Writer, password string) (*Writer, error) {
	if w == nil {
		return nil, errors.New("securezip: destination writer is nil")
	}
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	return &Writer{zw: zip.NewWriter(w), password: password, names: make(map[string]bool)}, nil
}

// Create adds a file entry and returns a writer for its contents, which is
// valid until the next Create or Close. Names are relative slash-separated
// paths; they are stored unencrypted.
func (w *Writer) Create(name string, modified time.Time) (io.Writer, error) {
	if err := w.usable(); err != nil {
		return nil, err
	}
	if err := validateName(name); err != nil {
		return nil, err
	}
	key := strings.ToLower(name)
	if w.names[key] {
		return nil, fmt.Errorf("securezip: duplicate entry name %q", name)
	}
	if err := w.finishEntry(); err != nil {
		return nil, err
	}
	e, err := newEntry(name, modified, w.password)
	if err != nil {
		return nil, w.fail(err)
	}
	w.names[key] = true
	w.current = e
	return e, nil
}

// Close writes the pending entry and the central directory. It does not
// close the underlying writer.
func (w *Writer) Close() error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.finishEntry(); err != nil {
		return err
	}
	w.closed = true
	w.password = ""
	if err := w.zw.Close(); err != nil {
		return w.fail(fmt.Errorf("securezip: write central directory: %w", err))
	}
	return nil
}

func (w *Writer) usable() error {
	if w.err != nil {
		return fmt.Errorf("securezip: archive unusable after an earlier error: %w", w.err)
	}
	if w.closed {
		return errors.New("securezip: writer is closed")
	}
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = err
	return err
}

// finishEntry seals the pending entry and copies it into the archive.
func (w *Writer) finishEntry() error {
	e := w.current
	if e == nil {
		return nil
	}
	w.current = nil
	rec, err := e.seal()
	if err != nil {
		return w.fail(err)
	}
	out, err := w.zw.CreateRaw(rec.header)
	if err != nil {
		return w.fail(fmt.Errorf("securezip: write header of %q: %w", e.name, err))
	}
	for _, part := range rec.parts {
		if _, err := out.Write(part); err != nil {
			return w.fail(fmt.Errorf("securezip: write data of %q: %w", e.name, err))
		}
	}
	return nil
}

// entry is the io.Writer handed out by Create: plaintext is deflated, then
// encrypted and authenticated into an in-memory buffer.
type entry struct {
	name       string
	modified   time.Time
	salt       []byte
	verifier   [verifierLen]byte
	ciphertext bytes.Buffer
	sealer     *sealer
	deflater   *flate.Writer
	plainLen   uint64
	done       bool
	err        error
}

func newEntry(name string, modified time.Time, password string) (*entry, error) {
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails: crypto/rand crashes the process rather than return an error
	keys, err := deriveKeys(password, salt)
	if err != nil {
		return nil, fmt.Errorf("securezip: %w", err)
	}
	e := &entry{name: name, modified: modified, salt: salt, verifier: keys.verifier}
	if e.sealer, err = newSealer(keys, &e.ciphertext); err != nil {
		return nil, fmt.Errorf("securezip: %w", err)
	}
	if e.deflater, err = flate.NewWriter(e.sealer, flate.DefaultCompression); err != nil {
		return nil, fmt.Errorf("securezip: create compressor: %w", err)
	}
	return e, nil
}

// Write compresses and encrypts p.
func (e *entry) Write(p []byte) (int, error) {
	if e.done {
		return 0, fmt.Errorf("securezip: entry %q written after the next Create or Close", e.name)
	}
	if e.err != nil {
		return 0, e.err
	}
	if e.plainLen+uint64(len(p)) > maxEntrySize {
		e.err = fmt.Errorf("%w: %q", ErrEntryTooLarge, e.name)
		return 0, e.err
	}
	n, err := e.deflater.Write(p)
	e.plainLen += uint64(n)
	if err != nil {
		e.err = fmt.Errorf("securezip: compress %q: %w", e.name, err)
		return n, e.err
	}
	return n, nil
}

// sealedEntry is a finished entry: its header and its data in file order.
type sealedEntry struct {
	header *zip.FileHeader
	parts  [][]byte
}

func (e *entry) seal() (sealedEntry, error) {
	e.done = true
	if e.err != nil {
		return sealedEntry{}, e.err
	}
	if err := e.deflater.Close(); err != nil {
		return sealedEntry{}, fmt.Errorf("securezip: compress %q: %w", e.name, err)
	}
	compressed := uint64(e.ciphertext.Len()) + entryOverhead
	if compressed > maxEntrySize {
		return sealedEntry{}, fmt.Errorf("%w: %q", ErrEntryTooLarge, e.name)
	}
	return sealedEntry{
		header: newFileHeader(e.name, e.modified, compressed, e.plainLen),
		parts:  [][]byte{e.salt, e.verifier[:], e.ciphertext.Bytes(), e.sealer.authCode()},
	}, nil
}
