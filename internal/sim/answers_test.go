package sim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// standIn is an MDM command endpoint that sends a script of commands and
// keeps the results it gets.
type standIn struct {
	mu      sync.Mutex
	queue   []map[string]any // {"CommandUUID": …, "Command": {…}}
	results []map[string]any
}

func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var msg map[string]any
	if _, err := plist.Unmarshal(body, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg["Status"] != "Idle" {
		s.results = append(s.results, msg)
	}
	if len(s.queue) == 0 {
		return
	}
	out, _ := plist.Marshal(s.queue[0], plist.XMLFormat)
	s.queue = s.queue[1:]
	w.Write(out)
}

func (s *standIn) send(uuid string, cmd map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, map[string]any{"CommandUUID": uuid, "Command": cmd})
}

func standInDevice(t *testing.T) (*Device, *standIn) {
	t.Helper()
	s := &standIn{}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	d, err := NewEnrolled(ts.Client(), ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return d, s
}

// TestPollForFindsItsCommand: PollFor says whether the command with the
// given UUID was among those answered, whatever else was queued.
func TestPollForFindsItsCommand(t *testing.T) {
	ctx := context.Background()
	d, s := standInDevice(t)
	s.send("AAAA-1", map[string]any{"RequestType": "SecurityInfo"})
	s.send("BBBB-2", map[string]any{"RequestType": "DeviceInformation", "Queries": []string{"OSVersion"}})
	if n, found, err := d.PollFor(ctx, "bbbb-2"); err != nil || !found || n != 2 {
		t.Errorf("PollFor(bbbb-2) with AAAA-1 and BBBB-2 queued: %d, %v, %v", n, found, err)
	}
	s.send("AAAA-3", map[string]any{"RequestType": "SecurityInfo"})
	if n, found, err := d.PollFor(ctx, "BBBB-4"); err != nil || found || n != 1 {
		t.Errorf("PollFor(BBBB-4) with only AAAA-3 queued: %d, %v, %v", n, found, err)
	}
	if n, found, err := d.PollFor(ctx, "BBBB-4"); err != nil || found || n != 0 {
		t.Errorf("PollFor on an empty queue: %d, %v, %v", n, found, err)
	}
	if len(s.results) != 3 {
		t.Errorf("results: %v", s.results)
	}
}

// signedProfile is a CMS-signed enrolment profile with SCEP and MDM
// payloads, and its signer.
func signedProfile(t *testing.T, key *rsa.PrivateKey) ([]byte, *x509.Certificate) {
	t.Helper()
	content, err := plist.Marshal(map[string]any{"PayloadType": "Configuration", "PayloadVersion": 1,
		"PayloadIdentifier": "com.example.mdm.enrolment", "PayloadUUID": "9F1C3A52-0D4E-4B7A-8C21-5E6F7A8B9C0D",
		"PayloadDisplayName": "Example MDM", "PayloadOrganization": "Example Org", "PayloadDescription": "Manages this device",
		"PayloadContent": []map[string]any{
			{"PayloadType": "com.apple.security.scep", "PayloadVersion": 1, "PayloadIdentifier": "com.example.mdm.scep",
				"PayloadUUID": "1B2C3D4E-5F60-4172-8394-A5B6C7D8E9F0", "PayloadDisplayName": "Identity",
				"PayloadContent": map[string]any{"URL": "https://mdm.example/scep", "Challenge": "secret"}},
			{"PayloadType": "com.apple.mdm", "PayloadVersion": 1, "PayloadIdentifier": "com.example.mdm.mdm",
				"PayloadUUID": "2C3D4E5F-6071-4283-94A5-B6C7D8E9F0A1", "ServerURL": "https://mdm.example/mdm",
				"Topic": "com.apple.mgmt.External.x", "AccessRights": 8191}}}, plist.XMLFormat)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Profile signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	signed, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return signed, cert
}

func wifiProfile(t *testing.T) []byte {
	t.Helper()
	p, err := plist.Marshal(map[string]any{"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": "org.fleet.wifi",
		"PayloadUUID": "3D4E5F60-7182-4394-A5B6-C7D8E9F0A1B2", "PayloadDisplayName": "Office Wi-Fi",
		"PayloadContent": []map[string]any{{"PayloadType": "com.apple.wifi.managed", "PayloadVersion": 1,
			"PayloadIdentifier": "org.fleet.wifi.payload", "PayloadUUID": "4E5F6071-8293-44A5-B6C7-D8E9F0A1B2C3"}}}, plist.XMLFormat)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// listed decodes a ProfileList result as the server does.
func listed(t *testing.T, res map[string]any) []mdmproto.InstalledProfile {
	t.Helper()
	b, err := plist.Marshal(res, plist.XMLFormat)
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		List []mdmproto.InstalledProfile `plist:"ProfileList"`
	}
	if _, err := plist.Unmarshal(b, &w); err != nil || w.List == nil {
		t.Fatalf("ProfileList result %v: %v", res, err)
	}
	return w.List
}

// TestProfileListReportsWhatTheDeviceHolds: the device channel lists the
// enrolment profile (with its signer) and what InstallProfile installed,
// until RemoveProfile takes it, each with the keys profile.list.yaml
// requires (PayloadUUID, PayloadIdentifier; a payload's PayloadType,
// PayloadVersion, PayloadIdentifier, and from iOS 17 its PayloadUUID).
func TestProfileListReportsWhatTheDeviceHolds(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	signed, signer := signedProfile(t, key)
	d := NewWithKey(nil, false, key)
	if err := d.useProfile(signed); err != nil {
		t.Fatal(err)
	}
	if r := d.answer("1", map[string]any{"RequestType": "InstallProfile", "Payload": wifiProfile(t)}); r["Status"] != "Acknowledged" {
		t.Fatalf("InstallProfile: %v", r)
	}
	for _, managedOnly := range []bool{false, true} {
		list := listed(t, d.answer("2", map[string]any{"RequestType": "ProfileList", "ManagedOnly": managedOnly}))
		if len(list) != 2 {
			t.Fatalf("ManagedOnly %v: %d profiles, want the enrolment profile and the Wi-Fi one: %+v", managedOnly, len(list), list)
		}
		enrolment, wifi := list[0], list[1]
		if enrolment.PayloadIdentifier != "com.example.mdm.enrolment" || enrolment.PayloadUUID != "9F1C3A52-0D4E-4B7A-8C21-5E6F7A8B9C0D" ||
			enrolment.PayloadDisplayName != "Example MDM" || enrolment.PayloadOrganization != "Example Org" || enrolment.PayloadVersion != 1 ||
			len(enrolment.SignerCertificates) != 1 || !signer.Equal(mustParse(t, enrolment.SignerCertificates[0])) ||
			enrolment.IsManaged == nil || !*enrolment.IsManaged || len(enrolment.PayloadContent) != 2 ||
			enrolment.PayloadContent[1].PayloadType != "com.apple.mdm" || enrolment.PayloadContent[1].PayloadUUID != "2C3D4E5F-6071-4283-94A5-B6C7D8E9F0A1" {
			t.Errorf("enrolment profile: %+v", enrolment)
		}
		if wifi.PayloadIdentifier != "org.fleet.wifi" || wifi.PayloadUUID != "3D4E5F60-7182-4394-A5B6-C7D8E9F0A1B2" || wifi.PayloadDisplayName != "Office Wi-Fi" ||
			len(wifi.SignerCertificates) != 0 || len(wifi.PayloadContent) != 1 || wifi.PayloadContent[0].PayloadType != "com.apple.wifi.managed" ||
			wifi.PayloadContent[0].PayloadIdentifier != "org.fleet.wifi.payload" || wifi.PayloadContent[0].PayloadVersion != 1 ||
			wifi.PayloadContent[0].PayloadUUID != "4E5F6071-8293-44A5-B6C7-D8E9F0A1B2C3" {
			t.Errorf("installed profile: %+v", wifi)
		}
	}
	d.answer("3", map[string]any{"RequestType": "RemoveProfile", "Identifier": "org.fleet.wifi"})
	if list := listed(t, d.answer("4", map[string]any{"RequestType": "ProfileList"})); len(list) != 1 || list[0].PayloadIdentifier != "com.example.mdm.enrolment" {
		t.Errorf("after RemoveProfile: %+v", list)
	}
	// An iOS 16 device leaves out payloads' PayloadUUID; a Mac, and a
	// supervised device, IsManaged.
	d.OSVersion = "16.7"
	if list := listed(t, d.answer("5", map[string]any{"RequestType": "ProfileList"})); list[0].PayloadContent[0].PayloadUUID != "" || list[0].PayloadUUID == "" {
		t.Errorf("iOS 16: %+v", list[0])
	}
	d.Model, d.ProductName, d.OSVersion = "Mac14,2", "Mac14,2", "15.1"
	if list := listed(t, d.answer("6", map[string]any{"RequestType": "ProfileList"})); list[0].IsManaged != nil || list[0].PayloadContent[0].PayloadUUID == "" {
		t.Errorf("Mac: %+v", list[0])
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUserChannelProfileList: a user's ProfileList lists the profiles
// installed in the account, each with its PayloadUUID.
func TestUserChannelProfileList(t *testing.T) {
	d, s := standInDevice(t)
	d.Model, d.ProductName, d.OSVersion = "Mac14,2", "Mac14,2", "15.1"
	u := d.NewUser("jdoe", "Jane Doe")
	s.send("1", map[string]any{"RequestType": "InstallProfile", "Payload": wifiProfile(t)})
	s.send("2", map[string]any{"RequestType": "ProfileList"})
	if n, err := u.Poll(context.Background()); err != nil || n != 2 {
		t.Fatalf("Poll: %d, %v", n, err)
	}
	list := listed(t, s.results[1])
	if len(list) != 1 || list[0].PayloadIdentifier != "org.fleet.wifi" || list[0].PayloadUUID != "3D4E5F60-7182-4394-A5B6-C7D8E9F0A1B2" ||
		list[0].IsManaged != nil || len(list[0].PayloadContent) != 1 {
		t.Errorf("user channel ProfileList: %+v", list)
	}
	if s.results[1]["UserShortName"] != "jdoe" {
		t.Errorf("the result is not the user's: %v", s.results[1])
	}
}

// TestInstalledApplicationListByEnrolment: a device-enrolled device lists
// every app unless asked for managed ones, personally owned or not (it does
// not know); a User Enrollment lists managed apps only, asked or not. The
// list is there even empty.
func TestInstalledApplicationListByEnrolment(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	apps := func(d *Device, managedOnly bool) int {
		cmd := map[string]any{"RequestType": "InstalledApplicationList"}
		if managedOnly {
			cmd["ManagedAppsOnly"] = true
		}
		b, err := plist.Marshal(d.answer("1", cmd), plist.XMLFormat)
		if err != nil {
			t.Fatal(err)
		}
		var res struct{ InstalledApplicationList []map[string]any }
		if _, err := plist.Unmarshal(b, &res); err != nil || res.InstalledApplicationList == nil {
			t.Fatalf("no InstalledApplicationList in %s: %v", b, err)
		}
		return len(res.InstalledApplicationList)
	}
	personal := NewWithKey(nil, false, key)
	personal.Personal = true
	userEnrolled := NewWithKey(nil, true, key)
	userEnrolled.Personal = true
	tampered := NewWithKey(nil, true, key)
	tampered.IgnoresManagedAppsOnly = true
	empty := NewWithKey(nil, false, key)
	empty.Apps = 0
	for _, c := range []struct {
		name        string
		d           *Device
		managedOnly bool
		want        int
	}{
		{"personal, device enrolment, all apps", personal, false, 40},
		{"personal, device enrolment, managed apps", personal, true, 10},
		{"User Enrollment, all apps", userEnrolled, false, 10},
		{"User Enrollment, managed apps", userEnrolled, true, 10},
		{"tampered User Enrollment", tampered, false, 40},
		{"no apps", empty, false, 0},
	} {
		if got := apps(c.d, c.managedOnly); got != c.want {
			t.Errorf("%s: %d apps, want %d", c.name, got, c.want)
		}
	}
}
