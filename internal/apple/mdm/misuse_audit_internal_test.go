package mdm

import (
	"fmt"
	"testing"
	"time"
)

// TestMisuseAuditsStayBounded: past maxMisuseTracked certificates, those
// whose interval ended are forgotten, and one still within it keeps its
// count.
func TestMisuseAuditsStayBounded(t *testing.T) {
	var m misuseAudits
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for i := range maxMisuseTracked - 1 {
		if audit, _ := m.admit(fmt.Sprint("old-", i), start); !audit {
			t.Fatalf("a certificate's first refusal was not audited")
		}
	}
	later := start.Add(misuseAuditInterval - time.Second)
	m.admit("recent", later)
	if audit, _ := m.admit("recent", later); audit {
		t.Fatal("a second refusal within the interval was audited")
	}
	m.admit("newcomer", start.Add(misuseAuditInterval+time.Second))
	if len(m.seen) != 2 {
		t.Errorf("%d certificates remembered, want the recent one and the newcomer", len(m.seen))
	}
	audit, unaudited := m.admit("recent", later.Add(misuseAuditInterval))
	if !audit || unaudited != 1 {
		t.Errorf("the recent certificate after its interval: audited %v with %d unaudited, want true with 1", audit, unaudited)
	}
}
