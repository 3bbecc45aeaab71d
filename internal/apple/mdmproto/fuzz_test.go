package mdmproto

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func FuzzDecodeCheckin(f *testing.F) {
	for _, seed := range [][]byte{authenticateDevice, authenticateUserEnrollment, tokenUpdateDevice, tokenUpdateUser,
		checkOut, userAuthenticate, setBootstrapToken, getBootstrapToken, declarativeManagement,
		[]byte("bplist00"), []byte(plistHead + "<array/></plist>"),
		doc(kv("MessageType", "Authenticate"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID),
			kv("DeviceName", strings.Repeat(strings.Repeat("a", 9<<10)+"<x/>", 2))),
		doc(kv("MessageType", "CheckOut"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID), kraw("Padding", "<array><dict/><dict/></array>"))} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeCheckin(body)
		if (c == nil) == (err == nil) {
			t.Fatalf("want exactly one of message and error, got %T and %v", c, err)
		}
		if err != nil {
			if !IsBadInput(err) {
				t.Fatalf("%v is not classed as bad input", err)
			}
			return
		}
		if c.Sender().DeviceID() == "" {
			t.Fatal("accepted a check-in with no device identity")
		}
		checkStringsBounded(t, c)
	})
}

// checkStringsBounded fails t when a string decoded into v, at any depth,
// is longer than a <key> or <string> may be.
func checkStringsBounded(t *testing.T, v any) {
	t.Helper()
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			if v.Len() > maxPlistText {
				t.Fatalf("decoded a string of %d bytes, more than %d", v.Len(), maxPlistText)
			}
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Slice, reflect.Array:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				return // <data>, which the text bound does not cover
			}
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				walk(it.Key())
				walk(it.Value())
			}
		}
	}
	walk(reflect.ValueOf(v))
}

func FuzzDecodeResult(f *testing.F) {
	for _, seed := range [][]byte{idleResult, deviceInformationRes, securityInfoRes, installedAppsRes, managedAppsRes,
		profileListRes, certificateListRes, deviceLocationRes, errorResult,
		result("DeviceInformation", kraw("QueryResponses", "<dict>"+kr("BatteryLevel", "nan")+"</dict>")),
		result("DeviceLocation", kr("Latitude", "nan"), kr("Longitude", "+infinity")),
		result("DeviceLocation", kr("Latitude", "-180"), kr("Longitude", "-180"), kr("HorizontalAccuracy", "-1"),
			kraw("Timestamp", "<date>2026-11-23T10:15:30Z</date>")),
		result("InstalledApplicationList"), result("ManagedApplicationList", kraw("ManagedApplicationList", "<dict/>")),
		serviceSubscriptionsRes,
		result("DeviceInformation", kraw("QueryResponses", "<dict>"+kv("PhoneNumber", strings.Repeat(strings.Repeat("5", 9<<10)+"<x/>", 2))+"</dict>")),
		result("DeviceInformation", kraw("QueryResponses", "<dict>"+ki("BatteryLevel", "18446744073709551615")+
			kraw("CellularTechnology", "<dict><key>CF$UID</key><integer>7</integer></dict>")+"</dict>")),
		result("DeviceInformation", kraw("QueryResponses", "<dict>"+kraw("ServiceSubscriptions", "<array/>")+"</dict>")),
		result("DeviceInformation", kraw("QueryResponses", "<dict>"+kraw("ServiceSubscriptions",
			"<array><dict>"+ki("PhoneNumber", "4915755550100")+kv("IsDataPreferred", "yes")+"</dict><string>x</string></array>")+"</dict>"))} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeResult(body)
		if err != nil {
			if !IsBadInput(err) {
				t.Fatalf("%v is not classed as bad input", err)
			}
			return
		}
		if !r.Status.known() || r.DeviceID() == "" {
			t.Fatalf("accepted an invalid result: %+v", r)
		}
		envelope := r
		envelope.payloads = nil // checked through the typed decoders below
		checkStringsBounded(t, envelope)
		// The typed decoders read the same device input; none may panic, and
		// each answers from the payloads decoded with the envelope exactly as
		// it would from the body alone.
		alone := r
		alone.payloads = nil
		sameAnswer(t, "DeviceInformation", DecodeDeviceInformation, r, alone)
		if info, err := DecodeDeviceInformation(r); err == nil && len(info.ServiceSubscriptions) > MaxServiceSubscriptions {
			t.Fatalf("decoded %d subscriptions, more than %d", len(info.ServiceSubscriptions), MaxServiceSubscriptions)
		}
		sameAnswer(t, "SecurityInfo", DecodeSecurityInfo, r, alone)
		sameAnswer(t, "InstalledApplicationList", DecodeInstalledApplicationList, r, alone)
		sameAnswer(t, "ManagedApplicationList", DecodeManagedApplicationList, r, alone)
		sameAnswer(t, "ProfileList", DecodeProfileList, r, alone)
		sameAnswer(t, "CertificateList", DecodeCertificateList, r, alone)
		sameAnswer(t, "DeviceLocation", DecodeDeviceLocation, r, alone)
	})
}

func sameAnswer[T any](t *testing.T, name string, decode func(Result) (T, error), r, alone Result) {
	t.Helper()
	got, err := decode(r)
	want, wantErr := decode(alone)
	if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: %+v, %v from the envelope's pass; %+v, %v from the body alone", name, got, err, want, wantErr)
	}
	// A refusal is the device's fault, never taken for a server failure
	// (which makes the device send its answer again).
	if err != nil && !IsBadInput(err) {
		t.Fatalf("%s: %v is not classed as bad input", name, err)
	}
	checkStringsBounded(t, got)
	// What decodes can be kept: the privacy gate stores values as JSON.
	if _, jsonErr := json.Marshal(got); err == nil && jsonErr != nil {
		t.Fatalf("%s: decoded %+v, which JSON cannot hold: %v", name, got, jsonErr)
	}
}

func FuzzVerifyMdmSignature(f *testing.F) {
	pki := newTestPKI(f)
	key := newECKey(f)
	leaf := pki.leaf(f, key, x509.ExtKeyUsageClientAuth)
	roots := x509.NewCertPool()
	roots.AddCert(pki.intermediate)
	valid, err := SignMdmMessage(tokenUpdateDevice, leaf, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, tokenUpdateDevice)
	f.Add(valid[:len(valid)/2], tokenUpdateDevice)
	f.Add("MIAGCSqGSIb3DQEHAqCAMIACAQExCzAJBgUrDgMCGgUAMIAGCSqGSIb3DQEHAaCA", []byte{})
	f.Add("", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		signer, err := VerifyMdmSignature(header, body, roots, testNow)
		if err != nil {
			if signer != nil {
				t.Fatal("signer returned with an error")
			}
			for _, want := range []error{ErrSignatureMissing, ErrSignatureMalformed, ErrSignatureInvalid, ErrSignerUntrusted} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("untyped error: %v", err)
		}
		if !signer.Equal(leaf) {
			t.Fatal("accepted a signer that is not the only trusted leaf")
		}
	})
}
