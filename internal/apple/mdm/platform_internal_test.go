package mdm

import "testing"

// TestOnlyNamedFamiliesAreUnmanaged: only a product name of a family
// Steward does not manage sends an enrolled device away; a part number, an
// empty name or a managed product does not.
func TestOnlyNamedFamiliesAreUnmanaged(t *testing.T) {
	for product, want := range map[string]bool{"RealityDevice14,1": true, "AppleTV14,1": true, "Watch7,1": true,
		"AudioAccessory6,1": true, "iPhone16,2": false, "Mac14,2": false, "MQ8T3LL/A": false, "": false} {
		if got := unmanagedProduct(product); got != want {
			t.Errorf("unmanagedProduct(%q) = %v, want %v", product, got, want)
		}
	}
}
