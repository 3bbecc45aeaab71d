package device

import "testing"

func TestVersionKeyOrdersNumerically(t *testing.T) {
	ordered := []string{"9", "9.3.5", "17", "17.0.1", "17.4", "17.10", "18.0"}
	for i := 1; i < len(ordered); i++ {
		a, b := VersionKey(ordered[i-1]), VersionKey(ordered[i])
		if a == "" || b == "" || a >= b {
			t.Fatalf("%q (%q) should sort before %q (%q)", ordered[i-1], a, ordered[i], b)
		}
	}
	if VersionKey("17") != VersionKey("17.0.0") {
		t.Fatal("17 and 17.0.0 are the same version")
	}
	for _, bad := range []string{"", "17.x", "beta", "1.2.3.4.5", "-1", "123456"} {
		if k := VersionKey(bad); k != "" {
			t.Fatalf("VersionKey(%q) = %q, want empty", bad, k)
		}
	}
}
