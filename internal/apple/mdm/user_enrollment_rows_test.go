package mdm_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// rawDatabase is the SQLite file and its write-ahead log, as a backup or a
// stolen disk would hold them.
func rawDatabase(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestUserEnrollmentStoresNoIdentifier: a user-enrolled iPhone that names
// its hardware anyway, in Authenticate, TokenUpdate and a DeviceInformation
// answer beyond what it was asked, leaves none of it in the database, not
// even its EnrollmentID in clear.
func TestUserEnrollmentStoresNoIdentifier(t *testing.T) {
	path := filepath.Join(t.TempDir(), "steward.db")
	f := newFixture(t, storetest.OpenSQLiteAt(t, path))
	f.publish(privacy.UserEnrolled)
	ts := f.serve()
	link := f.invite(privacy.UserEnrolled, f.subject("erika@acme.test"))
	d, err := sim.New(ts.Client(), true)
	if err != nil {
		t.Fatal(err)
	}
	d.Personal, d.Account = true, "erika@acme.test"
	if err := d.Prepare(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	const udid, serial, imei = "00008130-UDIDMARKER0001", "SERIALMARKER9", "35 IMEIMARKER 7"
	if _, err := d.Checkin(f.ctx, map[string]any{"MessageType": "Authenticate", "Topic": testTopic, "EnrollmentID": d.EnrollmentID,
		"UDID": udid, "SerialNumber": serial, "IMEI": imei, "MEID": "MEIDMARKER", "DeviceName": "NAMEMARKER iPhone",
		"ProductName": "iPhone16,2", "OSVersion": "18.1"}); err != nil {
		t.Fatal(err)
	}
	tu := d.TokenUpdate()
	tu["UnlockToken"] = []byte("UNLOCKMARKER")
	if _, err := d.Checkin(f.ctx, tu); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(d.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	f.answer(t, d, ch.DeviceID, mdmproto.DeviceInformation{}, map[string]any{"QueryResponses": map[string]any{
		"UDID": udid, "SerialNumber": serial, "IMEI": imei, "WiFiMAC": "aa:bb:cc:MA:C0:01", "DeviceName": "NAMEMARKER iPhone",
		"OSVersion": "18.1", "PhoneNumber": "+49PHONEMARKER"}})
	raw := rawDatabase(t, path)
	for _, m := range []string{"UDIDMARKER", "SERIALMARKER", "IMEIMARKER", "MEIDMARKER", "NAMEMARKER", "MA:C0:01", "PHONEMARKER",
		"UNLOCKMARKER", d.EnrollmentID} {
		if bytes.Contains(raw, []byte(m)) {
			t.Errorf("the database holds %q", m)
		}
	}
	if !bytes.Contains(raw, []byte("os.version")) {
		t.Error("the scan found no stored plaintext: is it reading the data?")
	}
}

// TestUserEnrolledMacStoresNoAccount: a user-enrolled Mac's user channel
// keeps none of the user's names or IDs, nor a UDID an Idle names.
func TestUserEnrolledMacStoresNoAccount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "steward.db")
	f := newFixture(t, storetest.OpenSQLiteAt(t, path))
	f.publish(privacy.UserEnrolled)
	ts := f.serve()
	laptop, dev := f.enrolledWith(ts, privacy.UserEnrolled, f.subject("erika@acme.test"), mac)
	if _, err := laptop.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	user := laptop.NewUser("ERIKASHORTMARK", "ERIKALONGMARK")
	if err := user.LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	chs, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
	if err != nil || len(chs) != 1 {
		t.Fatalf("user channels: %v, %v", chs, err)
	}
	if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, chs[0].ID, mdmproto.ProfileList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := user.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	_, _ = laptop.Send(f.ctx, map[string]any{"Status": "Idle", "UDID": "MACUDIDMARKER"}) // refused or not, nothing of it is kept
	raw := rawDatabase(t, path)
	for _, m := range []string{"ERIKASHORTMARK", "ERIKALONGMARK", "MACUDIDMARKER", user.EnrollmentUserID, user.ID, laptop.EnrollmentID} {
		if bytes.Contains(raw, []byte(m)) {
			t.Errorf("the database holds %q", m)
		}
	}
	if !bytes.Contains(raw, []byte("ProfileList")) {
		t.Error("the scan found no stored plaintext: is it reading the data?")
	}
}
