package securezip

import (
	"bytes"
	"crypto/aes"
	"testing"
)

// The keystream must be AES_k(counter) with a little-endian counter starting
// at 1, including the carry into the next byte, and must not depend on how
// the input is split.
func TestLECounterKeystream(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, aesKeyLen)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	const blocks = 258 // crosses the 0xff -> 0x0100 carry at block 256
	want := make([]byte, 0, blocks*aes.BlockSize)
	for n := 1; n <= blocks; n++ {
		var ctr, ks [aes.BlockSize]byte
		ctr[0], ctr[1] = byte(n), byte(n>>8)
		block.Encrypt(ks[:], ctr[:])
		want = append(want, ks[:]...)
	}

	s, err := newLECounterStream(key)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want)) // zero plaintext: output is the keystream
	for off, step := 0, 1; off < len(got); off, step = off+step, step%23+1 {
		end := min(off+step, len(got))
		s.XORKeyStream(got[off:end], got[off:end])
	}
	if !bytes.Equal(got, want) {
		t.Fatal("keystream differs from AES over a little-endian counter starting at 1")
	}
}

func TestSealerLeavesInputUntouched(t *testing.T) {
	keys, err := deriveKeys(testPassword, make([]byte, saltLen))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s, err := newSealer(keys, &out)
	if err != nil {
		t.Fatal(err)
	}
	in := []byte("plaintext that must survive")
	orig := bytes.Clone(in)
	s.Write(in)
	if !bytes.Equal(in, orig) {
		t.Fatal("sealer modified the caller's buffer")
	}
	if bytes.Equal(out.Bytes(), orig) || out.Len() != len(orig) {
		t.Fatalf("sealer output %x is not a same-length encryption", out.Bytes())
	}
}
