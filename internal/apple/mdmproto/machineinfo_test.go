package mdmproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"howett.net/plist"
)

var machineInfoPlain = doc(kv("LANGUAGE", "en-GB"), kv("PRODUCT", "iPhone16,2"), kv("VERSION", "22B83"))

func TestDecodeMachineInfo(t *testing.T) {
	pki := newTestPKI(t)
	key := newECKey(t)
	cert := pki.leaf(t, key)
	want := MachineInfo{Language: "en-GB", Product: "iPhone16,2", Version: "22B83"}
	signed, err := SignMachineInfo(want, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	binary, err := plist.Marshal(want, plist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	signedBinary, err := signCMS(binary, cert, key, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"plain": machineInfoPlain, "signed": signed, "binary": binary, "signed binary": signedBinary} {
		if got, err := DecodeMachineInfo(body); err != nil || got != want {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}
	detached, err := signCMS(machineInfoPlain, cert, key, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		body []byte
		want error
	}{
		"empty":                 {nil, ErrMalformed},
		"not a plist":           {[]byte("LANGUAGE=en"), ErrMalformed},
		"a signature, no plist": {detached, ErrMalformed},
		"an array":              {[]byte(plistHead + "<array><string>en</string></array></plist>"), ErrMalformed},
		"a number for a string": {doc(ki("LANGUAGE", "1")), ErrMalformed},
		"a broken binary plist": {[]byte("bplist00\xd1\x01\x02"), ErrMalformed},
		"a binary array":        {must(plist.Marshal([]string{"en"}, plist.BinaryFormat)), ErrMalformed},
		"truncated signature":   {signed[:len(signed)/2], ErrMalformed},
		"too large":             {doc(kv("LANGUAGE", string(bytes.Repeat([]byte("x"), MaxMachineInfoBytes)))), ErrTooLarge},
		// 51 bytes that made the library ask for 2 TiB, which stops the process.
		"a dictionary claiming 2^36 entries": {hugeDictionaryPlist(), ErrMalformed},
	} {
		if _, err := DecodeMachineInfo(c.body); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// hugeDictionaryPlist is a binary plist whose one dictionary claims 2^36
// entries, with zero-width object references.
func hugeDictionaryPlist() []byte {
	b := append([]byte("bplist00"), 0xDF, 0x13) // a dictionary whose count follows as an 8-byte integer
	b = binary.BigEndian.AppendUint64(b, 1<<36)
	b = append(b, 8) // offset table: object 0 at offset 8
	trailer := make([]byte, 32)
	trailer[6], trailer[7] = 1, 0 // offsets one byte wide, references zero
	binary.BigEndian.PutUint64(trailer[8:], 1)
	binary.BigEndian.PutUint64(trailer[24:], 18)
	return append(b, trailer...)
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecodeMachineInfo(f *testing.F) {
	for _, seed := range [][]byte{machineInfoPlain, must(plist.Marshal(MachineInfo{Language: "en"}, plist.BinaryFormat)), hugeDictionaryPlist(), []byte("0\x80\x06\x09*\x86H\x86\xf7\r\x01\x07\x02"), []byte(plistHead + "<dict/></plist>")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, err := DecodeMachineInfo(body)
		if err != nil && info != (MachineInfo{}) {
			t.Fatalf("a refused body decoded to %+v", info)
		}
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("refused as something other than bad input: %v", err)
		}
	})
}
