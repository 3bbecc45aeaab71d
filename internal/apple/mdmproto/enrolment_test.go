package mdmproto

import (
	"bytes"
	"crypto/x509"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"
)

func deviceProfile() EnrolmentProfile {
	return EnrolmentProfile{
		Identifier:   "com.example.steward.enrol",
		DisplayName:  "Example GmbH device management",
		Organization: "Example GmbH",
		ProfileUUID:  "6A1D6F4E-2C3B-4D5A-8E9F-0A1B2C3D4E5F",
		SCEPUUID:     "7B2E7A5F-3D4C-4E6B-9FA0-1B2C3D4E5F60",
		MDMUUID:      "8C3F8B60-4E5D-4F7C-A0B1-2C3D4E5F6071",
		SCEP: SCEPSettings{
			URL: "https://mdm.example.com/scep", Name: "steward", Challenge: "one-time-challenge-7f3a",
			Subject: []SubjectAttribute{{"O", "Example GmbH"}, {"CN", "steward-device"}},
		},
		ServerURL:             "https://mdm.example.com/mdm/connect",
		CheckInURL:            "https://mdm.example.com/mdm/checkin",
		Topic:                 "com.apple.mgmt.External.5b0c1f5e-8f0e-4a7e-9a53-0f8f0e2c1d3a",
		AccessRights:          AccessProfileInspection | AccessProfileInstallRemove | AccessDeviceInformation | AccessSecurityQueries,
		EscrowsBootstrapToken: true,
	}
}

type decodedProfile struct {
	top, scep, scepContent, mdm map[string]any
}

func decodeProfile(t *testing.T, raw []byte) decodedProfile {
	t.Helper()
	var top map[string]any
	if _, err := plist.Unmarshal(raw, &top); err != nil {
		t.Fatalf("profile does not decode: %v", err)
	}
	top = normalise(top).(map[string]any)
	content, ok := top["PayloadContent"].([]any)
	if !ok || len(content) != 2 {
		t.Fatalf("PayloadContent = %#v, want two payloads", top["PayloadContent"])
	}
	d := decodedProfile{top: top, scep: content[0].(map[string]any), mdm: content[1].(map[string]any)}
	d.scepContent, _ = d.scep["PayloadContent"].(map[string]any)
	return d
}

func TestBuildEnrolmentProfileDevice(t *testing.T) {
	p := deviceProfile()
	raw, err := BuildEnrolmentProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeProfile(t, raw)
	wantTop := map[string]any{"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": p.Identifier,
		"PayloadUUID": p.ProfileUUID, "PayloadDisplayName": p.DisplayName, "PayloadOrganization": "Example GmbH"}
	for k, v := range wantTop {
		if d.top[k] != v {
			t.Errorf("profile %s = %#v, want %#v", k, d.top[k], v)
		}
	}
	if d.scep["PayloadType"] != "com.apple.security.scep" || d.scep["PayloadUUID"] != p.SCEPUUID {
		t.Errorf("SCEP payload header = %#v", d.scep)
	}
	wantSCEP := map[string]any{
		"URL": "https://mdm.example.com/scep", "Name": "steward", "Challenge": "one-time-challenge-7f3a",
		"Keysize": 2048, "Key Type": "RSA", "Key Usage": 5, "KeyIsExtractable": false,
		"Subject": []any{[]any{[]any{"O", "Example GmbH"}}, []any{[]any{"CN", "steward-device"}}},
	}
	if !reflect.DeepEqual(d.scepContent, wantSCEP) {
		t.Errorf("SCEP content\n got %#v\nwant %#v", d.scepContent, wantSCEP)
	}
	wantMDM := map[string]any{
		"PayloadType": "com.apple.mdm", "PayloadVersion": 1, "PayloadIdentifier": p.Identifier + ".mdm",
		"PayloadUUID": p.MDMUUID, "PayloadDisplayName": "Device management",
		"ServerURL": p.ServerURL, "CheckInURL": p.CheckInURL, "Topic": p.Topic,
		"IdentityCertificateUUID": p.SCEPUUID, "SignMessage": true, "CheckOutWhenRemoved": true,
		"AccessRights":       1 | 2 | 16 | 1024,
		"ServerCapabilities": []any{"com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken"},
	}
	if !reflect.DeepEqual(d.mdm, wantMDM) {
		t.Errorf("MDM payload\n got %#v\nwant %#v", d.mdm, wantMDM)
	}

	// A Mac whose token the server does not keep is not asked for one.
	p.EscrowsBootstrapToken = false
	if raw, err = BuildEnrolmentProfile(p); err != nil {
		t.Fatal(err)
	}
	if caps := decodeProfile(t, raw).mdm["ServerCapabilities"]; !reflect.DeepEqual(caps, []any{"com.apple.mdm.per-user-connections"}) {
		t.Errorf("ServerCapabilities without bootstrap escrow = %#v, want per-user connections only", caps)
	}
}

func TestBuildEnrolmentProfileUserEnrollment(t *testing.T) {
	p := deviceProfile()
	p.AssignedManagedAppleID = "jane.doe@appleid.example.com"
	p.AccessRights, p.EscrowsBootstrapToken = 0, false
	p.ProfileUUID, p.SCEPUUID, p.MDMUUID = "", "", ""
	raw, err := BuildEnrolmentProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeProfile(t, raw)
	if d.mdm["AssignedManagedAppleID"] != p.AssignedManagedAppleID || d.mdm["EnrollmentMode"] != "BYOD" {
		t.Errorf("user enrollment keys missing: %#v", d.mdm)
	}
	if _, ok := d.mdm["AccessRights"]; ok {
		t.Error("AccessRights must be left out of a User Enrollment profile")
	}
	if caps := d.mdm["ServerCapabilities"]; !reflect.DeepEqual(caps, []any{"com.apple.mdm.per-user-connections"}) {
		t.Errorf("User Enrollment ServerCapabilities = %#v, want per-user connections only", caps)
	}
	// Apple's schema allows the SCEP payload, and this key, in User Enrollment.
	if extractable, ok := d.scepContent["KeyIsExtractable"]; !ok || extractable != false {
		t.Errorf("User Enrollment KeyIsExtractable = %#v, want false", extractable)
	}
	ids := []any{d.top["PayloadUUID"], d.scep["PayloadUUID"], d.mdm["PayloadUUID"]}
	for _, id := range ids {
		if s, _ := id.(string); !payloadUUIDPattern.MatchString(s) {
			t.Errorf("generated UUID %q has the wrong form", s)
		}
	}
	if ids[0] == ids[1] || ids[1] == ids[2] || d.mdm["IdentityCertificateUUID"] != ids[1] {
		t.Errorf("UUIDs not distinct or identity not linked: %v", ids)
	}
}

func TestBuildEnrolmentProfileRejects(t *testing.T) {
	tests := map[string]func(p *EnrolmentProfile){
		"no identifier":            func(p *EnrolmentProfile) { p.Identifier = "" },
		"http server url":          func(p *EnrolmentProfile) { p.ServerURL = "http://mdm.example.com/connect" },
		"relative check-in url":    func(p *EnrolmentProfile) { p.CheckInURL = "/checkin" },
		"no scep url":              func(p *EnrolmentProfile) { p.SCEP.URL = "" },
		"foreign topic":            func(p *EnrolmentProfile) { p.Topic = "com.example.push" },
		"zero access rights":       func(p *EnrolmentProfile) { p.AccessRights = 0 },
		"unknown access bit":       func(p *EnrolmentProfile) { p.AccessRights = AccessAll + 1 },
		"install without inspect":  func(p *EnrolmentProfile) { p.AccessRights = AccessProfileInstallRemove },
		"prov install w/o inspect": func(p *EnrolmentProfile) { p.AccessRights = AccessProvisioningProfileInstallRemove },
		"malformed uuid":           func(p *EnrolmentProfile) { p.MDMUUID = "not-a-uuid" },
		"subject without value":    func(p *EnrolmentProfile) { p.SCEP.Subject = []SubjectAttribute{{"CN", ""}} },
		"user enrollment bootstrap": func(p *EnrolmentProfile) {
			p.AssignedManagedAppleID, p.AccessRights = "jane.doe@appleid.example.com", 0
		},
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			p := deviceProfile()
			mutate(&p)
			if _, err := BuildEnrolmentProfile(p); !errors.Is(err, ErrInvalidProfile) {
				t.Fatalf("error = %v, want ErrInvalidProfile", err)
			}
		})
	}
}

func TestSignProfile(t *testing.T) {
	pki := newTestPKI(t)
	key := newECKey(t)
	cert := pki.leaf(t, key)
	profile, err := BuildEnrolmentProfile(deviceProfile())
	if err != nil {
		t.Fatal(err)
	}
	signed, err := SignProfile(profile, cert, key, []*x509.Certificate{pki.intermediate})
	if err != nil {
		t.Fatal(err)
	}
	p7, err := pkcs7.Parse(signed)
	if err != nil {
		t.Fatalf("signed profile is not CMS: %v", err)
	}
	if !bytes.Equal(p7.Content, profile) {
		t.Error("signed profile does not carry the profile as its content")
	}
	if err := p7.VerifyWithChainAtTime(pki.roots, testNow); err != nil {
		t.Errorf("signature or chain does not verify: %v", err)
	}
	if s := p7.GetOnlySigner(); s == nil || !s.Equal(cert) {
		t.Error("signer is not the given certificate")
	}
	if _, err := SignProfile(nil, cert, key, nil); !errors.Is(err, ErrInvalidProfile) {
		t.Errorf("empty profile: err = %v", err)
	}
}

func TestAccessRightsDescribe(t *testing.T) {
	if got := (AccessProfileInspection | AccessDeviceErase).Describe(); got != "list profiles, erase the device" {
		t.Errorf("Describe: %q", got)
	}
	if got := AccessRights(0).Describe(); got != "nothing" {
		t.Errorf("no rights: %q", got)
	}
	if n := len(strings.Split(AccessAll.Describe(), ", ")); n != 13 {
		t.Errorf("every right described: %d words, want 13", n)
	}
}
