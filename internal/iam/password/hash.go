// Package password hashes administrator passwords with argon2id and enforces
// the password policy (length, breached-list, personal data, reuse).
//
// Parameters: argon2id m=65536 KiB (64 MiB), t=2, p=2, 16-byte salt, 32-byte
// key. Measured on the 2-core build machine (BenchmarkVerify, Go 1.26.8,
// 2026-11-23): 61-66 ms per Verify over three runs, inside the 50-100 ms
// budget that keeps online guessing slow without making login sluggish.
// (m=32 MiB,t=2 measured ~26 ms: too cheap.) Raising the parameters later is
// safe: Verify reports needsRehash for older hashes and
// the login path rehashes on the next successful sign-in.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// params are the argon2id cost parameters recorded in a PHC string.
type params struct {
	memoryKiB uint32
	time      uint32
	threads   uint8
}

// current is what Hash uses and what Verify compares against for needsRehash.
var current = params{memoryKiB: 64 * 1024, time: 2, threads: 2}

const (
	saltLen = 16
	keyLen  = 32

	// Upper bounds on parameters accepted from a stored hash, so a hostile
	// or corrupted row cannot make one Verify allocate unbounded memory or
	// burn unbounded CPU.
	maxMemoryKiB = 1024 * 1024 // 1 GiB
	maxTime      = 10
	maxThreads   = 16
	maxSaltLen   = 64
	maxKeyLen    = 64
	minSaltLen   = 8
	minKeyLen    = 16
)

// ErrMalformedHash is wrapped by every Verify error caused by a stored hash
// that is not an acceptable argon2id PHC string.
var ErrMalformedHash = errors.New("malformed password hash")

var b64 = base64.RawStdEncoding

// Hash returns an argon2id PHC string for pw with a fresh random salt:
// $argon2id$v=19$m=65536,t=2,p=2$<salt>$<key> (unpadded standard base64).
// It waits for a derivation slot; ctx ending first is its error.
func Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading random salt: %w", err)
	}
	key, err := derive(ctx, current, pw, salt, keyLen)
	if err != nil {
		return "", err
	}
	return encode(current, salt, key), nil
}

// slots bounds the argon2id derivations running at once. Each holds 64 MiB
// for its ~65 ms and keeps threads cores busy, so more at once only adds
// memory: unbounded, a burst of logins from many addresses (the per-address
// limit lets each start ten) would make the server allocate gigabytes.
var slots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/int(current.threads)))

// derived counts finished derivations; waiting, those queued for a slot.
var derived, waiting atomic.Int64

// Derivations reports how many argon2id derivations have finished, and how
// many wait for a slot now: a login flood shows as a queue.
func Derivations() (finished, queued int64) { return derived.Load(), waiting.Load() }

func derive(ctx context.Context, p params, pw string, salt []byte, n uint32) ([]byte, error) {
	waiting.Add(1)
	select {
	case slots <- struct{}{}:
		waiting.Add(-1)
	case <-ctx.Done():
		waiting.Add(-1)
		return nil, ctx.Err()
	}
	defer func() { <-slots }()
	key := argon2.IDKey([]byte(pw), salt, p.time, p.memoryKiB, p.threads, n)
	derived.Add(1)
	// The 64 MiB block is garbage now and the server's largest allocation
	// by far. Left to the pacer, which sized the next cycle while the block
	// was live, two or three of them stay resident after a few logins. A
	// collection here costs about 2 ms against argon2's ~65; returning the
	// memory to the OS as well (debug.FreeOSMemory) made the next hash
	// fault every page back in: 930 ms instead of 65.
	runtime.GC()
	return key, nil
}

func encode(p params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memoryKiB, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether pw matches the PHC string phc, comparing in constant
// time. needsRehash is true when the password matched but the hash was made
// with parameters other than the current ones. err is non-nil (wrapping
// ErrMalformedHash) only when phc cannot be parsed or has parameters beyond
// the accepted caps, or when ctx ends while it waits for a derivation slot;
// a wrong password is ok=false, err=nil.
func Verify(ctx context.Context, phc, pw string) (ok bool, needsRehash bool, err error) {
	p, salt, key, err := parsePHC(phc)
	if err != nil {
		return false, false, err
	}
	got, err := derive(ctx, p, pw, salt, uint32(len(key)))
	if err != nil {
		return false, false, err
	}
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	return true, p != current || len(salt) != saltLen || len(key) != keyLen, nil
}

// decoy is a hash with the current parameters that no password matches: its
// key was never derived from anything.
var decoy = encode(current, []byte("steward-decoy-sl"), []byte("no password derives to this key."))

// VerifyDecoy costs what a Verify of a real hash costs and never matches. A
// login that fails before reaching a real hash (unknown email, disabled or
// throttled account) spends it, so response times do not tell which.
func VerifyDecoy(ctx context.Context, pw string) {
	_, _, _ = Verify(ctx, decoy, pw)
}

// parsePHC splits and validates an argon2id PHC string.
func parsePHC(phc string) (params, []byte, []byte, error) {
	var p params
	fail := func(why string) (params, []byte, []byte, error) {
		return params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	if len(phc) > 512 {
		return fail("too long")
	}
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("expected $argon2id$v=..$m=..,t=..,p=..$salt$hash")
	}
	if parts[1] != "argon2id" {
		return fail("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return fail("unsupported argon2 version")
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		name, val, found := strings.Cut(kv, "=")
		if !found || seen[name] {
			return fail("bad parameter list")
		}
		seen[name] = true
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return fail("parameter " + name + " is not a number")
		}
		switch name {
		case "m":
			p.memoryKiB = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n > maxThreads {
				return fail("parallelism too high")
			}
			p.threads = uint8(n)
		default:
			return fail("unknown parameter " + name)
		}
	}
	if len(seen) != 3 {
		return fail("parameters m, t and p are all required")
	}
	switch {
	case p.memoryKiB > maxMemoryKiB:
		return fail("memory too high")
	case p.time < 1 || p.time > maxTime:
		return fail("time cost out of range")
	case p.threads < 1:
		return fail("parallelism out of range")
	case p.memoryKiB < 8*uint32(p.threads):
		return fail("memory below 8*parallelism")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return fail("bad salt")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return fail("bad key")
	}
	return p, salt, key, nil
}
