package sim

import (
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// What a device reports of itself, key by key as Apple's device-management
// schema has each system and enrolment send it: a key a system does not
// have, or that User Enrollment forbids, is never sent.

// userEnrolled reports whether the device enrolled by User Enrollment.
func (d *Device) userEnrolled() bool { return d.EnrollmentID != "" }

// location is a DeviceLocation answer's keys (device.lostmode.location.yaml
// requires them all since iOS 10.3).
func location(at time.Time) map[string]any {
	return map[string]any{"Latitude": 52.5200, "Longitude": 13.4050, "HorizontalAccuracy": 35.0, "VerticalAccuracy": 12.0,
		"Altitude": 41.0, "Speed": -1.0, "Course": -1.0, "Timestamp": at.UTC().Format(time.RFC3339)}
}

// authenticate is the Authenticate message (mdm/checkin/authenticate.yaml):
// a Mac names itself and its model; the product, system and serial number
// need the device information right, which User Enrollment, ignoring
// rights, sends without, and which keeps back the serial number.
func (d *Device) authenticate() map[string]any {
	auth := map[string]any{"MessageType": "Authenticate", "Topic": d.topic}
	d.identify(auth)
	if d.mac() {
		auth["DeviceName"], auth["Model"], auth["ModelName"] = "Simulated Mac", d.Model, "Mac"
	}
	if d.userEnrolled() || d.profile.accessRights&uint64(mdmproto.AccessDeviceInformation) != 0 {
		auth["ProductName"], auth["OSVersion"], auth["BuildVersion"] = d.ProductName, d.OSVersion, "22B83"
		if !d.userEnrolled() {
			auth["SerialNumber"] = d.Serial
		}
	}
	return auth
}

// tokenUpdate is the device channel's TokenUpdate (tokenupdate.yaml): an
// iPhone or iPad sends its unlock token under the lock right, never under
// User Enrollment; a Mac has none.
func (d *Device) tokenUpdate() map[string]any {
	tu := map[string]any{"MessageType": "TokenUpdate", "Topic": d.topic, "Token": d.PushToken, "PushMagic": d.PushMagic}
	if !d.mac() && !d.userEnrolled() && d.profile.accessRights&uint64(mdmproto.AccessDeviceLock) != 0 {
		tu["UnlockToken"] = []byte("simulated-unlock-token")
	}
	d.identify(tu)
	return tu
}
