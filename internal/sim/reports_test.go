package sim

import (
	"crypto/rand"
	"crypto/rsa"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"howett.net/plist"

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

// TestServiceSubscriptionsAsADeviceAnswers: asked ServiceSubscriptions, an
// iPhone from iOS 12 answers one dictionary per line with the subkeys
// information.device.yaml gives it (EID from iOS 14,
// SubscriberCarrierNetwork from iOS 16), a device without a modem an
// empty list, and a Mac, an iPhone before iOS 12 or one whose enrolment
// lacks the network information right nothing; a User Enrollment never
// answers it. The answer decodes as Steward reads it.
func TestServiceSubscriptionsAsADeviceAnswers(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	device := func(product, version string, rights mdmproto.AccessRights, userEnrollment bool) *Device {
		d := NewWithKey(nil, userEnrollment, key)
		d.ProductName, d.OSVersion, d.profile.accessRights = product, version, uint64(rights)
		if strings.HasPrefix(product, "Mac") {
			d.Model = product
		}
		return d
	}
	ask := map[string]any{"RequestType": "DeviceInformation", "Queries": []any{"ServiceSubscriptions"}}
	lines := func(d *Device) ([]map[string]any, bool) {
		v, ok := d.deviceInformation(ask)["ServiceSubscriptions"]
		subs, _ := v.([]map[string]any)
		return subs, ok
	}
	common := []string{"CarrierSettingsVersion", "CurrentCarrierNetwork", "CurrentMCC", "CurrentMNC", "ICCID", "IMEI", "IsDataPreferred",
		"IsRoaming", "IsVoicePreferred", "Label", "LabelID", "PhoneNumber", "Slot"}
	for _, c := range []struct {
		name    string
		d       *Device
		keys    [][]string // each line's subkeys; nil: not answered
		answers bool
	}{
		{"an iPhone on iOS 18", device("iPhone16,2", "18.1", mdmproto.AccessAll, false),
			[][]string{append(slices.Clone(common), "SubscriberCarrierNetwork"), append(slices.Clone(common), "EID", "SubscriberCarrierNetwork")}, true},
		{"an iPhone on iOS 15", device("iPhone14,5", "15.8", mdmproto.AccessAll, false), [][]string{common, append(slices.Clone(common), "EID")}, true},
		{"an iPhone on iOS 13", device("iPhone12,1", "13.7", mdmproto.AccessAll, false), [][]string{common, common}, true},
		{"a cellular iPad on iPadOS 17", device("iPad14,4", "17.5", mdmproto.AccessAll, false), [][]string{append(slices.Clone(common), "SubscriberCarrierNetwork")}, true},
		{"an iPod touch", device("iPod9,1", "15.8", mdmproto.AccessAll, false), [][]string{}, true},
		{"an iPhone on iOS 11", device("iPhone10,4", "11.4", mdmproto.AccessAll, false), nil, false},
		{"a Mac", device("Mac14,2", "15.1", mdmproto.AccessAll, false), nil, false},
		{"an iPhone without the network right", device("iPhone16,2", "18.1", mdmproto.AccessDeviceInformation, false), nil, false},
		{"a User Enrollment", device("iPhone16,2", "18.1", 0, true), nil, false},
	} {
		subs, answered := lines(c.d)
		if answered != c.answers || len(subs) != len(c.keys) {
			t.Errorf("%s: answered %v with %d lines, want %v with %d", c.name, answered, len(subs), c.answers, len(c.keys))
			continue
		}
		for i, s := range subs {
			want := slices.Sorted(slices.Values(c.keys[i]))
			if got := slices.Sorted(maps.Keys(s)); !slices.Equal(got, want) {
				t.Errorf("%s, line %d: %v, want %v", c.name, i+1, got, want)
			}
		}
		if !answered {
			continue
		}
		body, err := plist.Marshal(map[string]any{"Status": "Acknowledged", "UDID": "00008110-000A3D2E1E38801E",
			"CommandUUID": "3E1C9A42-6F2B-4E8D-A1C7-5D9B0F3E2A10", "RequestType": "DeviceInformation",
			"QueryResponses": map[string]any{"ServiceSubscriptions": subs}}, plist.XMLFormat)
		if err != nil {
			t.Fatal(err)
		}
		r, err := mdmproto.DecodeResult(body)
		if err == nil {
			var info mdmproto.DeviceInformationResult
			if info, err = mdmproto.DecodeDeviceInformation(r); err == nil && len(info.ServiceSubscriptions) != len(subs) {
				t.Errorf("%s: decoded %d lines of %d", c.name, len(info.ServiceSubscriptions), len(subs))
			}
		}
		if err != nil {
			t.Errorf("%s: the answer does not decode: %v", c.name, err)
		}
	}
}
