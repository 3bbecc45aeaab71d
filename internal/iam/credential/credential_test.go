package credential

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestNewParse(t *testing.T) {
	for _, k := range []Kind{Session, APIToken, BootstrapCode} {
		d, h, err := New(k)
		if err != nil {
			t.Fatal(err)
		}
		if len(d) != displayLen || !strings.HasPrefix(d, k.Prefix()) {
			t.Fatalf("%v: bad display %q", k, d)
		}
		kind, h2, err := Parse(d)
		if err != nil || kind != k || !bytes.Equal(h, h2) || !bytes.Equal(h, Hash(d)) {
			t.Fatalf("Parse(%v) = %v %v", k, kind, err)
		}
		d2, _, _ := New(k)
		if d2 == d {
			t.Fatal("two credentials are identical")
		}
	}
	if _, _, err := New(Kind(0)); err == nil {
		t.Error("New(invalid kind) should fail")
	}
	if Session.String() != "session" || APIToken.String() != "api_token" || BootstrapCode.String() != "bootstrap_code" {
		t.Error("unexpected Kind names")
	}
}

func TestParseRejects(t *testing.T) {
	d, _, _ := New(APIToken)
	flip := func(i int) string {
		b := []byte(d)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, bad := range map[string]string{
		"empty":          "",
		"truncated":      d[:len(d)-1],
		"extra":          d + "x",
		"typo in body":   flip(10),
		"typo in sum":    flip(len(d) - 1),
		"swapped prefix": "sws_" + d[4:], // checksum covers the prefix
		"unknown prefix": "xxx_" + d[4:],
		"bad char":       d[:10] + "-" + d[11:],
		"whitespace":     " " + d[:len(d)-1],
	} {
		if _, _, err := Parse(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse accepted or wrong error: %v", name, err)
		}
	}
}

func TestBase62Width(t *testing.T) {
	pow := func(b, e int64) *big.Int { return new(big.Int).Exp(big.NewInt(b), big.NewInt(e), nil) }
	if pow(62, bodyLen).Cmp(pow(2, 8*randomBytes)) <= 0 {
		t.Error("bodyLen too small for randomBytes")
	}
	if pow(62, checksumLen).Cmp(pow(2, 32)) <= 0 {
		t.Error("checksumLen too small for CRC32")
	}
	if encodeBase62(big.NewInt(0), 3) != "000" || encodeBase62(big.NewInt(61), 2) != "0z" || encodeBase62(big.NewInt(62), 2) != "10" {
		t.Error("base62 encoding wrong")
	}
}

func FuzzParse(f *testing.F) {
	d, _, _ := New(Session)
	f.Add(d)
	f.Add("stb_")
	f.Add("stt_" + strings.Repeat("0", bodyLen+checksumLen))
	f.Fuzz(func(t *testing.T, s string) {
		kind, h, err := Parse(s)
		if err != nil {
			return
		}
		if kind.Prefix() == "" || !bytes.Equal(h, Hash(s)) || len(s) != displayLen {
			t.Fatalf("Parse accepted %q as %v", s, kind)
		}
		if checksum(s[:prefixLen+bodyLen]) != s[prefixLen+bodyLen:] {
			t.Fatalf("accepted bad checksum %q", s)
		}
	})
}
