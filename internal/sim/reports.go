package sim

import (
	"strings"
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

// serviceSubscriptions is the ServiceSubscriptions answer (iOS 12 and
// later; information.device.yaml, ServiceSubscriptionProperty): an iPhone
// has a physical SIM, its lines' preference for data and voice, and an
// eSIM with a second line; a cellular iPad has one data line, and a
// device without a modem (an iPod touch) none. EID came in iOS 14,
// SubscriberCarrierNetwork in iOS 16.
func (d *Device) serviceSubscriptions() []map[string]any {
	sim := map[string]any{"Slot": "CTSubscriptionSlotOne", "Label": "Primary", "LabelID": "5B0E4D1A-7C2F-4E39-9A61-3D8B2F0C7E15",
		"IMEI": "35 693803 564380 9", "ICCID": "8949 0200 0012 3456 7890", "PhoneNumber": "+49 1575 5550100",
		"CurrentCarrierNetwork": "Telekom.de", "CurrentMCC": "262", "CurrentMNC": "01", "CarrierSettingsVersion": "59.0",
		"IsDataPreferred": true, "IsVoicePreferred": true, "IsRoaming": false}
	esim := map[string]any{"Slot": "CTSubscriptionSlotTwo", "Label": "Secondary", "LabelID": "C4A1F7E2-0B3D-4A86-8E5C-91D2B7F0A634",
		"IMEI": "35 693803 564381 7", "EID": "89049032007008882600012345678901", "ICCID": "8949 2200 0098 7654 3210",
		"PhoneNumber": "+49 1520 5550199", "CurrentCarrierNetwork": "Vodafone.de", "CurrentMCC": "262", "CurrentMNC": "02",
		"CarrierSettingsVersion": "59.0", "IsDataPreferred": false, "IsVoicePreferred": false, "IsRoaming": false}
	var subs []map[string]any
	switch {
	case strings.HasPrefix(d.ProductName, "iPhone"):
		subs = []map[string]any{sim, esim}
	case strings.HasPrefix(d.ProductName, "iPad"):
		sim["IsVoicePreferred"] = false
		subs = []map[string]any{sim}
	default:
		return []map[string]any{}
	}
	for _, s := range subs {
		if versionBelow(d.OSVersion, "14.0") {
			delete(s, "EID")
		}
		if !versionBelow(d.OSVersion, "16.0") {
			s["SubscriberCarrierNetwork"] = s["CurrentCarrierNetwork"]
		}
	}
	return subs
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
