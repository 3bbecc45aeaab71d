package throttle

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLoginPolicyCheck(t *testing.T) {
	p := DefaultLoginPolicy()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		failures  int
		sinceLast time.Duration
		locked    time.Duration // lockedUntil - now
		allowed   bool
		retry     time.Duration
	}{
		{0, 0, 0, true, 0},
		{3, 0, 0, true, 0},                          // still free
		{4, 0, 0, false, 2 * time.Second},           // 1s * 2^1
		{4, 2 * time.Second, 0, true, 0},            // waited long enough
		{5, time.Second, 0, false, 3 * time.Second}, // 4s - 1s
		{9, 0, 0, false, time.Minute},               // 64s capped at 60s
		{1000, 0, 0, false, time.Minute},            // no overflow
		{1000, time.Hour, 0, true, 0},
		{0, 0, 10 * time.Minute, false, 10 * time.Minute}, // locked
		{10, time.Hour, -time.Second, true, 0},            // lock expired
	}
	for _, c := range cases {
		allowed, retry := p.Check(c.failures, now.Add(-c.sinceLast), now.Add(c.locked), now)
		if allowed != c.allowed || retry != c.retry {
			t.Errorf("Check(failures=%d, since=%v, locked=%v) = %v %v, want %v %v",
				c.failures, c.sinceLast, c.locked, allowed, retry, c.allowed, c.retry)
		}
	}
	if ok, _ := p.Check(0, time.Time{}, time.Time{}, now); !ok {
		t.Error("fresh account with zero times must be allowed")
	}
}

func TestLoginPolicyOnFailure(t *testing.T) {
	p := DefaultLoginPolicy()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	n := 0
	var lock time.Time
	for i := 1; i <= 9; i++ {
		n, lock = p.OnFailure(n, now)
		if n != i || !lock.IsZero() {
			t.Fatalf("failure %d: got %d %v, want no lock", i, n, lock)
		}
	}
	n, lock = p.OnFailure(n, now)
	if n != 10 || !lock.Equal(now.Add(15*time.Minute)) {
		t.Fatalf("10th failure: %d %v, want lock for 15m", n, lock)
	}
	n, lock = p.OnFailure(n, now.Add(time.Hour))
	if n != 11 || !lock.Equal(now.Add(time.Hour+15*time.Minute)) {
		t.Fatalf("11th failure: %d %v, want count to continue and re-lock", n, lock)
	}
}

func TestLimiterBurstAndKeys(t *testing.T) {
	l := NewLimiter(0.001, 2, 100) // refill is negligible during the test
	if !l.Allow("a") || !l.Allow("a") || l.Allow("a") {
		t.Fatal("burst of 2 not enforced for key a")
	}
	if !l.Allow("b") {
		t.Fatal("key b must have its own bucket")
	}
}

func TestLimiterRefills(t *testing.T) {
	l := NewLimiter(50, 1, 10) // one token every 20 ms
	if !l.Allow("k") || l.Allow("k") {
		t.Fatal("burst of 1 not enforced")
	}
	time.Sleep(40 * time.Millisecond)
	if !l.Allow("k") {
		t.Fatal("bucket did not refill")
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	l := NewLimiter(0.001, 1, 3)
	for _, k := range []string{"a", "b", "c"} {
		l.Allow(k)
	}
	l.Allow("a") // a is now most recently used; b is oldest
	l.Allow("d") // evicts b
	if l.Len() != 3 {
		t.Fatalf("Len = %d, want 3", l.Len())
	}
	if l.Allow("a") {
		t.Error("a should still be tracked (and empty)")
	}
	if !l.Allow("b") {
		t.Error("b should have been evicted and start with a full bucket")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(0.001, 5, 50)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[string]int{}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := fmt.Sprint((g + i) % 20)
				if l.Allow(k) {
					mu.Lock()
					allowed[k]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for k, n := range allowed {
		if n > 5 {
			t.Errorf("key %s allowed %d times, burst is 5", k, n)
		}
	}
	if l.Len() > 50 {
		t.Errorf("Len = %d exceeds maxKeys", l.Len())
	}
}
