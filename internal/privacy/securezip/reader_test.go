package securezip

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/aes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// This file is a minimal AE-2 reader for tests. It deliberately shares no
// code with the writer: keystream, key split and field parsing are redone
// here from the specification, so a bug on one side cannot hide itself.

var (
	errWrongPassword = errors.New("password verifier mismatch")
	errAuthFailed    = errors.New("authentication code mismatch")
)

type aesExtra struct {
	version  uint16
	vendor   string
	strength byte
	method   uint16
}

func parseAESExtra(extra []byte) (aesExtra, error) {
	for len(extra) >= 4 {
		id := binary.LittleEndian.Uint16(extra)
		size := int(binary.LittleEndian.Uint16(extra[2:]))
		if len(extra) < 4+size {
			return aesExtra{}, errors.New("truncated extra field")
		}
		body := extra[4 : 4+size]
		if id == 0x9901 {
			if size != 7 {
				return aesExtra{}, fmt.Errorf("AES extra field size %d, want 7", size)
			}
			return aesExtra{
				version:  binary.LittleEndian.Uint16(body),
				vendor:   string(body[2:4]),
				strength: body[4],
				method:   binary.LittleEndian.Uint16(body[5:]),
			}, nil
		}
		extra = extra[4+size:]
	}
	return aesExtra{}, errors.New("no AES extra field")
}

// readAll opens every entry of archive with password and returns name -> contents.
func readAll(archive []byte, password string) (map[string][]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte)
	for _, f := range zr.File {
		data, err := decryptEntry(f, password)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		out[f.Name] = data
	}
	return out, nil
}

func decryptEntry(f *zip.File, password string) ([]byte, error) {
	if f.Method != 99 || f.Flags&1 == 0 {
		return nil, fmt.Errorf("not a WinZip AES entry (method %d, flags %#x)", f.Method, f.Flags)
	}
	ax, err := parseAESExtra(f.Extra)
	if err != nil {
		return nil, err
	}
	if ax.version != 2 || ax.vendor != "AE" || ax.strength != 3 || ax.method != 8 {
		return nil, fmt.Errorf("unexpected AES extra %+v", ax)
	}
	rr, err := f.OpenRaw()
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(rr)
	if err != nil {
		return nil, err
	}
	if len(raw) < 16+2+10 {
		return nil, errors.New("entry too short")
	}
	salt, pv, ct, mac := raw[:16], raw[16:18], raw[18:len(raw)-10], raw[len(raw)-10:]
	dk, err := pbkdf2.Key(sha1.New, password, salt, 1000, 66)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(dk[64:], pv) {
		return nil, errWrongPassword
	}
	h := hmac.New(sha1.New, dk[32:64])
	h.Write(ct)
	if !hmac.Equal(h.Sum(nil)[:10], mac) {
		return nil, errAuthFailed
	}
	block, err := aes.NewCipher(dk[:32])
	if err != nil {
		return nil, err
	}
	plainDeflated := make([]byte, len(ct))
	var ctr, ks [16]byte
	for i := range ct {
		if i%16 == 0 {
			binary.LittleEndian.PutUint64(ctr[:8], uint64(i/16)+1)
			block.Encrypt(ks[:], ctr[:])
		}
		plainDeflated[i] = ct[i] ^ ks[i%16]
	}
	data, err := io.ReadAll(flate.NewReader(bytes.NewReader(plainDeflated)))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if uint64(len(data)) != f.UncompressedSize64 {
		return nil, fmt.Errorf("inflated %d bytes, header says %d", len(data), f.UncompressedSize64)
	}
	return data, nil
}
