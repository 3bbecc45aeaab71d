package sim

import (
	"crypto/rand"
	"crypto/rsa"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// TestDevicesSendOnlyTheirKeys: what a simulated device sends holds the
// keys Apple's schema has its system and enrolment send, and no other:
// User Enrollment never sends what it forbids (its UDID, serial number,
// unlock token, whether a passcode is set), and an iPhone never sends
// the keys only a Mac has (DeviceName, Model, ModelName in Authenticate).
func TestDevicesSendOnlyTheirKeys(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	device := func(userEnrollment bool, adjust func(*Device)) *Device {
		d := NewWithKey(nil, userEnrollment, key)
		if !userEnrollment {
			d.profile.accessRights = uint64(mdmproto.AccessAll)
		}
		if adjust != nil {
			adjust(d)
		}
		return d
	}
	userEnrolled, phone := device(true, nil), device(false, nil)
	mac := device(false, func(d *Device) { d.Model, d.ProductName = "Mac14,2", "Mac14,2" })
	status, _ := userEnrolled.securityInfo()["ManagementStatus"].(map[string]any)
	for _, c := range []struct {
		name string
		msg  map[string]any
		want []string
	}{
		// mdm/checkin/authenticate.yaml
		{"User Enrollment Authenticate", userEnrolled.authenticate(),
			[]string{"BuildVersion", "EnrollmentID", "MessageType", "OSVersion", "ProductName", "Topic"}},
		{"iPhone Authenticate", phone.authenticate(),
			[]string{"BuildVersion", "MessageType", "OSVersion", "ProductName", "SerialNumber", "Topic", "UDID"}},
		{"Mac Authenticate", mac.authenticate(),
			[]string{"BuildVersion", "DeviceName", "MessageType", "Model", "ModelName", "OSVersion", "ProductName", "SerialNumber", "Topic", "UDID"}},
		// mdm/checkin/tokenupdate.yaml
		{"User Enrollment TokenUpdate", userEnrolled.TokenUpdate(), []string{"EnrollmentID", "MessageType", "PushMagic", "Token", "Topic"}},
		{"iPhone TokenUpdate", phone.TokenUpdate(), []string{"MessageType", "PushMagic", "Token", "Topic", "UDID", "UnlockToken"}},
		{"Mac TokenUpdate", mac.TokenUpdate(), []string{"MessageType", "PushMagic", "Token", "Topic", "UDID"}},
		{"Mac user's TokenUpdate", mac.NewUser("erika", "Erika").TokenUpdate(), []string{"MessageType", "NotOnConsole", "PushMagic", "Token", "Topic"}},
		// mdm/commands/information.security.yaml
		{"User Enrollment SecurityInfo", userEnrolled.securityInfo(), []string{"HardwareEncryptionCaps", "ManagementStatus", "PasscodeCompliant"}},
		{"User Enrollment ManagementStatus", status, []string{"IsUserEnrollment"}},
		{"iPhone SecurityInfo", phone.securityInfo(),
			[]string{"HardwareEncryptionCaps", "ManagementStatus", "PasscodeCompliant", "PasscodeCompliantWithProfiles", "PasscodePresent"}},
		{"Mac SecurityInfo", mac.securityInfo(), []string{"FDE_Enabled", "FDE_HasInstitutionalRecoveryKey", "FDE_HasPersonalRecoveryKey",
			"FirewallSettings", "ManagementStatus", "SystemIntegrityProtectionEnabled"}},
		// mdm/commands/device.lostmode.location.yaml
		{"DeviceLocation", location(time.Now()),
			[]string{"Altitude", "Course", "HorizontalAccuracy", "Latitude", "Longitude", "Speed", "Timestamp", "VerticalAccuracy"}},
	} {
		if got := slices.Sorted(maps.Keys(c.msg)); !slices.Equal(got, c.want) {
			t.Errorf("%s sends %v, want %v", c.name, got, c.want)
		}
	}
	if ts, _ := location(time.Now())["Timestamp"].(string); ts == "" {
		t.Error("DeviceLocation's Timestamp is not an RFC 3339 string")
	} else if _, err := time.Parse(time.RFC3339, ts); err != nil {
		t.Errorf("DeviceLocation's Timestamp %q: %v", ts, err)
	}
}
