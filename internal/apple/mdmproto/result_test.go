package mdmproto

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustResult(t *testing.T, body []byte) Result {
	t.Helper()
	r, err := DecodeResult(body)
	if err != nil {
		t.Fatalf("DecodeResult: %v", err)
	}
	return r
}

func TestDecodeResultEnvelope(t *testing.T) {
	r := mustResult(t, errorResult)
	if r.Status != StatusError || r.CommandUUID != fixtureCommandUUID || r.DeviceID() != fixtureUDID {
		t.Fatalf("envelope not decoded: %+v", r)
	}
	want := ErrorChainItem{ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "Unknown command", USEnglishDescription: "Unknown command"}
	if len(r.ErrorChain) != 1 || r.ErrorChain[0] != want {
		t.Errorf("ErrorChain = %+v, want [%+v]", r.ErrorChain, want)
	}
	if !bytes.Equal(r.Raw, errorResult) {
		t.Error("Raw is not the body as received")
	}

	idle := mustResult(t, idleResult)
	if idle.Status != StatusIdle || idle.CommandUUID != "" {
		t.Errorf("idle = %+v", idle)
	}
	for _, s := range []Status{StatusAcknowledged, StatusError, StatusCommandFormatError, StatusNotNow} {
		body := doc(kv("Status", string(s)), kv("EnrollmentID", fixtureEnrollmentID), kv("CommandUUID", fixtureCommandUUID))
		if r := mustResult(t, body); r.Status != s || !r.IsUserEnrollment() {
			t.Errorf("status %s: got %+v", s, r)
		}
	}
}

func TestDecodeResultRejects(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"garbage", []byte("<plist><dict><key>"), ErrMalformed},
		{"too large", append(idleResult, bytes.Repeat([]byte(" "), MaxResultBytes)...), ErrTooLarge},
		{"too many elements", doc(kv("Status", "Idle"), kv("UDID", fixtureUDID),
			kraw("Padding", "<array>"+strings.Repeat("<true/>", maxResultWeight)+"</array>")), ErrTooLarge},
		{"no status", doc(kv("UDID", fixtureUDID), kv("CommandUUID", fixtureCommandUUID)), ErrMissingKey},
		{"unknown status", doc(kv("Status", "Done"), kv("UDID", fixtureUDID), kv("CommandUUID", fixtureCommandUUID)), ErrUnknownStatus},
		{"no sender", doc(kv("Status", "Acknowledged"), kv("CommandUUID", fixtureCommandUUID)), ErrMissingKey},
		{"acknowledged without command uuid", doc(kv("Status", "Acknowledged"), kv("UDID", fixtureUDID)), ErrMissingKey},
		{"a user named by its full name alone", doc(kv("Status", "Idle"), kv("UDID", fixtureUDID), kv("UserLongName", "Erika Muster")), ErrMissingKey},
		{"error chain of wrong type", doc(kv("Status", "Error"), kv("UDID", fixtureUDID), kv("CommandUUID", fixtureCommandUUID),
			kv("ErrorChain", "oops")), ErrMalformed},
		{"a string too long", result("DeviceInformation", kraw("QueryResponses", "<dict>"+
			kv("PhoneNumber", strings.Repeat("5", maxPlistText+1))+"</dict>")), ErrMalformed},
		{"a string too long in pieces", result("DeviceInformation", kraw("QueryResponses", "<dict>"+
			kv("DeviceName", strings.Repeat("a", maxPlistText)+"<!-- -->b")+"</dict>")), ErrMalformed},
		{"a key too long", result("DeviceInformation", kraw("QueryResponses", "<dict>"+
			kv(strings.Repeat("K", maxPlistText+1), "x")+"</dict>")), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeResult(tt.body); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeResult error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeDeviceInformation(t *testing.T) {
	info, err := DecodeDeviceInformation(mustResult(t, deviceInformationRes))
	if err != nil {
		t.Fatal(err)
	}
	if info.DeviceName != "Reception iPad" || info.OSVersion != "17.4.1" || info.SerialNumber != "F9FXK2L3Q1" ||
		info.Model != "iPad13,18" || info.WiFiMAC != "f0:18:98:0a:bc:de" {
		t.Errorf("strings not decoded: %+v", info)
	}
	if info.DeviceCapacity == nil || *info.DeviceCapacity != 119.2 {
		t.Errorf("DeviceCapacity = %v, want 119.2", info.DeviceCapacity)
	}
	// Sent as <integer>: Number accepts it.
	if info.AvailableDeviceCapacity == nil || *info.AvailableDeviceCapacity != 87 {
		t.Errorf("AvailableDeviceCapacity = %v, want 87", info.AvailableDeviceCapacity)
	}
	if info.IsSupervised == nil || !*info.IsSupervised || info.IsActivationLockEnabled == nil || *info.IsActivationLockEnabled {
		t.Error("booleans not decoded")
	}
	if info.CellularTechnology == nil || *info.CellularTechnology != 3 {
		t.Error("CellularTechnology not decoded")
	}
	if info.IsRoaming != nil || info.PhoneNumber != "" {
		t.Error("unreported attributes must stay unset")
	}
}

// TestLongTextWithinBounds: a string at the bound, and data far beyond it
// (a certificate, a token), decode.
func TestLongTextWithinBounds(t *testing.T) {
	name := strings.Repeat("a", maxPlistText-1) + "&amp;"
	info, err := DecodeDeviceInformation(mustResult(t, result("DeviceInformation", kraw("QueryResponses", "<dict>"+
		kv("DeviceName", name)+kd("Padding", strings.Repeat("QUJD", maxPlistText))+"</dict>"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.DeviceName) != maxPlistText {
		t.Errorf("DeviceName of %d bytes, want %d", len(info.DeviceName), maxPlistText)
	}
}

// TestDecodeServiceSubscriptions: the ServiceSubscriptions answer decodes
// entry by entry, in the order the device lists them, with the subkeys
// Steward reads; it is an answer like any other, dropped unless asked.
func TestDecodeServiceSubscriptions(t *testing.T) {
	info, err := DecodeDeviceInformation(mustResult(t, serviceSubscriptionsRes))
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	want := []ServiceSubscription{
		{CurrentCarrierNetwork: "Telekom.de", ICCID: "8949 0200 0012 3456 7890", IMEI: "35 693803 564380 9", PhoneNumber: "+49 1575 5550100",
			IsDataPreferred: &no, IsVoicePreferred: &yes},
		{CurrentCarrierNetwork: "Vodafone.de", ICCID: "8949 2200 0098 7654 3210", IMEI: "35 693803 564381 7", PhoneNumber: "+49 1520 5550199",
			IsDataPreferred: &yes, IsVoicePreferred: &no},
	}
	if !reflect.DeepEqual(info.ServiceSubscriptions, want) {
		t.Errorf("ServiceSubscriptions = %+v, want %+v", info.ServiceSubscriptions, want)
	}
	// No SIM: an empty list, an answer that names no subscription.
	empty := result("DeviceInformation", kraw("QueryResponses", "<dict>"+kraw("ServiceSubscriptions", "<array/>")+"</dict>"))
	if info, err := DecodeDeviceInformation(mustResult(t, empty)); err != nil || info.ServiceSubscriptions == nil || len(info.ServiceSubscriptions) != 0 {
		t.Errorf("an empty list: %+v, %v", info.ServiceSubscriptions, err)
	}
	if dropped := info.Only([]string{"IMEI", "PhoneNumber"}); dropped != 1 || info.ServiceSubscriptions != nil {
		t.Errorf("not asked: dropped %d, kept %+v", dropped, info.ServiceSubscriptions)
	}
}

// TestMalformedServiceSubscriptionsIsBadInput: a ServiceSubscriptions that
// is not Apple's array of dictionaries, with strings and booleans where
// Apple documents them, or that lists more subscriptions than a device
// has, fails the whole answer as the device's fault, both from the
// envelope's pass and from the body alone.
func TestMalformedServiceSubscriptionsIsBadInput(t *testing.T) {
	sub := func(entries ...string) string { return "<dict>" + strings.Join(entries, "") + "</dict>" }
	many := strings.Repeat(sub(kv("PhoneNumber", "+49 1575 5550100")), MaxServiceSubscriptions+1)
	for name, value := range map[string]string{
		"a string":                     "<string>Telekom.de</string>",
		"a dictionary":                 sub(kv("PhoneNumber", "+49 1575 5550100")),
		"an array of strings":          "<array><string>+49 1575 5550100</string></array>",
		"a phone number as a number":   "<array>" + sub(ki("PhoneNumber", "4915755550100")) + "</array>",
		"an IMEI as an array":          "<array>" + sub(kraw("IMEI", "<array/>")) + "</array>",
		"a preference as a string":     "<array>" + sub(kv("IsDataPreferred", "yes")) + "</array>",
		"more subscriptions than SIMs": "<array>" + many + "</array>",
	} {
		body := result("DeviceInformation", kraw("QueryResponses", "<dict>"+kv("OSVersion", "17.4.1")+kraw("ServiceSubscriptions", value)+"</dict>"))
		r := mustResult(t, body)
		alone := r
		alone.payloads = nil
		for pass, r := range map[string]Result{"envelope": r, "alone": alone} {
			got, err := DecodeDeviceInformation(r)
			if !errors.Is(err, ErrMalformed) || !IsBadInput(err) || !reflect.DeepEqual(got, DeviceInformationResult{}) {
				t.Errorf("%s (%s): %d subscriptions, %v; want nothing and ErrMalformed", name, pass, len(got.ServiceSubscriptions), err)
			}
		}
	}
}

// TestDeviceInformationOnlyWhatWasAsked: answers to keys the command did
// not ask are dropped and counted, whatever their type; the asked ones stay.
func TestDeviceInformationOnlyWhatWasAsked(t *testing.T) {
	info, err := DecodeDeviceInformation(mustResult(t, deviceInformationRes))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture answers 12 keys; IsActivationLockEnabled is false, an answer all the same.
	if dropped := info.Only([]string{"OSVersion", "DeviceCapacity", "IsActivationLockEnabled", "PhoneNumber"}); dropped != 9 {
		t.Errorf("dropped %d answers, want the 9 not asked", dropped)
	}
	f := false
	capacity := Number(119.2)
	if want := (DeviceInformationResult{OSVersion: "17.4.1", DeviceCapacity: &capacity, IsActivationLockEnabled: &f}); !reflect.DeepEqual(info, want) {
		t.Errorf("kept %+v, want %+v", info, want)
	}
	if dropped := info.Only(nil); dropped != 3 || !reflect.DeepEqual(info, DeviceInformationResult{}) {
		t.Errorf("asked nothing: dropped %d, kept %+v", dropped, info)
	}
}

// TestDeviceInformationQueriesOfACommand: the queries read back from a
// built command are those it asks; another command has none to give.
func TestDeviceInformationQueriesOfACommand(t *testing.T) {
	built, err := Build("C-1", DeviceInformation{Queries: []string{"OSVersion", "SerialNumber"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DeviceInformationQueries(built.Plist()); err != nil || !reflect.DeepEqual(got, []string{"OSVersion", "SerialNumber"}) {
		t.Errorf("queries %v, %v", got, err)
	}
	other, err := Build("C-2", SecurityInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DeviceInformationQueries(other.Plist()); err == nil {
		t.Errorf("a SecurityInfo command gave queries %v", got)
	}
}

// TestRemovedProfileOfACommand: the identifier read back from a built
// RemoveProfile is the profile it removes; another command names none.
func TestRemovedProfileOfACommand(t *testing.T) {
	built, err := Build("C-1", RemoveProfile{Identifier: "com.example.wifi"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := RemovedProfile(built.Plist()); err != nil || got != "com.example.wifi" {
		t.Errorf("identifier %q, %v", got, err)
	}
	other, err := Build("C-2", RemoveApplication{Identifier: "com.example.app"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := RemovedProfile(other.Plist()); err == nil {
		t.Errorf("a RemoveApplication command gave identifier %q", got)
	}
}

// TestDecodeRefusesNonFiniteNumbers: plists can spell NaN and infinities;
// no measurement is one, and JSON cannot hold them, so such a result does
// not decode (its command fails) instead of failing later, in the gate.
func TestDecodeRefusesNonFiniteNumbers(t *testing.T) {
	for _, v := range []string{"nan", "+infinity", "-infinity", "inf"} {
		info := result("DeviceInformation", kraw("QueryResponses", "<dict>"+kr("BatteryLevel", v)+"</dict>"))
		if got, err := DecodeDeviceInformation(mustResult(t, info)); !errors.Is(err, ErrMalformed) {
			t.Errorf("BatteryLevel %s: %+v, %v, want ErrMalformed", v, got, err)
		}
		apps := result("InstalledApplicationList", kraw("InstalledApplicationList", "<array><dict>"+kr("BundleSize", v)+"</dict></array>"))
		if got, err := DecodeInstalledApplicationList(mustResult(t, apps)); !errors.Is(err, ErrMalformed) {
			t.Errorf("BundleSize %s: %+v, %v, want ErrMalformed", v, got, err)
		}
		for _, key := range []string{"Latitude", "Longitude", "HorizontalAccuracy", "Altitude", "Speed", "Course"} {
			entries := []string{kr(key, v)}
			for _, k := range []string{"Latitude", "Longitude"} {
				if k != key {
					entries = append(entries, kr(k, "1"))
				}
			}
			if got, err := DecodeDeviceLocation(mustResult(t, result("DeviceLocation", entries...))); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s %s: %+v, %v, want ErrMalformed", key, v, got, err)
			}
		}
	}
}

// A payload of the wrong shape under another command's key spoils only
// that key: the envelope and the payload asked for still decode, from the
// envelope's one pass over the body; a <date> there, which the plist
// decoder refuses before the payload's own decoder sees it, from the body.
func TestDecodeResultIsolatesMalformedPayloads(t *testing.T) {
	for _, wrong := range []string{kv("ProfileList", "not a list"), kraw("ProfileList", "<date>2026-11-23T10:15:30Z</date>")} {
		body := result("DeviceInformation", kraw("QueryResponses", "<dict>"+kv("OSVersion", "17.4.1")+"</dict>"), wrong)
		r := mustResult(t, body)
		if r.payloads == nil && !strings.Contains(wrong, "<date>") {
			t.Errorf("%s: the payloads were not kept from the envelope's pass", wrong)
		}
		if info, err := DecodeDeviceInformation(r); err != nil || info.OSVersion != "17.4.1" {
			t.Fatalf("%s: DeviceInformation = %+v, %v", wrong, info, err)
		}
		r.RequestType = ""
		if _, err := DecodeProfileList(r); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: a ProfileList that is no list decoded: %v", wrong, err)
		}
	}
}

func TestDecodeSecurityInfo(t *testing.T) {
	s, err := DecodeSecurityInfo(mustResult(t, securityInfoRes))
	if err != nil {
		t.Fatal(err)
	}
	if s.HardwareEncryptionCaps == nil || *s.HardwareEncryptionCaps != 3 || s.PasscodePresent == nil || !*s.PasscodePresent ||
		s.PasscodeCompliantWithProfiles == nil || *s.PasscodeCompliantWithProfiles {
		t.Errorf("fields not decoded: %+v", s)
	}
	if s.ManagementStatus == nil || s.ManagementStatus.EnrolledViaDEP == nil || !*s.ManagementStatus.EnrolledViaDEP {
		t.Error("ManagementStatus not decoded")
	}
}

func TestDecodeApplicationLists(t *testing.T) {
	apps, err := DecodeInstalledApplicationList(mustResult(t, installedAppsRes))
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 || apps[0].Identifier != "com.example.expenses" || apps[0].ShortVersion != "4.2" ||
		apps[0].BundleSize == nil || *apps[0].BundleSize != 48211968 || apps[1].Name != "Notes" {
		t.Errorf("InstalledApplicationList = %+v", apps)
	}
	managed, err := DecodeManagedApplicationList(mustResult(t, managedAppsRes))
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := managed["com.example.expenses"]; !ok || m.Status != "Managed" || m.ManagementFlags != ManagementFlagRemoveWithMDM {
		t.Errorf("ManagedApplicationList = %+v", managed)
	}
}

func TestDecodeProfileAndCertificateLists(t *testing.T) {
	profiles, err := DecodeProfileList(mustResult(t, profileListRes))
	if err != nil {
		t.Fatal(err)
	}
	if len(profiles) != 1 || profiles[0].PayloadIdentifier != "com.example.mdm" || profiles[0].PayloadVersion != 1 ||
		len(profiles[0].SignerCertificates) != 1 || len(profiles[0].PayloadContent) != 1 ||
		profiles[0].PayloadContent[0].PayloadType != "com.apple.mdm" {
		t.Errorf("ProfileList = %+v", profiles)
	}
	certs, err := DecodeCertificateList(mustResult(t, certificateListRes))
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 || certs[0].CommonName != "Example Device CA" || !bytes.Equal(certs[0].Data, []byte{0x30, 0}) {
		t.Errorf("CertificateList = %+v", certs)
	}
}

func TestDecodeDeviceLocation(t *testing.T) {
	loc, err := DecodeDeviceLocation(mustResult(t, deviceLocationRes))
	if err != nil {
		t.Fatal(err)
	}
	horizontal, vertical := 65.0, 10.0
	want := DeviceLocationResult{Latitude: 52.5163, Longitude: 13.3777, HorizontalAccuracy: &horizontal, VerticalAccuracy: &vertical,
		Altitude: 34.5, Speed: 0, Course: -1, Timestamp: time.Date(2026, 11, 23, 10, 15, 30, 0, time.UTC)}
	if !reflect.DeepEqual(loc, want) || !loc.HasFix() {
		t.Errorf("location = %+v, want %+v", loc, want)
	}
	bad := result("DeviceLocation", kr("Latitude", "91"), kr("Longitude", "0"))
	if _, err := DecodeDeviceLocation(mustResult(t, bad)); !errors.Is(err, ErrMalformed) {
		t.Errorf("out-of-range latitude: err = %v, want ErrMalformed", err)
	}
	if _, err := DecodeDeviceLocation(mustResult(t, result("DeviceLocation", kr("Latitude", "1")))); !errors.Is(err, ErrMissingKey) {
		t.Errorf("missing longitude: err = %v, want ErrMissingKey", err)
	}
}

// TestDeviceLocationWithoutAFix: a device that does not know where it is
// answers with placeholder coordinates, which may be out of range, and a
// negative HorizontalAccuracy. The answer decodes, as one with no location
// in it; a device before iOS 10.3 sends no accuracy, and its coordinates
// are a location of unknown accuracy, not a perfect one.
func TestDeviceLocationWithoutAFix(t *testing.T) {
	for _, placeholder := range [][2]string{{"0", "0"}, {"-180", "-180"}} {
		noFix := result("DeviceLocation", kr("Latitude", placeholder[0]), kr("Longitude", placeholder[1]),
			kr("HorizontalAccuracy", "-1"), kr("VerticalAccuracy", "-1"), kv("Timestamp", "2026-11-23T10:15:30Z"))
		loc, err := DecodeDeviceLocation(mustResult(t, noFix))
		if err != nil || loc.HasFix() || loc.Latitude != 0 || loc.Longitude != 0 {
			t.Errorf("no fix at %v: %+v, %v; want no location and no error", placeholder, loc, err)
		}
	}
	old := result("DeviceLocation", kr("Latitude", "52.5163"), kr("Longitude", "13.3777"))
	loc, err := DecodeDeviceLocation(mustResult(t, old))
	if err != nil || !loc.HasFix() || loc.HorizontalAccuracy != nil || loc.VerticalAccuracy != nil || !loc.Timestamp.IsZero() {
		t.Errorf("no accuracy sent: %+v, %v; want a fix of unknown accuracy and time", loc, err)
	}
	zero := result("DeviceLocation", kr("Latitude", "52.5163"), kr("Longitude", "13.3777"), kr("HorizontalAccuracy", "0"))
	if loc, err := DecodeDeviceLocation(mustResult(t, zero)); err != nil || !loc.HasFix() || loc.HorizontalAccuracy == nil || *loc.HorizontalAccuracy != 0 {
		t.Errorf("accuracy 0: %+v, %v; want a fix of accuracy 0", loc, err)
	}
}

// TestDeviceLocationTimestamp: the time of the fix is read from the
// documented RFC 3339 <string> or from a <date>; one that does not parse,
// or of another type, leaves the time unknown and the fix kept.
func TestDeviceLocationTimestamp(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 15, 30, 0, time.UTC)
	for _, c := range []struct {
		name      string
		timestamp string
		want      time.Time
	}{
		{"RFC 3339 string", kv("Timestamp", "2026-11-23T10:15:30Z"), at},
		{"RFC 3339 string with an offset", kv("Timestamp", "2026-11-23T11:15:30+01:00"), at},
		{"date", kraw("Timestamp", "<date>2026-11-23T10:15:30Z</date>"), at},
		{"unparseable string", kv("Timestamp", "23/11/2026 10:15"), time.Time{}},
		{"integer", ki("Timestamp", "1795428930"), time.Time{}},
		{"year 0 in UTC", kv("Timestamp", "0000-01-01T00:30:00+01:00"), time.Time{}},
	} {
		body := result("DeviceLocation", kr("Latitude", "52.5163"), kr("Longitude", "13.3777"), kr("HorizontalAccuracy", "65"), c.timestamp)
		loc, err := DecodeDeviceLocation(mustResult(t, body))
		if err != nil || !loc.HasFix() || loc.Latitude != 52.5163 || !loc.Timestamp.Equal(c.want) {
			t.Errorf("%s: %+v, %v; want the fix, taken at %v", c.name, loc, err, c.want)
		}
	}
}

// TestListsAreRequired: an acknowledged list command without its list
// says nothing of what the device holds, and is refused as bad input
// rather than read as an empty list that would erase the inventory; an
// empty list is an answer.
func TestListsAreRequired(t *testing.T) {
	decoders := []struct {
		key   string
		empty string
		count func(Result) (int, error)
	}{
		{"InstalledApplicationList", "<array/>", func(r Result) (int, error) { l, err := DecodeInstalledApplicationList(r); return len(l), err }},
		{"ManagedApplicationList", "<dict/>", func(r Result) (int, error) { l, err := DecodeManagedApplicationList(r); return len(l), err }},
		{"ProfileList", "<array/>", func(r Result) (int, error) { l, err := DecodeProfileList(r); return len(l), err }},
		{"CertificateList", "<array/>", func(r Result) (int, error) { l, err := DecodeCertificateList(r); return len(l), err }},
	}
	for _, d := range decoders {
		for _, r := range []Result{mustResult(t, result(d.key)), {Status: StatusAcknowledged, Raw: result(d.key)}} {
			if n, err := d.count(r); !errors.Is(err, ErrMissingKey) || !IsBadInput(err) || !strings.Contains(err.Error(), d.key) {
				t.Errorf("%s without the list: %d entries, %v; want a missing-key error naming it", d.key, n, err)
			}
		}
		if n, err := d.count(mustResult(t, result(d.key, kraw(d.key, d.empty)))); err != nil || n != 0 {
			t.Errorf("%s empty: %d entries, %v; want an empty list", d.key, n, err)
		}
	}
}

func TestTypedDecodersRefuseMismatches(t *testing.T) {
	if _, err := DecodeSecurityInfo(mustResult(t, deviceInformationRes)); !errors.Is(err, ErrWrongRequestType) {
		t.Errorf("SecurityInfo on a DeviceInformation result: err = %v, want ErrWrongRequestType", err)
	}
	if _, err := DecodeProfileList(mustResult(t, errorResult)); !errors.Is(err, ErrMalformed) {
		t.Errorf("ProfileList on an Error result: err = %v, want ErrMalformed", err)
	}
	noRequestType := result("", kraw("QueryResponses", "<dict>"+kv("OSVersion", "14.5")+"</dict>"))
	info, err := DecodeDeviceInformation(mustResult(t, noRequestType))
	if err != nil || info.OSVersion != "14.5" {
		t.Errorf("result without RequestType: info=%+v err=%v", info, err)
	}
	if _, err := DecodeDeviceInformation(mustResult(t, result("DeviceInformation"))); !errors.Is(err, ErrMissingKey) {
		t.Errorf("no QueryResponses: err = %v, want ErrMissingKey", err)
	}
	wrongShape := result("InstalledApplicationList", kv("InstalledApplicationList", "none"))
	if _, err := DecodeInstalledApplicationList(mustResult(t, wrongShape)); !errors.Is(err, ErrMalformed) {
		t.Errorf("list of wrong type: err = %v, want ErrMalformed", err)
	}
}

// TestOddIntegersAreRefused: the schema's integers are signed 64-bit; the
// plist decoder would wrap an unsigned one above MaxInt64 into a negative
// number and take a keyed archive's CF$UID reference for a number. Where a
// number is expected both are refused, as the device's fault; an odd
// PayloadVersion drops only itself, not the profile list.
func TestOddIntegersAreRefused(t *testing.T) {
	const tooBig = "18446744073709551615"
	uid := "<dict><key>CF$UID</key><integer>7</integer></dict>"
	info := func(key, value string) []byte {
		return result("DeviceInformation", kraw("QueryResponses", "<dict>"+kraw(key, value)+"</dict>"))
	}
	security := func(key, value string) []byte {
		return result("SecurityInfo", kraw("SecurityInfo", "<dict>"+kraw(key, value)+"</dict>"))
	}
	managed := func(key, value string) []byte {
		return result("ManagedApplicationList", kraw("ManagedApplicationList", "<dict>"+kraw("com.example.app", "<dict>"+kraw(key, value)+"</dict>")+"</dict>"))
	}
	for _, odd := range []string{"<integer>" + tooBig + "</integer>", "<integer>0x8000000000000000</integer>", uid} {
		for name, decode := range map[string]func() error{
			"BatteryLevel": func() error { _, err := DecodeDeviceInformation(mustResult(t, info("BatteryLevel", odd))); return err },
			"CellularTechnology": func() error {
				_, err := DecodeDeviceInformation(mustResult(t, info("CellularTechnology", odd)))
				return err
			},
			"HardwareEncryptionCaps": func() error {
				_, err := DecodeSecurityInfo(mustResult(t, security("HardwareEncryptionCaps", odd)))
				return err
			},
			"AutoLockTime": func() error { _, err := DecodeSecurityInfo(mustResult(t, security("AutoLockTime", odd))); return err },
			"ManagementFlags": func() error {
				_, err := DecodeManagedApplicationList(mustResult(t, managed("ManagementFlags", odd)))
				return err
			},
			"BundleSize": func() error {
				apps := result("InstalledApplicationList", kraw("InstalledApplicationList", "<array><dict>"+kraw("BundleSize", odd)+"</dict></array>"))
				_, err := DecodeInstalledApplicationList(mustResult(t, apps))
				return err
			},
			"Latitude": func() error {
				_, err := DecodeDeviceLocation(mustResult(t, result("DeviceLocation", kraw("Latitude", odd), kr("Longitude", "1"))))
				return err
			},
			"ErrorCode": func() error {
				_, err := DecodeResult(doc(kv("Status", "Error"), kv("UDID", fixtureUDID), kv("CommandUUID", fixtureCommandUUID),
					kraw("ErrorChain", "<array><dict>"+kraw("ErrorCode", odd)+kv("ErrorDomain", "MCMDMErrorDomain")+"</dict></array>")))
				return err
			},
		} {
			if err := decode(); !errors.Is(err, ErrMalformed) || !IsBadInput(err) {
				t.Errorf("%s %s: %v, want ErrMalformed", name, odd, err)
			}
		}
		profiles := result("ProfileList", kraw("ProfileList", "<array><dict>"+kv("PayloadIdentifier", "com.example.odd")+
			kraw("PayloadVersion", odd)+"</dict><dict>"+kv("PayloadIdentifier", "com.example.mdm")+ki("PayloadVersion", "1")+"</dict></array>"))
		list, err := DecodeProfileList(mustResult(t, profiles))
		if err != nil || len(list) != 2 || list[0].PayloadVersion != 0 || list[1].PayloadVersion != 1 {
			t.Errorf("PayloadVersion %s: %+v, %v; want both profiles, the odd version dropped", odd, list, err)
		}
	}
	// The edges of the range stay numbers.
	edges := result("DeviceInformation", kraw("QueryResponses", "<dict>"+ki("DeviceCapacity", "9223372036854775807")+
		ki("AvailableDeviceCapacity", "-9223372036854775808")+ki("CellularTechnology", "-1")+"</dict>"))
	got, err := DecodeDeviceInformation(mustResult(t, edges))
	if err != nil || *got.DeviceCapacity != math.MaxInt64 || *got.AvailableDeviceCapacity != math.MinInt64 || *got.CellularTechnology != -1 {
		t.Errorf("the edges of the range: %+v, %v", got, err)
	}
}
