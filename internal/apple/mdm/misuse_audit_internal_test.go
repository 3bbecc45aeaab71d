package mdm

import (
	"fmt"
	"testing"
	"time"
)

// TestMisuseAuditsStayBounded: past maxMisuseTracked certificates, those
// whose interval ended are forgotten, and one still within it keeps its
// count; while every one remembered is within its interval, a newcomer is
// audited each time, not remembered.
func TestMisuseAuditsStayBounded(t *testing.T) {
	var m misuseAudits
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for i := range maxMisuseTracked - 1 {
		if audit, _, _ := m.admit(fmt.Sprint("old-", i), start, misuseRefusal{}); !audit {
			t.Fatalf("a certificate's first refusal was not audited")
		}
	}
	later := start.Add(misuseAuditInterval - time.Second)
	m.admit("recent", later, misuseRefusal{})
	if audit, _, _ := m.admit("recent", later, misuseRefusal{}); audit {
		t.Fatal("a second refusal within the interval was audited")
	}
	for range 2 {
		if audit, _, _ := m.admit("crowded", later, misuseRefusal{}); !audit {
			t.Error("a certificate refused while every slot is within its interval was not audited")
		}
	}
	if len(m.seen) != maxMisuseTracked {
		t.Errorf("%d certificates remembered, want the bound %d", len(m.seen), maxMisuseTracked)
	}
	m.admit("newcomer", start.Add(misuseAuditInterval+time.Second), misuseRefusal{})
	if len(m.seen) != 2 {
		t.Errorf("%d certificates remembered, want the recent one and the newcomer", len(m.seen))
	}
	audit, unaudited, _ := m.admit("recent", later.Add(misuseAuditInterval), misuseRefusal{})
	if !audit || unaudited != 1 {
		t.Errorf("the recent certificate after its interval: audited %v with %d unaudited, want true with 1", audit, unaudited)
	}
}

// TestMisuseAuditUndone: an admit whose entry could not be written is given
// back: the next refusal is audited, and counts the one that was not.
func TestMisuseAuditUndone(t *testing.T) {
	var m misuseAudits
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	audit, _, r := m.admit("cert", now, misuseRefusal{})
	if !audit {
		t.Fatal("the first refusal was not audited")
	}
	if audit, _, _ := m.admit("cert", now, misuseRefusal{}); audit {
		t.Fatal("a refusal while the first entry is being written was audited")
	}
	r.undo()
	audit, unaudited, _ := m.admit("cert", now.Add(time.Second), misuseRefusal{})
	if !audit || unaudited != 2 {
		t.Errorf("the refusal after an undone entry: audited %v with %d unaudited, want true with 2", audit, unaudited)
	}
}

// TestMisuseCountsAreAuditedWhenRefusalsStop: refusals counted within an
// interval are handed to the sweep once it ends, even when no refusal
// follows, and are not forgotten before: a slot freed for a newcomer never
// drops a count the log has not recorded.
func TestMisuseCountsAreAuditedWhenRefusalsStop(t *testing.T) {
	var m misuseAudits
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	stolen := misuseRefusal{tenantID: "t1", ip: "192.0.2.7", why: "named another device"}
	m.admit("stolen", t0, stolen)
	for range 3 {
		m.admit("stolen", t0.Add(time.Minute), stolen)
	}
	if closed := m.closedIntervals(t0.Add(misuseAuditInterval - time.Second)); len(closed) != 0 {
		t.Fatalf("closed within the interval: %+v", closed)
	}
	for i := range maxMisuseTracked - 1 {
		m.admit(fmt.Sprint("other-", i), t0.Add(4*time.Minute), misuseRefusal{})
	}
	m.admit("newcomer", t0.Add(6*time.Minute), misuseRefusal{}) // frees the slots whose interval ended
	closed := m.closedIntervals(t0.Add(6 * time.Minute))
	if len(closed) != 1 || closed[0].fp != "stolen" || closed[0].count != 3 || closed[0].misuseRefusal != stolen {
		t.Fatalf("closed intervals: %+v, want the stolen certificate's 3", closed)
	}
	if again := m.closedIntervals(t0.Add(7 * time.Minute)); len(again) != 0 {
		t.Errorf("handed over twice: %+v", again)
	}
	m.giveBack(closed[0], t0.Add(7*time.Minute)) // its entry could not be written
	if again := m.closedIntervals(t0.Add(7 * time.Minute)); len(again) != 1 || again[0].count != 3 {
		t.Errorf("a count given back: %+v", again)
	}
}

// TestUndoneMisuseAuditIsSwept: a refusal whose entry could not be written
// is counted for the sweep, with what its entry names, though no refusal
// follows.
func TestUndoneMisuseAuditIsSwept(t *testing.T) {
	var m misuseAudits
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	refusal := misuseRefusal{tenantID: "t1", ip: "192.0.2.7", why: "named another device"}
	audit, _, r := m.admit("cert", now, refusal)
	if !audit {
		t.Fatal("a first refusal was not audited")
	}
	r.undo()
	got := m.closedIntervals(now.Add(time.Second))
	if len(got) != 1 || got[0].count != 1 || got[0].misuseRefusal != refusal {
		t.Fatalf("closed intervals after an undone write: %+v, want the one refusal with what it names", got)
	}
}
