package mdm

import (
	"sync"
	"time"
)

// misuseAuditInterval is how often one certificate's misuse is audited
// while it goes on: the first refusal is recorded at once, the ones that
// follow within the interval are counted into the next entry. A device
// that keeps naming another device would otherwise add an audit entry per
// request, without bound.
const misuseAuditInterval = 5 * time.Minute

// maxMisuseTracked bounds the certificates remembered; past it, those whose
// interval ended are forgotten (their count is then lost, not their first entry).
const maxMisuseTracked = 10_000

// misuseAudits decides, per certificate and node, which refusals are audited.
type misuseAudits struct {
	mu   sync.Mutex
	seen map[string]*misuseSeen
}

type misuseSeen struct {
	audited    time.Time
	suppressed int
}

// admit reports whether the refusal of the certificate with fingerprint fp
// at now is audited, and how many refusals since its last entry were not.
// A refusal not audited is counted until one is.
func (m *misuseAudits) admit(fp string, now time.Time) (audit bool, unaudited int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]*misuseSeen{}
	}
	s, ok := m.seen[fp]
	if ok && now.Sub(s.audited) < misuseAuditInterval {
		s.suppressed++
		return false, 0
	}
	if !ok {
		if len(m.seen) >= maxMisuseTracked {
			m.forgetQuiet(now)
		}
		s = &misuseSeen{}
		m.seen[fp] = s
	}
	unaudited, s.audited, s.suppressed = s.suppressed, now, 0
	return true, unaudited
}

// forgetQuiet drops the certificates whose interval has ended.
func (m *misuseAudits) forgetQuiet(now time.Time) {
	for fp, s := range m.seen {
		if now.Sub(s.audited) >= misuseAuditInterval {
			delete(m.seen, fp)
		}
	}
}
