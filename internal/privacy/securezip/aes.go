package securezip

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/subtle"
	"fmt"
	"hash"
)

// Parameters fixed by the WinZip AES specification for AES-256 (strength 3).
const (
	saltLen          = 16
	aesKeyLen        = 32
	verifierLen      = 2
	macLen           = 10
	pbkdf2Iterations = 1000
	// entryOverhead is what AES adds to each entry's compressed size.
	entryOverhead = saltLen + verifierLen + macLen
)

// entryKeys are the per-entry secrets derived from the password and salt.
type entryKeys struct {
	encryption []byte
	mac        []byte
	verifier   [verifierLen]byte
}

// deriveKeys runs PBKDF2-HMAC-SHA1 and splits its output into the AES key,
// the HMAC key and the 2-byte password verifier, in that order.
func deriveKeys(password string, salt []byte) (entryKeys, error) {
	dk, err := pbkdf2.Key(sha1.New, password, salt, pbkdf2Iterations, 2*aesKeyLen+verifierLen)
	if err != nil {
		return entryKeys{}, fmt.Errorf("derive entry keys: %w", err)
	}
	k := entryKeys{encryption: dk[:aesKeyLen], mac: dk[aesKeyLen : 2*aesKeyLen]}
	copy(k.verifier[:], dk[2*aesKeyLen:])
	return k, nil
}

// leCounterStream is AES in counter mode with the counter block read as a
// little-endian integer starting at 1, as WinZip (Gladman's fileenc) does.
// cipher.NewCTR counts big-endian, so it cannot be used here.
type leCounterStream struct {
	block     cipher.Block
	counter   [aes.BlockSize]byte
	keystream [aes.BlockSize]byte
	used      int // bytes of keystream already consumed
}

func newLECounterStream(key []byte) (*leCounterStream, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("create AES cipher: %w", err)
	}
	// used = BlockSize makes the first XOR increment the counter to 1.
	return &leCounterStream{block: block, used: aes.BlockSize}, nil
}

// XORKeyStream encrypts or decrypts src into dst; dst must be at least as long.
func (s *leCounterStream) XORKeyStream(dst, src []byte) {
	for len(src) > 0 {
		if s.used == aes.BlockSize {
			s.nextBlock()
		}
		n := subtle.XORBytes(dst, src, s.keystream[s.used:])
		s.used += n
		dst, src = dst[n:], src[n:]
	}
}

func (s *leCounterStream) nextBlock() {
	for i := range s.counter {
		s.counter[i]++
		if s.counter[i] != 0 {
			break
		}
	}
	s.block.Encrypt(s.keystream[:], s.counter[:])
	s.used = 0
}

// sealer encrypts everything written to it into out and authenticates the
// ciphertext (encrypt-then-MAC, as the format prescribes).
type sealer struct {
	stream *leCounterStream
	mac    hash.Hash
	out    *bytes.Buffer
}

func newSealer(keys entryKeys, out *bytes.Buffer) (*sealer, error) {
	stream, err := newLECounterStream(keys.encryption)
	if err != nil {
		return nil, err
	}
	return &sealer{stream: stream, mac: hmac.New(sha1.New, keys.mac), out: out}, nil
}

// Write appends the ciphertext of p to out; p itself is left untouched.
func (s *sealer) Write(p []byte) (int, error) {
	start := s.out.Len()
	s.out.Write(p)
	ct := s.out.Bytes()[start:]
	s.stream.XORKeyStream(ct, ct)
	s.mac.Write(ct)
	return len(p), nil
}

// authCode is the truncated HMAC-SHA1 stored after the ciphertext.
func (s *sealer) authCode() []byte {
	return s.mac.Sum(nil)[:macLen]
}
