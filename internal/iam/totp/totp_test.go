package totp

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"
)

// RFC 6238 Appendix B, SHA-1 rows; the secret is the ASCII string
// "12345678901234567890".
var rfcSecret = []byte("12345678901234567890")

var rfcVectors = []struct {
	unix int64
	code string // 8 digits
}{
	{59, "94287082"},
	{1111111109, "07081804"},
	{1111111111, "14050471"},
	{1234567890, "89005924"},
	{2000000000, "69279037"},
	{20000000000, "65353130"},
}

func TestRFC6238Vectors(t *testing.T) {
	for _, v := range rfcVectors {
		tm := time.Unix(v.unix, 0)
		if got := hotp(rfcSecret, Step(tm), 8); got != v.code {
			t.Errorf("8-digit code at %d = %s, want %s", v.unix, got, v.code)
		}
		// The 6-digit code is the same truncated value mod 10^6.
		if got, want := Code(rfcSecret, tm), v.code[2:]; got != want {
			t.Errorf("6-digit code at %d = %s, want %s", v.unix, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	secret, err := NewSecret()
	if err != nil || len(secret) != SecretSize {
		t.Fatalf("NewSecret: %v len %d", err, len(secret))
	}
	now := time.Unix(1_700_000_015, 0)
	cur := Step(now)
	for _, d := range []int64{-1, 0, 1} {
		code := Code(secret, now.Add(time.Duration(d)*Period))
		step, ok := Validate(secret, code, now, 0)
		if !ok || step != cur+d {
			t.Errorf("offset %d: Validate = %d %v, want %d true", d, step, ok, cur+d)
		}
	}
	for _, d := range []int64{-2, 2} {
		if _, ok := Validate(secret, Code(secret, now.Add(time.Duration(d)*Period)), now, 0); ok {
			t.Errorf("offset %d accepted", d)
		}
	}
	// Replay: a code for a step <= lastStep is refused.
	code := Code(secret, now)
	if _, ok := Validate(secret, code, now, cur); ok {
		t.Error("replayed code accepted")
	}
	if _, ok := Validate(secret, Code(secret, now.Add(-Period)), now, cur); ok {
		t.Error("older code accepted after a newer one was used")
	}
	if step, ok := Validate(secret, Code(secret, now.Add(Period)), now, cur); !ok || step != cur+1 {
		t.Error("next-step code refused after current step was used")
	}
	for _, bad := range []string{"", "12345", "1234567", "12345a", " 12345", "١٢٣٤٥٦", code + " "} {
		if _, ok := Validate(secret, bad, now, 0); ok {
			t.Errorf("Validate(%q) accepted", bad)
		}
	}
}

func TestURI(t *testing.T) {
	secret := []byte("12345678901234567890")
	u := URI("Steward & Co", "ops admin+x@example.com", secret)
	want := "otpauth://totp/Steward%20%26%20Co:ops%20admin%2Bx%40example.com" +
		"?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Steward%20%26%20Co&algorithm=SHA1&digits=6&period=30"
	if u != want {
		t.Fatalf("URI =\n %s\nwant\n %s", u, want)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Path != "/Steward & Co:ops admin+x@example.com" || parsed.Query().Get("issuer") != "Steward & Co" {
		t.Errorf("round trip: path %q query %v", parsed.Path, parsed.Query())
	}
	if got := URI("a:b", "c:d", secret); !strings.HasPrefix(got, "otpauth://totp/a%3Ab:c%3Ad?") {
		t.Errorf("colons not escaped: %s", got)
	}
	if got := URI("", "bob", secret); !strings.HasPrefix(got, "otpauth://totp/bob?secret=") || strings.Contains(got, "issuer=") {
		t.Errorf("no-issuer URI: %s", got)
	}
}

func TestRecoveryCodes(t *testing.T) {
	display, hashes, err := NewRecoveryCodes(10)
	if err != nil || len(display) != 10 || len(hashes) != 10 {
		t.Fatalf("NewRecoveryCodes: %v %d %d", err, len(display), len(hashes))
	}
	seen := map[string]bool{}
	for i, d := range display {
		if len(d) != 11 || d[5] != '-' || seen[d] {
			t.Fatalf("bad or duplicate code %q", d)
		}
		seen[d] = true
		for _, c := range strings.ReplaceAll(d, "-", "") {
			if !strings.ContainsRune(recoveryAlphabet, c) {
				t.Fatalf("code %q has symbol %q outside the alphabet", d, c)
			}
		}
		for _, typed := range []string{d, strings.ToUpper(d), strings.ReplaceAll(d, "-", " "), d[:5] + d[6:]} {
			if !bytes.Equal(HashRecoveryCode(typed), hashes[i]) {
				t.Errorf("HashRecoveryCode(%q) does not match stored hash", typed)
			}
		}
	}
	if _, _, err := NewRecoveryCodes(0); err == nil {
		t.Error("NewRecoveryCodes(0) should fail")
	}
}

func FuzzNormaliseRecoveryCode(f *testing.F) {
	f.Add("abcde-fghjk")
	f.Add("ABCDE FGHJK")
	f.Add("\xff-\x00é")
	f.Fuzz(func(t *testing.T, s string) {
		n := NormaliseRecoveryCode(s)
		if NormaliseRecoveryCode(n) != n {
			t.Fatalf("not idempotent: %q -> %q", s, n)
		}
		if strings.ContainsAny(n, " -\tABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("normalised %q still has separators or upper case: %q", s, n)
		}
		if h := HashRecoveryCode(s); len(h) != 32 || !bytes.Equal(h, HashRecoveryCode(n)) {
			t.Fatalf("hash of %q differs from hash of its normal form", s)
		}
	})
}
