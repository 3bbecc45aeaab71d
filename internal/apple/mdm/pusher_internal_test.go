package mdm

import (
	"testing"
	"time"
)

// TestRetryDelaySpreadsChannels: the delay doubles with the attempts up to
// an hour, give or take a fifth, so that channels failed together do not
// come due together.
func TestRetryDelaySpreadsChannels(t *testing.T) {
	for attempts := 1; attempts <= 20; attempts++ {
		base := min(time.Duration(1<<min(attempts, 12))*time.Second, time.Hour)
		seen := map[time.Duration]bool{}
		for range 100 {
			d := retryDelay(attempts)
			if d < base-base/5 || d > base+base/5 {
				t.Fatalf("retryDelay(%d) = %v, outside %v ± 20%%", attempts, d, base)
			}
			seen[d] = true
		}
		if len(seen) < 50 {
			t.Errorf("retryDelay(%d) gave %d distinct delays in 100", attempts, len(seen))
		}
	}
}
