package mdm

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// TestEncryptedNeedsAPasscode: an iPhone's data is protected only with
// both levels of hardware encryption and a passcode
// (information.security.yaml); User Enrollment does not say whether a
// passcode is set, so encryption stays unknown there. A Mac reports
// FileVault.
func TestEncryptedNeedsAPasscode(t *testing.T) {
	caps := func(n int) *int { return &n }
	for _, c := range []struct {
		name string
		in   mdmproto.SecurityInfoResult
		want *bool // nil: not reported
	}{
		{"both levels and a passcode", mdmproto.SecurityInfoResult{HardwareEncryptionCaps: caps(3), PasscodePresent: new(true)}, new(true)},
		{"both levels, no passcode", mdmproto.SecurityInfoResult{HardwareEncryptionCaps: caps(3), PasscodePresent: new(false)}, new(false)},
		{"file level only", mdmproto.SecurityInfoResult{HardwareEncryptionCaps: caps(2), PasscodePresent: new(true)}, new(false)},
		{"User Enrollment", mdmproto.SecurityInfoResult{HardwareEncryptionCaps: caps(3), PasscodeCompliant: new(true)}, nil},
		{"a Mac with FileVault", mdmproto.SecurityInfoResult{FDEEnabled: new(true)}, new(true)},
	} {
		var got *bool
		for _, o := range securityInfoObservations(c.in) {
			if o.Field == "security.encrypted" {
				v := o.Value.(bool)
				got = &v
			}
		}
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%s: encrypted %v, want %v", c.name, deref(got), deref(c.want))
		}
	}
}

func deref(b *bool) any {
	if b == nil {
		return "not reported"
	}
	return *b
}

// TestBatteryLevelUnknown: -1.0 is a device that cannot tell its battery
// level (information.device.yaml), not a measurement: nothing is kept.
func TestBatteryLevelUnknown(t *testing.T) {
	level := func(v float64) any {
		n := mdmproto.Number(v)
		for _, o := range deviceInformationObservations(mdmproto.DeviceInformationResult{BatteryLevel: &n}) {
			if o.Field == "hardware.battery_level" {
				return o.Value
			}
		}
		return "not reported"
	}
	if got := level(-1); got != "not reported" {
		t.Errorf("battery level -1.0 kept as %v", got)
	}
	if got := level(0); got != 0.0 {
		t.Errorf("battery level 0.0 kept as %v, want 0", got)
	}
}

// TestLocationObservations: a fix is kept with its accuracy when the
// device sent one and the time it determined it; an answer without a fix
// keeps nothing, so the last known location stays.
func TestLocationObservations(t *testing.T) {
	accuracy, noFix := 65.0, -1.0
	at := time.Date(2026, 11, 23, 10, 15, 30, 0, time.UTC)
	for _, c := range []struct {
		name string
		in   mdmproto.DeviceLocationResult
		want string // the stored JSON; empty for nothing stored
	}{
		{"a fix", mdmproto.DeviceLocationResult{Latitude: 52.5, Longitude: 13.4, HorizontalAccuracy: &accuracy, Timestamp: at},
			`{"lat":52.5,"lon":13.4,"accuracy_m":65,"fixed_at":"2026-11-23T10:15:30Z"}`},
		{"no accuracy or time sent", mdmproto.DeviceLocationResult{Latitude: 52.5, Longitude: 13.4}, `{"lat":52.5,"lon":13.4}`},
		{"no fix", mdmproto.DeviceLocationResult{HorizontalAccuracy: &noFix, Timestamp: at}, ""},
	} {
		obs := locationObservations(c.in)
		var got string
		if len(obs) > 0 {
			if obs[0].Field != "location.coordinates" || len(obs) != 1 {
				t.Fatalf("%s: observations %+v", c.name, obs)
			}
			b, err := json.Marshal(obs[0].Value)
			if err != nil {
				t.Fatal(err)
			}
			got = string(b)
		}
		if got != c.want {
			t.Errorf("%s: stored %q, want %q", c.name, got, c.want)
		}
	}
}

// TestTelephonyFromServiceSubscriptions: an answer to ServiceSubscriptions
// fills the same telephony fields as the deprecated queries did. The line
// (phone number, SIM, carrier) is the one the device prefers for calls,
// else for data, else the first listed; the IMEI and MEID are those of
// the first listed that names them. No subscription stores nothing,
// and an answer to the deprecated queries, were both asked, comes first.
func TestTelephonyFromServiceSubscriptions(t *testing.T) {
	yes, no := true, false
	physical := mdmproto.ServiceSubscription{PhoneNumber: "+49 1575 5550100", IMEI: "35 693803 564380 9", ICCID: "8949 0200 0012 3456 7890",
		CurrentCarrierNetwork: "Telekom.de", IsDataPreferred: &no, IsVoicePreferred: &yes}
	esim := mdmproto.ServiceSubscription{PhoneNumber: "+49 1520 5550199", IMEI: "35 693803 564381 7", ICCID: "8949 2200 0098 7654 3210",
		CurrentCarrierNetwork: "Vodafone.de", IsDataPreferred: &yes, IsVoicePreferred: &no}
	unflagged := func(s mdmproto.ServiceSubscription) mdmproto.ServiceSubscription {
		s.IsDataPreferred, s.IsVoicePreferred = nil, nil
		return s
	}
	line := func(s mdmproto.ServiceSubscription, imei string) map[string]any {
		return map[string]any{"telephony.phone_number": s.PhoneNumber, "telephony.iccid": s.ICCID, "telephony.carrier": s.CurrentCarrierNetwork,
			"telephony.imei": imei}
	}
	for _, c := range []struct {
		name string
		in   mdmproto.DeviceInformationResult
		want map[string]any
	}{
		{"calls on the physical SIM, data on the eSIM", mdmproto.DeviceInformationResult{ServiceSubscriptions: []mdmproto.ServiceSubscription{physical, esim}},
			line(physical, physical.IMEI)},
		{"voice preference unsaid, data on the eSIM", mdmproto.DeviceInformationResult{ServiceSubscriptions: []mdmproto.ServiceSubscription{
			unflagged(physical), {PhoneNumber: esim.PhoneNumber, ICCID: esim.ICCID, CurrentCarrierNetwork: esim.CurrentCarrierNetwork, IsDataPreferred: &yes}}},
			line(esim, physical.IMEI)},
		{"no preference", mdmproto.DeviceInformationResult{ServiceSubscriptions: []mdmproto.ServiceSubscription{unflagged(esim), unflagged(physical)}},
			line(esim, esim.IMEI)},
		{"the first slot names no IMEI", mdmproto.DeviceInformationResult{ServiceSubscriptions: []mdmproto.ServiceSubscription{
			{PhoneNumber: " ", IsVoicePreferred: &yes}, esim}},
			map[string]any{"telephony.imei": esim.IMEI}},
		{"no SIM", mdmproto.DeviceInformationResult{ServiceSubscriptions: []mdmproto.ServiceSubscription{}}, map[string]any{}},
		{"the deprecated queries' answer comes first", mdmproto.DeviceInformationResult{PhoneNumber: "+1 555 0100", IMEI: "01 234567 890123 4",
			ServiceSubscriptions: []mdmproto.ServiceSubscription{esim}},
			map[string]any{"telephony.phone_number": "+1 555 0100", "telephony.imei": "01 234567 890123 4", "telephony.iccid": esim.ICCID,
				"telephony.carrier": esim.CurrentCarrierNetwork}},
	} {
		got := map[string]any{}
		for _, o := range deviceInformationObservations(c.in) {
			if strings.HasPrefix(o.Field, "telephony.") {
				if _, twice := got[o.Field]; twice {
					t.Errorf("%s: %s observed twice", c.name, o.Field)
				}
				got[o.Field] = o.Value
			}
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
