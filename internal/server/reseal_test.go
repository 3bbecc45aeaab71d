package server

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/notify/mail"
	"github.com/steward-mdm/steward/internal/notify/mail/mailtest"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestMasterKeyRotationResealsEverySecret: a master-key rotation re-seals
// every secret sealed under the old key, so that nothing needs it once it
// is destroyed: the SCEP keys and the push certificate (without which no
// device enrols, renews or is woken), an open command's payload, an
// escrowed unlock token, a profile's secret, a report schedule's password,
// an admin's authenticator secret and a Mac lock's PIN. The CA then opens
// under the new key alone.
func TestMasterKeyRotationResealsEverySecret(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, phoneID := f.enrol("corporate", "", "", nil)
		_, macID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Office Wi-Fi", Definition: wifiProfile("org.fleet.wifi")}, nil)
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/commands"), api.CommandRequest{RequestType: "SecurityInfo"}, nil)
		f.must(201, f.owner, "POST", f.path("/devices/"+macID+"/actions"),
			api.DeviceActionRequest{Action: actions.Lock, Reason: "left on the night train", Options: actions.Options{PIN: "482913"}}, nil)
		mailer, err := mail.New(mailtest.Start(t).Config())
		if err != nil {
			t.Fatal(err)
		}
		f.app.Compliance.SetMailer(mailer, f.app.MDM.PublicURL)
		auditorID, auditor := f.admin("auditor@fleet.test", "auditor")
		f.must(200, auditor, "POST", "/api/v1/me/mfa/enroll", nil, nil) // an authenticator secret, sealed
		f.must(201, f.owner, "POST", f.path("/report-schedules"), compliance.ScheduleInput{Kind: "inventory", Format: "csv",
			Every: "weekly", Recipients: []string{auditorID}}, nil)

		oldKey, err := secrets.LoadMasterKey("", f.app.Config.MasterKeyFile, false)
		if err != nil {
			t.Fatal(err)
		}
		newKey := make([]byte, secrets.KeySize)
		_, _ = rand.Read(newKey)
		ring, err := secrets.NewKeyring(newKey, oldKey)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			n, err = ResealSecrets(f.ctx, q, ring)
			return err
		}); err != nil {
			t.Fatal(err)
		}

		// Nothing is left under the old key.
		stillOld := func(sealed []byte) bool { return secrets.SealedBy(sealed) == ring.KeyID() }
		found := errors.New("still under the old key")
		for _, col := range store.SealedColumns() {
			_, err := st.Read().Sealed().Reseal(f.ctx, col, stillOld, func(r store.SealedRow) ([]byte, error) { return nil, found })
			if err != nil {
				t.Errorf("sealed column %d: %v", col, err)
			}
		}
		settings := 0
		for _, prefix := range []string{"scep-ca:", "scep-issuer:", "scep-ra:", "apns-cert:"} {
			page, err := st.Read().Settings().ListPrefix(f.ctx, prefix, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page {
				sealed := s.Value
				if prefix != "apns-cert:" {
					var stored struct {
						Key []byte `json:"key"`
					}
					if err := json.Unmarshal(s.Value, &stored); err != nil {
						t.Fatalf("%s: %v", s.Key, err)
					}
					sealed = stored.Key
				}
				settings++
				if secrets.SealedBy(sealed) != ring.KeyID() {
					t.Errorf("%s is still under the old key", s.Key)
				}
			}
		}
		if settings < 3 || n < settings+6 {
			t.Errorf("%d values re-sealed, %d of them keys in settings; want the CA, issuing CA and push certificate, and six more", n, settings)
		}
		current, _ := secrets.NewSealer(newKey)
		if _, err := scep.OpenCA(f.ctx, st.Read().Settings(), current, f.tenant, "Fleet Org"); err != nil {
			t.Errorf("the CA under the new key alone: %v", err)
		}
	})
}
