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
		if audit, _, _ := m.admit(fmt.Sprint("old-", i), start); !audit {
			t.Fatalf("a certificate's first refusal was not audited")
		}
	}
	later := start.Add(misuseAuditInterval - time.Second)
	m.admit("recent", later)
	if audit, _, _ := m.admit("recent", later); audit {
		t.Fatal("a second refusal within the interval was audited")
	}
	for range 2 {
		if audit, _, _ := m.admit("crowded", later); !audit {
			t.Error("a certificate refused while every slot is within its interval was not audited")
		}
	}
	if len(m.seen) != maxMisuseTracked {
		t.Errorf("%d certificates remembered, want the bound %d", len(m.seen), maxMisuseTracked)
	}
	m.admit("newcomer", start.Add(misuseAuditInterval+time.Second))
	if len(m.seen) != 2 {
		t.Errorf("%d certificates remembered, want the recent one and the newcomer", len(m.seen))
	}
	audit, unaudited, _ := m.admit("recent", later.Add(misuseAuditInterval))
	if !audit || unaudited != 1 {
		t.Errorf("the recent certificate after its interval: audited %v with %d unaudited, want true with 1", audit, unaudited)
	}
}

// TestMisuseAuditUndone: an admit whose entry could not be written is given
// back: the next refusal is audited, and counts the one that was not.
func TestMisuseAuditUndone(t *testing.T) {
	var m misuseAudits
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	audit, _, r := m.admit("cert", now)
	if !audit {
		t.Fatal("the first refusal was not audited")
	}
	if audit, _, _ := m.admit("cert", now); audit {
		t.Fatal("a refusal while the first entry is being written was audited")
	}
	r.undo()
	audit, unaudited, _ := m.admit("cert", now.Add(time.Second))
	if !audit || unaudited != 2 {
		t.Errorf("the refusal after an undone entry: audited %v with %d unaudited, want true with 2", audit, unaudited)
	}
}
