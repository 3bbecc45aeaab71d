package mdm

import (
	"sync"
	"time"
)

// misuseAuditInterval is how often one certificate's misuse is audited
// while it goes on: the first refusal is recorded at once, the ones that
// follow within the interval are counted into the next entry, written by
// the next refusal after the interval or, if none comes, by the sweep at
// its end (closedIntervals). A device that keeps naming another device
// would otherwise add an audit entry per request, without bound.
const misuseAuditInterval = 5 * time.Minute

// maxMisuseTracked bounds the certificates remembered. When that many are
// within their interval, a further one is audited at every refusal rather
// than remembered: each needs a valid device certificate of its own.
const maxMisuseTracked = 10_000

// misuseAudits decides, per certificate and node, which refusals are
// audited; and per tenant, reason and enrolment, which refused SCEP
// requests are (scepRefusalKey).
type misuseAudits struct {
	mu   sync.Mutex
	seen map[string]*misuseSeen
	// noneQuietBefore is when the earliest interval of those remembered
	// ends, as the last full scan found: no scan before then frees a slot.
	noneQuietBefore time.Time
	// noneClosedBefore is when the earliest interval with refusals not
	// audited ends: the sweep does nothing before then.
	noneClosedBefore time.Time
}

type misuseSeen struct {
	audited    time.Time
	suppressed int
	last       misuseRefusal // of the latest refusal counted, for the closing entry
}

// misuseRefusal is what an audit entry about a refusal names: a device
// certificate's misuse, or, with a scepCode, a refused SCEP request
// (auditSCEPRefusal) for enrolmentID when it named one.
type misuseRefusal struct {
	tenantID, ip, why     string
	scepCode, enrolmentID string
}

// misuseClosed is a certificate whose interval ended with count refusals
// not audited.
type misuseClosed struct {
	fp    string
	count int
	misuseRefusal
}

// misuseReservation is an audit admit granted: undo gives it back when no
// entry could be written, so the next refusal is audited instead.
type misuseReservation struct {
	m       *misuseAudits
	fp      string
	prev    misuseSeen // zero for a certificate not remembered before
	refusal misuseRefusal
}

// admit reports whether the refusal of the certificate with fingerprint fp
// at now is audited and, if so, how many refusals since its last entry
// were not. A refusal not audited is counted until one is.
func (m *misuseAudits) admit(fp string, now time.Time, refusal misuseRefusal) (audit bool, unaudited int, r misuseReservation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]*misuseSeen{}
	}
	s, ok := m.seen[fp]
	if ok && now.Sub(s.audited) < misuseAuditInterval {
		s.suppressed, s.last = s.suppressed+1, refusal
		if end := s.audited.Add(misuseAuditInterval); m.noneClosedBefore.IsZero() || end.Before(m.noneClosedBefore) {
			m.noneClosedBefore = end
		}
		return false, 0, misuseReservation{}
	}
	r = misuseReservation{m: m, fp: fp, refusal: refusal}
	if ok {
		r.prev = *s
	} else {
		if len(m.seen) >= maxMisuseTracked && !m.forgetQuiet(now) {
			return true, 0, misuseReservation{} // not remembered: audited each time
		}
		s = &misuseSeen{}
		m.seen[fp] = s
	}
	unaudited, s.audited, s.suppressed = s.suppressed, now, 0
	return true, unaudited, r
}

// undo restores what admit changed, and counts the refusal it was for with
// those suppressed since: the next refusal is audited, with them all, or
// the sweep writes their entry if none follows.
func (r misuseReservation) undo() {
	if r.m == nil {
		return
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if s, ok := r.m.seen[r.fp]; ok {
		s.audited, s.suppressed, s.last = r.prev.audited, r.prev.suppressed+1+s.suppressed, r.refusal
		if end := s.audited.Add(misuseAuditInterval); r.m.noneClosedBefore.IsZero() || end.Before(r.m.noneClosedBefore) {
			r.m.noneClosedBefore = end
		}
	}
}

// forgetQuiet drops the certificates whose interval has ended, and reports
// whether that freed a slot. It scans at most once per earliest interval end.
func (m *misuseAudits) forgetQuiet(now time.Time) bool {
	if now.Before(m.noneQuietBefore) {
		return false
	}
	earliest := time.Time{}
	for fp, s := range m.seen {
		end := s.audited.Add(misuseAuditInterval)
		if !now.Before(end) && s.suppressed == 0 { // a count not audited yet waits for the sweep
			delete(m.seen, fp)
		} else if earliest.IsZero() || end.Before(earliest) {
			earliest = end
		}
	}
	m.noneQuietBefore = earliest
	return len(m.seen) < maxMisuseTracked
}

// closedIntervals takes the counts of the certificates whose interval ended
// at now with refusals not audited: their caller writes each an entry,
// which starts a new interval, or gives its count back (giveBack).
func (m *misuseAudits) closedIntervals(now time.Time) []misuseClosed {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.noneClosedBefore.IsZero() || now.Before(m.noneClosedBefore) {
		return nil
	}
	m.noneClosedBefore = time.Time{}
	var out []misuseClosed
	for fp, s := range m.seen {
		if s.suppressed == 0 {
			continue
		}
		if end := s.audited.Add(misuseAuditInterval); now.Before(end) {
			if m.noneClosedBefore.IsZero() || end.Before(m.noneClosedBefore) {
				m.noneClosedBefore = end
			}
			continue
		}
		out = append(out, misuseClosed{fp: fp, count: s.suppressed, misuseRefusal: s.last})
		s.audited, s.suppressed = now, 0
	}
	return out
}

// giveBack counts again refusals a closing entry could not record, for the
// next sweep or refusal.
func (m *misuseAudits) giveBack(c misuseClosed, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.seen[c.fp]; ok {
		s.suppressed += c.count
		s.audited = now.Add(-misuseAuditInterval) // closed: the next sweep tries again
		m.noneClosedBefore = now
	}
}
