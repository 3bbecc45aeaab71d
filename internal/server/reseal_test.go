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
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/notify/mail"
	"github.com/steward-mdm/steward/internal/notify/mail/mailtest"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestMasterKeyRotationResealsEverySecret: a master-key rotation re-seals
// every secret sealed under the old key, so that nothing needs it once it
// is destroyed: the SCEP keys and the push certificate (without which no
// device enrols, renews or is woken), an open command's payload, a
// profile's secret, a report schedule's password,
// an admin's authenticator secret, a Mac lock's PIN, one kept past its
// Mac's departure and a waiting wipe's options, and every tenant keyset, each a page per transaction. The CA
// then opens under the new key alone.
func TestMasterKeyRotationResealsEverySecret(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, phoneID := f.enrol("corporate", "", "", nil)
		_, macID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		f.must(201, f.owner, "POST", f.path("/profiles"), device.ProfileInput{Name: "Office Wi-Fi", Definition: wifiProfile("org.fleet.wifi")}, nil)
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/commands"), api.CommandRequest{RequestType: "SecurityInfo"}, nil)
		f.must(201, f.owner, "POST", f.path("/devices/"+macID+"/actions"),
			api.DeviceActionRequest{Action: actions.Lock, Reason: "left on the night train", Options: actions.Options{PIN: "482913"}}, nil)
		// A Mac retired at its lock: its PIN is kept past its record.
		gone, goneID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		f.must(201, f.owner, "POST", f.path("/devices/"+goneID+"/actions"),
			api.DeviceActionRequest{Action: actions.Lock, Reason: "stolen from the office", Options: actions.Options{PIN: "246802"}}, nil)
		f.poll(gone)
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			_, err := f.app.Privacy.LeaveIn(f.ctx, q, f.tenant, goneID, store.DeviceRetired, "stolen from the office", iam.SystemActor)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		mailer, err := mail.New(mailtest.Start(t).Config())
		if err != nil {
			t.Fatal(err)
		}
		f.app.Compliance.SetMailer(mailer, f.app.MDM.PublicURL)
		auditorID, auditor := f.admin("auditor@fleet.test", "auditor")
		f.must(200, auditor, "POST", "/api/v1/me/mfa/enroll", nil, nil) // an authenticator secret, sealed
		f.must(201, f.owner, "POST", f.path("/report-schedules"), compliance.ScheduleInput{Kind: "inventory", Format: "csv",
			Every: "weekly", Recipients: []string{auditorID}}, nil)

		ring, newKey := rotatedKeyring(t, f)
		wipe := api.DeviceActionRequest{Action: actions.Wipe, Reason: "stolen from the office", Options: actions.Options{PIN: "135790"}}
		var parked actions.Batch
		f.must(201, f.owner, "POST", f.path("/devices/"+macID+"/actions"), wipe, &parked) // options sealed while it awaits approval
		if parked.ApprovalID == "" {
			t.Fatalf("the wipe did not wait for approval: %+v", parked)
		}

		// A page of one: each job takes a transaction per value, and one
		// more to find the end.
		pages := map[string]int{}
		n, err := store.RunReseal(f.ctx, st, MasterResealJobs(keys.New(ring), ring), 1, func(what string, _ int) { pages[what]++ })
		if err != nil {
			t.Fatal(err)
		}
		if pages["tenant keysets"] < 2 || pages["open commands' payloads"] < 3 || pages["approvals' options"] != 2 ||
			pages["departed Macs' Find My PINs"] != 2 {
			t.Errorf("pages per job: %v", pages)
		}

		// Nothing is left under the old key.
		stillOld := func(col store.SealedColumn) func([]byte) bool {
			return func(sealed []byte) bool {
				if col == store.SealedActionApprovals {
					var p struct {
						Options []byte `json:"sealed_options"`
					}
					if err := json.Unmarshal(sealed, &p); err != nil {
						t.Errorf("an approval's payload: %v", err)
					}
					sealed = p.Options
				}
				// An escrowed token is under its device's data key, no master key.
				if col == store.SealedUnlockTokens && secrets.SealedBy(sealed) == "" {
					return true
				}
				return secrets.SealedBy(sealed) == ring.KeyID()
			}
		}
		found := errors.New("still under the old key")
		for _, col := range store.SealedColumns() {
			for after := ""; ; {
				page, err := st.Read().Sealed().Reseal(f.ctx, col, after, 100, stillOld(col), func(r store.SealedRow) ([]byte, error) { return nil, found })
				if err != nil {
					t.Errorf("sealed column %d: %v", col, err)
				}
				if after = page.Next; after == "" {
					break
				}
			}
		}
		keysets, err := st.Read().Keys().ListKeysets(f.ctx, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keysets {
			if k.MasterKeyID != ring.KeyID() {
				t.Errorf("tenant %s's keyset is still under master key %s", k.TenantID, k.MasterKeyID)
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
		if settings < 3 || n < settings+len(keysets)+8 {
			t.Errorf("%d values re-sealed, %d of them keys in settings and %d keysets; want the CA, issuing CA and push certificate, the keysets and eight more",
				n, settings, len(keysets))
		}
		current, _ := secrets.NewSealer(newKey)
		if _, err := scep.OpenCA(f.ctx, st.Read().Settings(), current, f.tenant, "Fleet Org"); err != nil {
			t.Errorf("the CA under the new key alone: %v", err)
		}
	})
}

// rotatedKeyring is a keyring with a new master key, also returned, and
// the server's current one as the previous: what a rotation re-seals with.
func rotatedKeyring(t *testing.T, f *testFleet) (ring secrets.Sealer, newKey []byte) {
	t.Helper()
	oldKey, err := secrets.LoadMasterKey("", f.app.Config.MasterKeyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	newKey = make([]byte, secrets.KeySize)
	_, _ = rand.Read(newKey)
	if ring, err = secrets.NewKeyring(newKey, oldKey); err != nil {
		t.Fatal(err)
	}
	return ring, newKey
}
