package mdm

import (
	"slices"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// TestUserEnrollmentHardwareIdentifiersNeverTaken: whatever a User
// Enrollment's Authenticate names (Apple's devices name none of these),
// its UDID, serial number, IMEI and MEID reach no observation, so no
// widened policy can keep them; a device enrolment's do.
func TestUserEnrollmentHardwareIdentifiersNeverTaken(t *testing.T) {
	hardware := []string{"device.udid", "device.serial_number", "telephony.imei", "telephony.meid"}
	m := mdmproto.Authenticate{Enrollment: mdmproto.Enrollment{UDID: "0000FE00-0A1B2C3D4E5F6071"}, SerialNumber: "F2LXK0ABCDEF",
		IMEI: "35 209900 176148 1", MEID: "35209900176148", DeviceName: "Erika's iPhone", OSVersion: "18.1"}
	fields := func(m mdmproto.Authenticate) []string {
		var out []string
		for _, o := range authenticateObservations(&m) {
			out = append(out, o.Field)
		}
		return out
	}
	for _, f := range hardware {
		if got := fields(m); !slices.Contains(got, f) {
			t.Errorf("a device enrolment's %s was not taken: %v", f, got)
		}
	}
	m.EnrollmentID = "5F2B4A6C-0D1E-4F3A-9B8C-7D6E5F4A3B2C"
	got := fields(m)
	for _, f := range hardware {
		if slices.Contains(got, f) {
			t.Errorf("a User Enrollment's %s was taken: %v", f, got)
		}
	}
	if !slices.Contains(got, "os.version") {
		t.Errorf("a User Enrollment's OS version was not taken: %v", got)
	}
}
