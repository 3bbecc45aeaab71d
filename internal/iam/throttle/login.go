// Package throttle slows down password guessing: a per-account backoff and
// lockout policy (LoginPolicy, state kept by the caller in the database) and
// an in-memory keyed token-bucket limiter (Limiter) for per-IP or per-key
// request rates.
package throttle

import "time"

// LoginPolicy describes per-account login throttling.
//
//   - The first FreeAttempts consecutive failures cost nothing.
//   - After that each attempt must wait BaseDelay*2^(failures-FreeAttempts)
//     since the last failure, capped at MaxDelay.
//   - When the count reaches LockAfter the account is locked for LockFor.
//
// The failure count and timestamps live with the account; the caller resets
// them on successful login.
type LoginPolicy struct {
	FreeAttempts int
	BaseDelay    time.Duration
	MaxDelay     time.Duration
	LockAfter    int
	LockFor      time.Duration
}

// DefaultLoginPolicy: 3 free attempts, 1 s doubling to 60 s, 15-minute lock
// after 10 consecutive failures.
func DefaultLoginPolicy() LoginPolicy {
	return LoginPolicy{FreeAttempts: 3, BaseDelay: time.Second, MaxDelay: time.Minute, LockAfter: 10, LockFor: 15 * time.Minute}
}

// Check reports whether a login attempt is allowed now and, if not, how long
// the client should wait (suitable for a Retry-After header, always > 0 when
// allowed is false).
func (p LoginPolicy) Check(failures int, lastFailure, lockedUntil, now time.Time) (allowed bool, retryAfter time.Duration) {
	if now.Before(lockedUntil) {
		return false, lockedUntil.Sub(now)
	}
	if failures <= p.FreeAttempts {
		return true, 0
	}
	readyAt := lastFailure.Add(p.delay(failures))
	if now.Before(readyAt) {
		return false, readyAt.Sub(now)
	}
	return true, 0
}

// delay is BaseDelay*2^(failures-FreeAttempts) capped at MaxDelay, computed
// without overflow for any failure count.
func (p LoginPolicy) delay(failures int) time.Duration {
	d := p.BaseDelay
	if d <= 0 {
		return 0
	}
	for i := p.FreeAttempts; i < failures; i++ {
		if p.MaxDelay > 0 && d >= p.MaxDelay {
			return p.MaxDelay
		}
		if d > time.Duration(1<<62) {
			break
		}
		d *= 2
	}
	if p.MaxDelay > 0 && d > p.MaxDelay {
		return p.MaxDelay
	}
	return d
}

// OnFailure records a failed attempt: it returns the new failure count and,
// when that count has reached LockAfter, the time the account is locked
// until (zero time otherwise). Counting continues past LockAfter, so every
// further failure while at or above it re-locks for LockFor.
func (p LoginPolicy) OnFailure(failures int, now time.Time) (newFailures int, lockUntil time.Time) {
	newFailures = failures + 1
	if newFailures < failures { // overflow guard; practically unreachable
		newFailures = failures
	}
	if p.LockAfter > 0 && newFailures >= p.LockAfter {
		lockUntil = now.Add(p.LockFor)
	}
	return newFailures, lockUntil
}
