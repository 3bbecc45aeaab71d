package sim

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Stats summarises timed operations.
type Stats struct {
	Count    int
	Errors   int
	Elapsed  time.Duration
	P50, P95 time.Duration
	P99, Max time.Duration
	// FirstError is kept to tell what went wrong.
	FirstError error
	// Interrupted: the context ended the run early (Ctrl-C). Operations it
	// cut short are neither successes nor failures.
	Interrupted bool
}

// Rate is operations per second.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Count) / s.Elapsed.Seconds()
}

func (s Stats) String() string {
	out := fmt.Sprintf("%d ok, %d failed in %v: %.0f/s; p50 %v, p95 %v, p99 %v, max %v", s.Count, s.Errors, s.Elapsed.Round(time.Millisecond),
		s.Rate(), s.P50.Round(10*time.Microsecond), s.P95.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), s.Max.Round(10*time.Microsecond))
	if s.Interrupted {
		out += " (interrupted)"
	}
	return out
}

// Back-off after a failed operation, doubling while failures follow each
// other: a server that refuses everything must not be hammered in a loop.
const (
	firstBackoff = 5 * time.Millisecond
	maxBackoff   = 500 * time.Millisecond
)

// Run calls op with workers goroutines, either n times in all (n > 0) or
// until d has passed, and times each call. op gets its worker's number w
// (0 ≤ w < workers) and i: with n > 0 the call's number (each of 0..n-1
// once, spread over the workers), otherwise how many calls worker w made
// before. A failed call is followed by a short back-off in its worker.
// When ctx ends the run stops; calls failing then are not counted as
// failures, and Stats.Interrupted says so. progress, when set, is called
// about every second with the successes and failures so far.
func Run(ctx context.Context, workers, n int, d time.Duration, op func(ctx context.Context, w, i int) error, progress func(done, failed int)) Stats {
	var next, done, failed atomic.Int64
	var mu sync.Mutex
	var first error
	total := new(Histogram)
	deadline := time.Now().Add(d)
	start := time.Now()
	stopProgress := make(chan struct{})
	if progress != nil {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					progress(int(done.Load()), int(failed.Load()))
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := new(Histogram)
			backoff := time.Duration(0)
			for calls := 0; ctx.Err() == nil; calls++ {
				i := calls
				if n > 0 {
					if i = int(next.Add(1) - 1); i >= n {
						break
					}
				} else if !time.Now().Before(deadline) {
					break
				}
				t0 := time.Now()
				err := op(ctx, w, i)
				el := time.Since(t0)
				if err == nil {
					h.Record(el)
					done.Add(1)
					backoff = 0
					continue
				}
				if ctx.Err() != nil {
					break // cut short, not failed
				}
				failed.Add(1)
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				backoff = min(max(2*backoff, firstBackoff), maxBackoff)
				wait := backoff
				if n <= 0 {
					wait = min(wait, time.Until(deadline))
				}
				sleep(ctx, wait)
			}
			mu.Lock()
			total.Merge(h)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stopProgress)
	s := Stats{Count: int(total.Count()), Errors: int(failed.Load()), Elapsed: time.Since(start), FirstError: first, Interrupted: ctx.Err() != nil}
	s.P50, s.P95, s.P99, s.Max = total.Percentile(50), total.Percentile(95), total.Percentile(99), total.Max()
	return s
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// A Histogram counts durations in log-linear buckets: exact below 256 ns,
// then 128 buckets for every power of two, so that a bucket's middle is
// within 0.4% of every duration in it. It takes a fixed 58 KiB whatever
// the number of samples; the zero value is empty and ready.
type Histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	min, max time.Duration
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	// Bucket of the largest uint64 plus one: 2^64-1 has 64 bits, shift 56.
	histBuckets = (64-histSubBits)*histSub + histSub
)

// histBucket is the bucket holding v.
func histBucket(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1 // v>>shift is in [histSub, 2*histSub)
	return (shift+1)*histSub + int(v>>shift) - histSub
}

// histValue is the middle of bucket b (its value when exact).
func histValue(b int) uint64 {
	if b < 2*histSub {
		return uint64(b)
	}
	shift := b/histSub - 1
	low := uint64(b%histSub+histSub) << shift
	return low + (uint64(1)<<shift-1)/2
}

// Record adds one duration (negative ones count as zero).
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[histBucket(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest sample, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100): the
// smallest sample that at least p% of the samples do not exceed, to
// within 0.4%; 0 without samples.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(nearestRank(p, int(h.n))) + 1
	var seen uint64
	for b, c := range h.counts {
		if seen += c; seen >= rank {
			// The exact extremes beat a bucket's middle.
			return min(max(time.Duration(histValue(b)), h.min), h.max)
		}
	}
	return h.max
}

// nearestRank is the index, in n sorted samples, of the p-th percentile
// by the nearest-rank method: ceil(p/100·n) - 1, within [0, n-1]. (The
// tolerance keeps p·n/100 that floating point puts a hair above a whole
// number from taking the next rank.)
func nearestRank(p float64, n int) int {
	r := int(math.Ceil(p*float64(n)/100-1e-9)) - 1
	return min(max(r, 0), n-1)
}
