package server

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/uuid"
	"howett.net/plist"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/steward-mdm/steward/internal/apple/certtest"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPersonalDeviceKeepsTheCertificatesItsProfilesBring: a personal
// device that reports every certificate, whatever ManagedOnly asked, keeps
// those the organisation's profiles brought: the identities of a built and
// an uploaded PKCS#12 profile, the CA the built one carries in its chain,
// and an identity that CA issued (as a SCEP payload would obtain it),
// beside its MDM identity. Dropped are a certificate the built profile's
// identity signed (it is no CA), a partner CA whose profile is not for
// personal devices and so was never installed, an identity that CA issued,
// and the employee's own CA and e-mail identity.
func TestPersonalDeviceKeepsTheCertificatesItsProfilesBring(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var staff api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Staff", Kind: "static"}, &staff)

		orgCA, orgKey := certtest.Issue(t, "Acme Issuing CA", true, nil, nil)
		vpn, vpnKey := certtest.Issue(t, "Acme VPN", false, orgCA, orgKey)
		wifi, wifiKey := certtest.Issue(t, "Acme Wi-Fi", false, nil, nil)
		partnerCA, partnerKey := certtest.Issue(t, "Partner CA", true, nil, nil)
		definition, err := json.Marshal(map[string]any{"name": "VPN identity", "identifier": "com.acme.vpn-identity",
			"payloads": []any{map[string]any{"type": "pkcs12", "pkcs12": map[string]any{
				"data": base64.StdEncoding.EncodeToString(encodeP12(t, vpn, vpnKey, orgCA, "vpn-pass")), "password": "vpn-pass"}}}})
		if err != nil {
			t.Fatal(err)
		}
		profiles := []device.ProfileInput{
			{Name: "VPN identity", Definition: definition},
			{Name: "Wi-Fi identity", Custom: uploadedProfile(t, "com.acme.wifi-identity", map[string]any{"PayloadType": "com.apple.security.pkcs12",
				"PayloadContent": encodeP12(t, wifi, wifiKey, nil, "wifi-pass"), "Password": "wifi-pass"})},
			{Name: "Partner trust", Custom: uploadedProfile(t, "com.acme.partner-trust", map[string]any{"PayloadType": "com.apple.security.root",
				"PayloadContent": partnerCA.Raw})},
		}
		for _, in := range profiles {
			var p api.ProfileView
			f.must(201, f.owner, "POST", f.path("/profiles"), in, &p)
			f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+staff.ID), nil, nil)
		}

		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		phone, phoneID := f.enrol("personal", erika.ID, staff.ID, nil)
		if len(phone.Profiles) != 2 || phone.Profiles["com.acme.partner-trust"] != nil {
			t.Fatalf("the device holds %d profiles, want the two identity profiles and not the partner trust", len(phone.Profiles))
		}

		fromOrgCA, _ := certtest.Issue(t, "Acme device 42", false, orgCA, orgKey)
		byIdentity, _ := certtest.Issue(t, "Signed by the VPN identity", false, vpn, vpnKey)
		atPartner, _ := certtest.Issue(t, "Erika at Partner", false, partnerCA, partnerKey)
		ownCA, ownKey := certtest.Issue(t, "Erika's own CA", true, nil, nil)
		email, _ := certtest.Issue(t, "Erika Mustermann", false, ownCA, ownKey)
		reported := func(c *x509.Certificate, managed bool) sim.Certificate {
			return sim.Certificate{CommonName: c.Subject.CommonName, Data: c.Raw, Managed: managed}
		}
		phone.Certificates = []sim.Certificate{reported(vpn, true), reported(orgCA, true), reported(wifi, true), reported(fromOrgCA, true),
			reported(byIdentity, false), reported(partnerCA, false), reported(atPartner, false), reported(ownCA, false), reported(email, false)}
		phone.IgnoresManagedCertificatesOnly = true
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"), api.DeviceActionRequest{Action: actions.Sync, Reason: "check certificates"}, nil)
		f.poll(phone)

		var detail api.DeviceDetailView
		f.must(200, f.owner, "GET", f.path("/devices/"+phoneID), nil, &detail)
		var stored []mdm.Certificate
		for _, fv := range detail.Fields {
			if fv.Field == "security.certificates" {
				if err := json.Unmarshal(fv.Value, &stored); err != nil {
					t.Fatal(err)
				}
			}
		}
		var names []string
		for _, c := range stored {
			names = append(names, c.CommonName)
		}
		slices.Sort(names)
		want := []string{"Acme Issuing CA", "Acme VPN", "Acme Wi-Fi", "Acme device 42", phone.Certificate().Subject.CommonName}
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("stored certificates %q, want %q", names, want)
		}
	})
}

// uploadedProfile is a .mobileconfig with one payload, as an admin uploads it.
func uploadedProfile(t *testing.T, identifier string, payload map[string]any) []byte {
	t.Helper()
	payload["PayloadIdentifier"], payload["PayloadUUID"], payload["PayloadVersion"] = identifier+".payload", uuid.NewString(), 1
	out, err := plist.Marshal(map[string]any{"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": identifier,
		"PayloadUUID": uuid.NewString(), "PayloadDisplayName": identifier, "PayloadContent": []any{payload}}, plist.XMLFormat)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// encodeP12 packs an identity, with its CA when given, as a PKCS#12 file.
func encodeP12(t *testing.T, cert *x509.Certificate, key crypto.Signer, ca *x509.Certificate, password string) []byte {
	t.Helper()
	var chain []*x509.Certificate
	if ca != nil {
		chain = append(chain, ca)
	}
	data, err := pkcs12.Modern.Encode(key, cert, chain, password)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestVersionNeverSentVouchesForNoCertificate: a personal device holds an
// uploaded identity profile whose new version, a partner's root CA, is not
// for personal devices. The device refuses to remove the earlier version
// (not_applicable_removal_failed) and reports the partner CA as if it held
// it: the CA of a version that never reached the device is not the
// organisation's there, and is dropped.
func TestVersionNeverSentVouchesForNoCertificate(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var staff api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Staff", Kind: "static"}, &staff)
		wifi, wifiKey := certtest.Issue(t, "Acme Wi-Fi", false, nil, nil)
		partnerCA, _ := certtest.Issue(t, "Partner CA", true, nil, nil)
		var p api.ProfileView
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Wi-Fi identity",
			Custom: uploadedProfile(t, "com.acme.identity", map[string]any{"PayloadType": "com.apple.security.pkcs12",
				"PayloadContent": encodeP12(t, wifi, wifiKey, nil, "wifi-pass"), "Password": "wifi-pass"})}, &p)
		f.must(204, f.owner, "PUT", f.path("/profiles/"+p.ID+"/groups/"+staff.ID), nil, nil)
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		phone, phoneID := f.enrol("personal", erika.ID, staff.ID, nil)
		if phone.Profiles["com.acme.identity"] == nil {
			t.Fatal("the identity profile did not reach the device")
		}

		f.must(200, f.owner, "PUT", f.path("/profiles/"+p.ID), device.ProfileInput{Custom: uploadedProfile(t, "com.acme.identity",
			map[string]any{"PayloadType": "com.apple.security.root", "PayloadContent": partnerCA.Raw})}, nil)
		phone.RefuseRemovals = true
		f.poll(phone)
		if s := f.profileState(phoneID, p.ID); s.Status != store.ProfileNotApplicableRemovalFailed {
			t.Fatalf("the new version on the personal device: %+v", s)
		}

		phone.Certificates = []sim.Certificate{{CommonName: partnerCA.Subject.CommonName, Data: partnerCA.Raw, Managed: true}}
		phone.IgnoresManagedCertificatesOnly = true
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"), api.DeviceActionRequest{Action: actions.Sync, Reason: "check certificates"}, nil)
		f.poll(phone)

		var detail api.DeviceDetailView
		f.must(200, f.owner, "GET", f.path("/devices/"+phoneID), nil, &detail)
		found := false
		for _, fv := range detail.Fields {
			if fv.Field != "security.certificates" {
				continue
			}
			found = true
			var stored []mdm.Certificate
			if err := json.Unmarshal(fv.Value, &stored); err != nil {
				t.Fatal(err)
			}
			for _, c := range stored {
				if c.CommonName == partnerCA.Subject.CommonName {
					t.Errorf("the partner CA of a version never sent was kept: %+v", stored)
				}
			}
		}
		if !found {
			t.Error("the device's certificate list was not stored")
		}
	})
}
