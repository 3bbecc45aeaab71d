package securezip

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	methodWinZipAES  = 99     // compression method that announces WinZip AES
	aesExtraID       = 0x9901 // WinZip AES extra field
	aesVendorAE2     = 2      // AE-2: CRC field left zero
	aesStrength256   = 3
	extTimestampID   = 0x5455 // "UT" extended timestamp, holds the Unix mtime
	flagEncrypted    = 0x1
	flagUTF8         = 0x800
	versionWinZipAES = 51 // "version needed to extract" 5.1, per the AES spec
	entryFileMode    = 0o600
)

// validateName accepts only relative, slash-separated file paths that
// extract to the same place on every operating system and cannot escape the
// extraction directory.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("securezip: entry name is empty")
	case len(name) > math.MaxUint16:
		return errors.New("securezip: entry name is too long")
	case !utf8.ValidString(name):
		return errors.New("securezip: entry name is not valid UTF-8")
	case strings.ContainsAny(name, `\:`):
		return fmt.Errorf("securezip: entry name %q contains '\\' or ':'", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("securezip: entry name %q contains control characters", name)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("securezip: entry name %q is absolute", name)
	case strings.HasSuffix(name, "/"):
		return fmt.Errorf("securezip: entry name %q names a directory; only files are supported", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("securezip: entry name %q has an empty, '.' or '..' path element", name)
		}
	}
	return nil
}

// newFileHeader describes one finished AE-2 entry for zip.Writer.CreateRaw.
func newFileHeader(name string, modified time.Time, compressed, uncompressed uint64) *zip.FileHeader {
	fh := &zip.FileHeader{
		Name:               name,
		Method:             methodWinZipAES,
		Flags:              flagEncrypted,
		CreatorVersion:     versionWinZipAES,
		ReaderVersion:      versionWinZipAES,
		CRC32:              0, // AE-2
		CompressedSize64:   compressed,
		UncompressedSize64: uncompressed,
		Extra:              append(aesExtraField(), extTimestampField(modified)...),
	}
	if !isASCII(name) {
		fh.Flags |= flagUTF8
	}
	fh.ModifiedDate, fh.ModifiedTime = msDosDateTime(modified)
	// Personal data: readable by the extracting user only, where the tool honours modes.
	fh.SetMode(entryFileMode)
	return fh
}

// aesExtraField is the 0x9901 record: version, vendor "AE", key strength and
// the real compression method hidden behind method 99.
func aesExtraField() []byte {
	b := make([]byte, 0, 11)
	b = binary.LittleEndian.AppendUint16(b, aesExtraID)
	b = binary.LittleEndian.AppendUint16(b, 7)
	b = binary.LittleEndian.AppendUint16(b, aesVendorAE2)
	b = append(b, 'A', 'E', aesStrength256)
	return binary.LittleEndian.AppendUint16(b, zip.Deflate)
}

// extTimestampField records the exact modification instant, which the
// zone-less MS-DOS fields cannot. It is omitted outside its 32-bit range.
func extTimestampField(modified time.Time) []byte {
	unix := modified.Unix()
	if modified.IsZero() || unix < 0 || unix > math.MaxUint32 {
		return nil
	}
	b := make([]byte, 0, 9)
	b = binary.LittleEndian.AppendUint16(b, extTimestampID)
	b = binary.LittleEndian.AppendUint16(b, 5)
	b = append(b, 1) // flags: modification time present
	return binary.LittleEndian.AppendUint32(b, uint32(unix))
}

// msDosDateTime encodes t in its own location, as archive/zip does, clamped
// to the 1980-2107 range the format can hold.
func msDosDateTime(t time.Time) (date, clock uint16) {
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	} else if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	clock = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	return date, clock
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
