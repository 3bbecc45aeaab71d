package throttle

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a set of token buckets keyed by string (client IP, token ID...).
// Memory is bounded: at most maxKeys buckets are kept and the least recently
// used one is dropped when a new key arrives. A dropped key starts again with
// a full bucket, which is acceptable because an attacker rotating through
// more than maxKeys keys is better handled by a coarser limit upstream.
// Safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex
	rate    rate.Limit
	burst   int
	maxKeys int
	lru     *list.List // front = most recently used; values are *entry
	byKey   map[string]*list.Element
}

type entry struct {
	key string
	lim *rate.Limiter
}

// NewLimiter returns a limiter allowing perSecond events per second per key
// with the given burst, tracking at most maxKeys keys (minimum 1).
func NewLimiter(perSecond float64, burst int, maxKeys int) *Limiter {
	if maxKeys < 1 {
		maxKeys = 1
	}
	return &Limiter{
		rate:    rate.Limit(perSecond),
		burst:   burst,
		maxKeys: maxKeys,
		lru:     list.New(),
		byKey:   make(map[string]*list.Element),
	}
}

// Allow reports whether one event for key may happen now, consuming a token
// if so.
func (l *Limiter) Allow(key string) bool { return l.AllowAt(key, time.Now()) }

// AllowAt is Allow at time now, for callers with a clock of their own.
func (l *Limiter) AllowAt(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.byKey[key]; ok {
		l.lru.MoveToFront(el)
		return el.Value.(*entry).lim.AllowN(now, 1)
	}
	for l.lru.Len() >= l.maxKeys {
		oldest := l.lru.Back()
		l.lru.Remove(oldest)
		delete(l.byKey, oldest.Value.(*entry).key)
	}
	e := &entry{key: key, lim: rate.NewLimiter(l.rate, l.burst)}
	l.byKey[key] = l.lru.PushFront(e)
	return e.lim.AllowN(now, 1)
}

// Len returns the number of keys currently tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
