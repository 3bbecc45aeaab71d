package mdm

import (
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// TestLocationCountsFromItsFix: a DeviceLocation answer's location is
// handed to the gate as determined at its fix, so its retention runs from
// then; one that does not say when keeps the time of its receipt.
func TestLocationCountsFromItsFix(t *testing.T) {
	fixed := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	obs := locationObservations(mdmproto.DeviceLocationResult{Latitude: 52.5, Longitude: 13.4, Timestamp: fixed})
	if len(obs) != 1 || !obs[0].ObservedAt.Equal(fixed) {
		t.Fatalf("observations %+v, want the location observed at its fix %v", obs, fixed)
	}
	if obs := locationObservations(mdmproto.DeviceLocationResult{Latitude: 52.5, Longitude: 13.4}); len(obs) != 1 || !obs[0].ObservedAt.IsZero() {
		t.Fatalf("observations %+v, want no fix time", obs)
	}
}
