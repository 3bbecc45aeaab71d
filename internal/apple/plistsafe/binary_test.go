package plistsafe

import (
	"encoding/binary"
	"errors"
	"testing"

	"howett.net/plist"
)

// binaryPlist assembles a bplist00 with refSize-byte object references and
// one-byte offsets from the objects given.
func binaryPlist(refSize byte, objects ...[]byte) []byte {
	out := []byte("bplist00")
	var offsets []byte
	for _, o := range objects {
		offsets = append(offsets, byte(len(out)))
		out = append(out, o...)
	}
	table := len(out)
	out = append(out, offsets...)
	trailer := make([]byte, 32)
	trailer[6], trailer[7] = 1, refSize
	binary.BigEndian.PutUint64(trailer[8:], uint64(len(objects)))
	binary.BigEndian.PutUint64(trailer[24:], uint64(table))
	return append(out, trailer...)
}

// TestUnmarshalRefusesWhatTheLibraryWouldAllocateFor: a container claiming
// more entries than its file holds (zero-width references let any count
// through the library's own checks, and it allocates before reading), a
// cycle, and a tree past the limit are refused before decoding; a plain
// plist decodes.
func TestUnmarshalRefusesWhatTheLibraryWouldAllocateFor(t *testing.T) {
	claimsTooMany := append([]byte{0xDF, 0x13}, binary.BigEndian.AppendUint64(nil, 1<<36)...)
	doubling := make([][]byte, 0, 31)
	for k := range 30 {
		doubling = append(doubling, []byte{0xA2, byte(k + 1), byte(k + 1)}) // each array holds the next twice
	}
	doubling = append(doubling, []byte{0x08}) // false
	for name, c := range map[string]struct {
		body []byte
		want error
	}{
		"a dictionary claiming 2^36 entries": {binaryPlist(0, claimsTooMany), ErrMalformed},
		"a cycle":                            {binaryPlist(1, []byte{0xA1, 1}, []byte{0xA1, 0}), ErrMalformed},
		"2^30 values from 31 objects":        {binaryPlist(1, doubling...), ErrTooComplex},
		"truncated":                          {[]byte("bplist00\xd1\x01\x02"), ErrMalformed},
	} {
		var v any
		if _, err := Unmarshal(c.body, &v, 1000); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	good, err := plist.Marshal(map[string]string{"LANGUAGE": "en"}, plist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if format, err := Unmarshal(good, &got, 1000); err != nil || format != plist.BinaryFormat || got["LANGUAGE"] != "en" {
		t.Errorf("a plain binary plist: %v, %v", got, err)
	}
}
