package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=2,p=2$") {
		t.Fatalf("unexpected PHC prefix: %s", h)
	}
	h2, _ := Hash("correct horse battery staple")
	if h == h2 {
		t.Fatal("two hashes of the same password are identical: salt not random")
	}
	ok, rehash, err := Verify(h, "correct horse battery staple")
	if err != nil || !ok || rehash {
		t.Fatalf("Verify(right) = %v %v %v", ok, rehash, err)
	}
	ok, _, err = Verify(h, "correct horse battery stapl")
	if err != nil || ok {
		t.Fatalf("Verify(wrong) = %v %v", ok, err)
	}
}

func TestVerifyNeedsRehash(t *testing.T) {
	old := params{memoryKiB: 1024, time: 1, threads: 1}
	salt := []byte("0123456789abcdef")
	phc := encode(old, salt, derive(old, "pw", salt, keyLen))
	ok, rehash, err := Verify(phc, "pw")
	if err != nil || !ok || !rehash {
		t.Fatalf("Verify(old params) = %v %v %v, want ok and needsRehash", ok, rehash, err)
	}
	if ok, rehash, _ := Verify(phc, "other"); ok || rehash {
		t.Fatal("wrong password must not report ok or needsRehash")
	}
}

func TestVerifyMalformed(t *testing.T) {
	good := "$argon2id$v=19$m=1024,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" + b64.EncodeToString(make([]byte, 32))
	if _, _, err := Verify(good, "x"); err != nil {
		t.Fatalf("baseline should parse: %v", err)
	}
	for _, bad := range []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=1024,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=16$m=1024,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=2097152,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA", // 2 GiB
		"$argon2id$v=19$m=1024,t=11,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=1024,t=1,p=17$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=1024,t=0,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=1024,t=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=1024,t=1,p=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=1024,t=1,p=1$!!!$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=1024,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$",
		"$argon2id$v=19$m=-1,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",
	} {
		ok, _, err := Verify(bad, "x")
		if ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v; want ErrMalformedHash", bad, ok, err)
		}
	}
}

func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=1024,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=65536,t=2,p=2$$")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parsePHC(s)
		if err != nil {
			return
		}
		if p.memoryKiB > maxMemoryKiB || p.time > maxTime || p.threads > maxThreads || p.threads == 0 ||
			len(salt) < minSaltLen || len(key) < minKeyLen {
			t.Fatalf("parsePHC accepted out-of-range hash %q: %+v", s, p)
		}
	})
}

// BenchmarkVerify measures one login check at the production parameters.
// Target: 50-100 ms per op on the 2-core build machine.
func BenchmarkVerify(b *testing.B) {
	h, err := Hash("benchmark password 123")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if ok, _, _ := Verify(h, "benchmark password 123"); !ok {
			b.Fatal("mismatch")
		}
	}
}
