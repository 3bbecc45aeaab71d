package sim

import (
	"context"
	"fmt"
	"slices"
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
}

// Rate is operations per second.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Count) / s.Elapsed.Seconds()
}

func (s Stats) String() string {
	return fmt.Sprintf("%d ok, %d failed in %v: %.0f/s; p50 %v, p95 %v, p99 %v, max %v", s.Count, s.Errors, s.Elapsed.Round(time.Millisecond),
		s.Rate(), s.P50.Round(10*time.Microsecond), s.P95.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), s.Max.Round(10*time.Microsecond))
}

// Run calls op with workers goroutines, either n times in all (n > 0) or
// until d has passed, and times each call. progress, when set, is called
// about every second with the count so far.
func Run(ctx context.Context, workers, n int, d time.Duration, op func(ctx context.Context, i int) error, progress func(done int)) Stats {
	var next, done atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	var first error
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
					progress(int(done.Load()))
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if (n > 0 && i >= n) || (n <= 0 && time.Now().After(deadline)) {
					break
				}
				t0 := time.Now()
				err := op(ctx, i)
				el := time.Since(t0)
				if err != nil {
					mu.Lock()
					errs++
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				local = append(local, el)
				done.Add(1)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stopProgress)
	s := Stats{Count: len(lat), Errors: errs, Elapsed: time.Since(start), FirstError: first}
	if len(lat) > 0 {
		slices.Sort(lat)
		pct := func(p int) time.Duration { return lat[min(len(lat)-1, len(lat)*p/100)] }
		s.P50, s.P95, s.P99, s.Max = pct(50), pct(95), pct(99), lat[len(lat)-1]
	}
	return s
}
