package password

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=2,p=2$") {
		t.Fatalf("unexpected PHC prefix: %s", h)
	}
	h2, _ := Hash(t.Context(), "correct horse battery staple")
	if h == h2 {
		t.Fatal("two hashes of the same password are identical: salt not random")
	}
	ok, rehash, err := Verify(t.Context(), h, "correct horse battery staple")
	if err != nil || !ok || rehash {
		t.Fatalf("Verify(right) = %v %v %v", ok, rehash, err)
	}
	ok, _, err = Verify(t.Context(), h, "correct horse battery stapl")
	if err != nil || ok {
		t.Fatalf("Verify(wrong) = %v %v", ok, err)
	}
}

func TestVerifyNeedsRehash(t *testing.T) {
	old := params{memoryKiB: 1024, time: 1, threads: 1}
	salt := []byte("0123456789abcdef")
	phc := encode(old, salt, mustDerive(t, old, "pw", salt))
	ok, rehash, err := Verify(t.Context(), phc, "pw")
	if err != nil || !ok || !rehash {
		t.Fatalf("Verify(old params) = %v %v %v, want ok and needsRehash", ok, rehash, err)
	}
	if ok, rehash, _ := Verify(t.Context(), phc, "other"); ok || rehash {
		t.Fatal("wrong password must not report ok or needsRehash")
	}
}

// mustDerive hashes at parameters other than the current ones.
func mustDerive(t *testing.T, p params, pw string, salt []byte) []byte {
	key, err := derive(t.Context(), p, pw, salt, keyLen)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestVerifyMalformed(t *testing.T) {
	good := "$argon2id$v=19$m=1024,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" + b64.EncodeToString(make([]byte, 32))
	if _, _, err := Verify(t.Context(), good, "x"); err != nil {
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
		ok, _, err := Verify(t.Context(), bad, "x")
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
	h, err := Hash(b.Context(), "benchmark password 123")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if ok, _, _ := Verify(b.Context(), h, "benchmark password 123"); !ok {
			b.Fatal("mismatch")
		}
	}
}

func TestDerivationsWaitForASlot(t *testing.T) {
	for range cap(slots) {
		slots <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := Hash(ctx, "lattice otter glimmer 7"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash with every slot taken = %v, want the context's deadline", err)
	}
	if _, _, err := Verify(ctx, decoy, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify with every slot taken = %v, want the context's deadline", err)
	}
	<-slots
	if _, err := Hash(t.Context(), "lattice otter glimmer 7"); err != nil {
		t.Fatalf("Hash with a slot free: %v", err)
	}
	for range cap(slots) - 1 {
		<-slots
	}
}

func TestDecoyCostsARealVerify(t *testing.T) {
	p, salt, key, err := parsePHC(decoy)
	if err != nil || p != current || len(salt) != saltLen || len(key) != keyLen {
		t.Fatalf("decoy %q parses as %+v (salt %d, key %d bytes), %v; want the current parameters", decoy, p, len(salt), len(key), err)
	}
	if ok, _, err := Verify(t.Context(), decoy, ""); ok || err != nil {
		t.Fatalf("Verify(decoy) = %v, %v; want no match", ok, err)
	}
}
