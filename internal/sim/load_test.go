package sim

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNearestRank: the p-th percentile of n sorted samples is the one at
// ceil(p/100·n) - 1, within the samples.
func TestNearestRank(t *testing.T) {
	for _, c := range []struct {
		p    float64
		n    int
		want int
	}{
		{50, 100, 49}, {95, 100, 94}, {99, 100, 98}, {100, 100, 99},
		{50, 2, 0}, {99, 2, 1}, {50, 1, 0}, {99, 1, 0}, {0, 10, 0},
		{50, 3, 1}, {99, 1000, 989}, {99.9, 1000, 998}, {95, 20, 18},
		{99.9, 41000, 40958}, // 99.9·41000/100 is a hair above 40959 in floating point
	} {
		if got := nearestRank(c.p, c.n); got != c.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", c.p, c.n, got, c.want)
		}
	}
}

// within says whether got is within frac of want.
func within(got, want time.Duration, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

// TestHistogramPercentiles: 1..100 ms give p50 50 ms, p95 95 ms, p99 99 ms
// and max 100 ms (not p99 = max); of two samples p50 is the smaller.
func TestHistogramPercentiles(t *testing.T) {
	var h Histogram
	for i := 100; i >= 1; i-- {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {95, 95 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}} {
		if got := h.Percentile(c.p); !within(got, c.want, 0.004) {
			t.Errorf("p%v of 1..100 ms = %v, want %v", c.p, got, c.want)
		}
	}
	if h.Max() != 100*time.Millisecond || h.Count() != 100 {
		t.Errorf("max %v, count %d", h.Max(), h.Count())
	}
	var two Histogram
	two.Record(51 * time.Millisecond)
	two.Record(time.Millisecond)
	if got := two.Percentile(50); !within(got, time.Millisecond, 0.004) {
		t.Errorf("p50 of 1 ms and 51 ms = %v, want 1ms", got)
	}
	var none Histogram
	if none.Percentile(99) != 0 || none.Max() != 0 {
		t.Error("an empty histogram reports samples")
	}
}

// TestHistogramAccuracy: against the exact nearest-rank percentiles of
// sorted samples, spread from nanoseconds to minutes, the histogram (filled
// by several workers and merged) is within 1%, and its max exact.
func TestHistogramAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 100, 1000, 100_000} {
		samples := make([]time.Duration, n)
		parts := make([]Histogram, 4)
		for i := range samples {
			// Log-uniform from 1 ns to about 3 minutes.
			samples[i] = time.Duration(math.Exp(r.Float64() * 26))
			parts[i%len(parts)].Record(samples[i])
		}
		var h Histogram
		for i := range parts {
			h.Merge(&parts[i])
		}
		slices.Sort(samples)
		for _, p := range []float64{1, 50, 90, 95, 99, 99.9, 100} {
			want := samples[nearestRank(p, n)]
			if got := h.Percentile(p); !within(got, want, 0.01) {
				t.Errorf("n=%d: p%v = %v, exact %v", n, p, got, want)
			}
		}
		if h.Max() != samples[n-1] || h.Count() != uint64(n) {
			t.Errorf("n=%d: max %v (exact %v), count %d", n, h.Max(), samples[n-1], h.Count())
		}
	}
	// Every bucket's middle is within 0.4% of the values it holds.
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 123456789, 1 << 40, math.MaxInt64, math.MaxUint64} {
		mid := histValue(histBucket(v))
		if math.Abs(float64(mid)-float64(v)) > 0.004*float64(v) {
			t.Errorf("value %d: bucket %d, middle %d", v, histBucket(v), mid)
		}
	}
	if histBucket(math.MaxUint64) != histBuckets-1 {
		t.Errorf("the largest value is in bucket %d of %d", histBucket(math.MaxUint64), histBuckets)
	}
}

// TestRunPercentiles: Run reports the percentiles of what it timed (their
// exactness is TestHistogramPercentiles's: sleeping overshoots).
func TestRunPercentiles(t *testing.T) {
	s := Run(context.Background(), 4, 40, 0, func(ctx context.Context, _, i int) error {
		time.Sleep(time.Duration(i%20+1) * 5 * time.Millisecond)
		return nil
	}, nil)
	// 5..100 ms in steps of 5, each twice: p50 50 ms, p95 95 ms, max 100 ms.
	if s.Count != 40 || s.Errors != 0 || s.P50 < 50*time.Millisecond || s.P50 >= 80*time.Millisecond ||
		s.P95 < 95*time.Millisecond || s.Max < 100*time.Millisecond || s.P99 > s.Max {
		t.Errorf("%s", s)
	}
}

// TestRunBacksOffAfterFailures: a worker whose operations fail waits
// before the next, instead of spinning (the reviewer saw 780,809 failures
// in 200 ms).
func TestRunBacksOffAfterFailures(t *testing.T) {
	var calls atomic.Int64
	s := Run(context.Background(), 4, 0, 200*time.Millisecond, func(ctx context.Context, _, _ int) error {
		calls.Add(1)
		return errors.New("connection refused")
	}, nil)
	// Doubling from 5 ms: at most 6 calls per worker in 200 ms.
	if n := calls.Load(); n > 4*8 || s.Errors != int(n) || s.Count != 0 || s.FirstError == nil {
		t.Errorf("%d calls; %s", n, s)
	}
	if s.Elapsed > time.Second {
		t.Errorf("the back-off outlasted the phase: %v", s.Elapsed)
	}
}

// TestRunInterrupted: operations cut short by the context (Ctrl-C) are not
// failures; Run stops and says it was interrupted.
func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	s := Run(ctx, 3, 0, time.Minute, func(ctx context.Context, _, _ int) error {
		if calls.Add(1) == 10 {
			cancel()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
			return nil
		}
	}, nil)
	if !s.Interrupted || s.Errors != 0 || s.Count == 0 || s.Elapsed > 10*time.Second {
		t.Errorf("%s; errors %d, interrupted %v", s, s.Errors, s.Interrupted)
	}
}

// TestRunNumbersCalls: with n, each of 0..n-1 once; with a duration, each
// worker's own calls from 0 up, and w within the workers.
func TestRunNumbersCalls(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	Run(context.Background(), 5, 50, 0, func(ctx context.Context, w, i int) error {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		if w < 0 || w >= 5 {
			t.Errorf("worker %d", w)
		}
		return nil
	}, nil)
	for i := 0; i < 50; i++ {
		if seen[i] != 1 {
			t.Errorf("call %d made %d times", i, seen[i])
		}
	}
	next := make([]int, 3) // each element touched by its worker only
	Run(context.Background(), 3, 0, 50*time.Millisecond, func(ctx context.Context, w, i int) error {
		if i != next[w] {
			t.Errorf("worker %d: call %d, want %d", w, i, next[w])
		}
		next[w]++
		time.Sleep(time.Millisecond)
		return nil
	}, nil)
	for w, n := range next {
		if n == 0 {
			t.Errorf("worker %d made no call", w)
		}
	}
}
