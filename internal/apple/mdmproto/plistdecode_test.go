package mdmproto

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestHostileShapesAreRefused: bodies within the byte limits whose
// containers would cost the parser hundreds of MiB (a <dict/> is 7 bytes
// and cost it 1.7 KiB) are refused as bad input before it sees them.
func TestHostileShapesAreRefused(t *testing.T) {
	dicts := func(n int) string { return "<array>" + strings.Repeat("<dict/>", n) + "</array>" }
	for _, c := range []struct {
		name   string
		body   []byte
		decode func([]byte) error
		limit  int
	}{
		{"a result listing 249,980 empty profiles", result("ProfileList", kraw("ProfileList", dicts(249_980))), decodeResult, MaxResultBytes},
		{"a result with 30,000 dictionaries under an unknown key", result("ProfileList", kraw("Padding", dicts(30_000))), decodeResult, MaxResultBytes},
		{"a result with 100,000 arrays", result("ProfileList", kraw("Padding", "<array>"+strings.Repeat("<array/>", 100_000)+"</array>")),
			decodeResult, MaxResultBytes},
		{"a check-out with 149,500 dictionaries under an unknown key",
			doc(kv("MessageType", "CheckOut"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID), kraw("Padding", dicts(149_500))),
			decodeCheckin, MaxCheckinBytes},
		{"a check-out with 500 keys", doc(kv("MessageType", "CheckOut"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID),
			strings.Repeat(kb("Padding", true), 500)), decodeCheckin, MaxCheckinBytes},
	} {
		if len(c.body) > c.limit {
			t.Fatalf("%s: %d bytes, past the limit: the test would not test the weight", c.name, len(c.body))
		}
		if err := c.decode(c.body); !errors.Is(err, ErrTooLarge) || !IsBadInput(err) {
			t.Errorf("%s: %v, want ErrTooLarge", c.name, err)
		}
	}
}

func decodeResult(body []byte) error {
	_, err := DecodeResult(body)
	return err
}

func decodeCheckin(body []byte) error {
	_, err := DecodeCheckin(body)
	return err
}

// TestLargeLegitimateResultsDecode: the weight budgets leave room for the
// largest answers devices send: a Mac's thousands of apps with every key
// Apple documents, profiles with their payloads and signers, certificates.
func TestLargeLegitimateResultsDecode(t *testing.T) {
	apps, err := DecodeInstalledApplicationList(mustResult(t, appListResult(4000)))
	if err != nil || len(apps) != 4000 || apps[3999].Identifier != "com.example.vendor.app03999" {
		t.Errorf("4,000 apps: %d decoded, %v", len(apps), err)
	}
	profiles, err := DecodeProfileList(mustResult(t, profileListResult(200, 20)))
	if err != nil || len(profiles) != 200 || len(profiles[199].PayloadContent) != 20 {
		t.Errorf("200 profiles of 20 payloads: %d decoded, %v", len(profiles), err)
	}
	var certs strings.Builder
	for i := range 2000 {
		certs.WriteString("<dict>" + kv("CommonName", fmt.Sprintf("Certificate %d", i)) + kb("IsIdentity", i%5 == 0) +
			kd("Data", strings.Repeat("QUJD", 340)) + "</dict>")
	}
	list, err := DecodeCertificateList(mustResult(t, result("CertificateList", kraw("CertificateList", "<array>"+certs.String()+"</array>"))))
	if err != nil || len(list) != 2000 {
		t.Errorf("2,000 certificates: %d decoded, %v", len(list), err)
	}
}

// appListResult is an InstalledApplicationList of n apps, each with the
// 16 keys Apple documents for a Mac's.
func appListResult(n int) []byte {
	var b strings.Builder
	for i := range n {
		b.WriteString("<dict>" + kv("Identifier", fmt.Sprintf("com.example.vendor.app%05d", i)) + kv("Name", fmt.Sprintf("Example Application %d", i)) +
			kv("ShortVersion", "12.4.1") + kv("Version", "12041.3") + ki("BundleSize", "148211968") + ki("DynamicSize", "2048") +
			kb("IsValidated", true) + kb("Installing", false) + kb("BetaApp", false) + kb("IsAppClip", false) +
			kb("AppStoreVendable", true) + kb("DeviceBasedVPP", false) + kb("HasUpdateAvailable", false) +
			ki("ExternalVersionIdentifier", "850912345") + kb("AdHocCodeSigned", false) + kv("DistributorIdentifier", "com.apple.AppStore") +
			"</dict>")
	}
	return result("InstalledApplicationList", kraw("InstalledApplicationList", "<array>"+b.String()+"</array>"))
}

// profileListResult is a ProfileList of n profiles, each signed by a chain
// of two and holding payloads payloads.
func profileListResult(n, payloads int) []byte {
	var b strings.Builder
	for i := range n {
		b.WriteString("<dict>" + kv("PayloadIdentifier", fmt.Sprintf("com.example.profile%d", i)) +
			kv("PayloadUUID", "0C3A6D2E-1F4B-4A5C-9D8E-7F6A5B4C3D2E") + kv("PayloadDisplayName", "Example profile") +
			kv("PayloadDescription", "Settings for the example organisation") + kv("PayloadOrganization", "Example") +
			ki("PayloadVersion", "1") + kb("PayloadRemovalDisallowed", false) + kb("HasRemovalPasscode", false) +
			kb("IsEncrypted", false) + kb("IsManaged", true) +
			kraw("SignerCertificates", "<array><data>"+strings.Repeat("QUJD", 300)+"</data><data>"+strings.Repeat("QUJD", 300)+"</data></array>") +
			"<key>PayloadContent</key><array>")
		for j := range payloads {
			b.WriteString("<dict>" + kv("PayloadType", "com.apple.wifi.managed") + kv("PayloadIdentifier", fmt.Sprintf("com.example.profile%d.p%d", i, j)) +
				kv("PayloadUUID", "0C3A6D2E-1F4B-4A5C-9D8E-7F6A5B4C3D2E") + ki("PayloadVersion", "1") + kv("PayloadDisplayName", "Wi-Fi") + "</dict>")
		}
		b.WriteString("</array></dict>")
	}
	return result("ProfileList", kraw("ProfileList", "<array>"+b.String()+"</array>"))
}

// TestTextCannotBeSplitByElements: the parser joins a <string>'s or a
// <key>'s text across the elements inside it, so a text split by them
// would pass the bound piece by piece; no element is allowed inside a
// scalar.
func TestTextCannotBeSplitByElements(t *testing.T) {
	split := strings.Repeat(strings.Repeat("a", 15<<10)+"<x/>", 40)
	for _, c := range []struct {
		name   string
		body   []byte
		decode func([]byte) error
	}{
		{"a device name split by elements", doc(kv("MessageType", "Authenticate"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID),
			kv("DeviceName", split)), decodeCheckin},
		{"a key split by elements", doc(kv("MessageType", "Authenticate"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID),
			kv(split, "x")), decodeCheckin},
		{"a phone number split by elements", result("DeviceInformation", kraw("QueryResponses", "<dict>"+kv("PhoneNumber", split)+"</dict>")), decodeResult},
		{"an element in an integer", result("DeviceInformation", kraw("QueryResponses", "<dict>"+ki("CellularTechnology", "1<x/>2")+"</dict>")), decodeResult},
		{"an element in data", doc(kv("MessageType", "TokenUpdate"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID),
			kd("Token", fixtureTokenB64+"<x/>"+fixtureTokenB64), kv("PushMagic", "x")), decodeCheckin},
		{"an element in a boolean", doc(kv("MessageType", "GetBootstrapToken"), kv("UDID", fixtureUDID),
			kraw("AwaitingConfiguration", "<true><x/></true>")), decodeCheckin},
	} {
		if err := c.decode(c.body); !errors.Is(err, ErrMalformed) || !IsBadInput(err) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
	}
}

// TestNumberTextIsBounded: an <integer>, <real> or <date> needs tens of
// bytes; a longer one is refused before it is parsed.
func TestNumberTextIsBounded(t *testing.T) {
	long := strings.Repeat("1", maxPlistNumberText+1)
	for _, entry := range []string{ki("AvailableDeviceCapacity", long), kr("BatteryLevel", "0."+long),
		kraw("Timestamp", "<date>"+long+"</date>")} {
		body := result("DeviceInformation", kraw("QueryResponses", "<dict>"+entry+"</dict>"))
		if err := decodeResult(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%.40s…: %v, want ErrMalformed", entry, err)
		}
	}
	fits := result("DeviceInformation", kraw("QueryResponses", "<dict>"+ki("AvailableDeviceCapacity", "-9223372036854775808")+
		kr("BatteryLevel", "1.7976931348623157e+308")+kraw("Timestamp", "<date>2026-11-23T10:15:30Z</date>")+"</dict>"))
	if err := decodeResult(fits); err != nil {
		t.Errorf("numbers of usual lengths: %v", err)
	}
}
