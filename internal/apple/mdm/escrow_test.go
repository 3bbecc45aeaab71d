package mdm_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// heldToken is a token a device escrowed, as its channel row (and any
// backup of it) holds it.
type heldToken struct {
	what      string
	deviceID  string
	bootstrap bool // a Bootstrap Token, else an UnlockToken
	plain     string
	stored    []byte
}

// masterAD is what a token escrowed under the master key alone was bound
// to.
func (h heldToken) masterAD() []byte {
	if h.bootstrap {
		return []byte("bootstrap:" + h.deviceID)
	}
	return []byte("unlock:" + h.deviceID)
}

func (f *fixture) storedTokens(t *testing.T, held []heldToken) {
	t.Helper()
	for i, h := range held {
		ch, err := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, h.deviceID)
		if err != nil {
			t.Fatal(err)
		}
		if held[i].stored = ch.UnlockToken; h.bootstrap {
			held[i].stored = ch.Bootstrap
		}
		if held[i].stored == nil {
			t.Fatalf("the %s was not escrowed", h.what)
		}
	}
}

// escrowLegacy writes token into device deviceID's channel as Steward
// escrowed it before tokens went into the vault: sealed under the master
// key, bound to the device's ID.
func (f *fixture) escrowLegacy(t *testing.T, deviceID string, bootstrap bool, token string) []byte {
	t.Helper()
	h := heldToken{deviceID: deviceID, bootstrap: bootstrap}
	sealed, err := f.sealer.Seal([]byte(token), h.masterAD())
	if err != nil {
		t.Fatal(err)
	}
	change := store.ChannelChange{At: f.now, UnlockToken: sealed}
	if bootstrap {
		change = store.ChannelChange{At: f.now, Bootstrap: &sealed}
	}
	if err := f.st.Tx(f.ctx, func(q store.Queries) error { return q.AppleChannels().Change(f.ctx, f.tenant, deviceID, change) }); err != nil {
		t.Fatal(err)
	}
	return sealed
}

func bootstrapOf(t *testing.T, d *sim.Device) string {
	t.Helper()
	out, err := d.Checkin(t.Context(), map[string]any{"MessageType": "GetBootstrapToken", "UDID": d.UDID})
	if err != nil {
		t.Fatalf("GetBootstrapToken: %v", err)
	}
	var got struct{ BootstrapToken []byte }
	if _, err := plist.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return string(got.BootstrapToken)
}

// clearPasscodeToken queues ClearPasscode for device dev (simulated by d,
// whose earlier commands are answered) and returns the UnlockToken the
// device is sent with it.
func (f *fixture) clearPasscodeToken(t *testing.T, d *sim.Device, dev store.Device) string {
	t.Helper()
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ClearPasscode{}, "", admin); err != nil {
		t.Fatalf("ClearPasscode: %v", err)
	}
	out, err := d.Send(f.ctx, map[string]any{"Status": "Idle"})
	var sent struct {
		CommandUUID string
		Command     struct {
			RequestType string
			UnlockToken []byte
		}
	}
	if _, perr := plist.Unmarshal(out, &sent); err != nil || perr != nil || sent.Command.RequestType != "ClearPasscode" {
		t.Fatalf("the device was sent %q (%v, %v); want ClearPasscode", out, err, perr)
	}
	if _, err := d.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": sent.CommandUUID}); err != nil {
		t.Fatal(err)
	}
	return string(sent.Command.UnlockToken)
}

// TestEscrowedTokensDieWithTheDeviceKey: a Mac's Bootstrap Token and an
// iPhone's UnlockToken are escrowed under their device's secrets key, not
// under the master key alone: once the device is deprovisioned (its key
// destroyed), what a backup took of them before opens neither with the
// master key nor through Steward.
func TestEscrowedTokensDieWithTheDeviceKey(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		macSim, macDev := f.enrolledWith(ts, privacy.Corporate, "", mac)
		if _, err := macSim.Checkin(f.ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": macSim.UDID,
			"BootstrapToken": []byte("bootstrap-secret")}); err != nil {
			t.Fatal(err)
		}
		_, phone := f.enrolled(ts, privacy.Corporate, "") // its TokenUpdate carried its unlock token
		held := []heldToken{
			{what: "Mac's Bootstrap Token", deviceID: macDev.ID, bootstrap: true, plain: "bootstrap-secret"},
			{what: "iPhone's UnlockToken", deviceID: phone.ID, plain: "simulated-unlock-token"},
		}
		f.storedTokens(t, held)
		for _, h := range held {
			if _, err := f.sealer.Open(h.stored, h.masterAD()); err == nil {
				t.Errorf("the %s opens with the master key alone", h.what)
			}
			if got, err := f.svc.OpenEscrowed(f.ctx, f.tenant, h.deviceID, h.bootstrap, h.stored); err != nil || string(got) != h.plain {
				t.Errorf("the %s opens as %q (%v); want %q", h.what, got, err, h.plain)
			}
		}

		for _, h := range held {
			if _, err := f.priv.DeprovisionDevice(f.ctx, f.tenant, h.deviceID, "returned to the supplier", admin); err != nil {
				t.Fatal(err)
			}
		}
		for _, h := range held {
			if _, err := f.sealer.Open(h.stored, h.masterAD()); err == nil {
				t.Errorf("the %s a backup holds opens with the master key after its device's departure", h.what)
			}
			if got, err := f.svc.OpenEscrowed(f.ctx, f.tenant, h.deviceID, h.bootstrap, h.stored); !errors.Is(err, keys.ErrKeyDestroyed) {
				t.Errorf("the %s a backup holds, after its device's departure: %q, %v; want %v", h.what, got, err, keys.ErrKeyDestroyed)
			}
		}
	})
}

// TestEscrowedTokensOutliveTheirPersonsErasure: a Bootstrap Token is the
// organisation's credential for its Mac, not data about the Mac's person:
// erasing the person who used the corporate Mac keeps it, and the Mac is
// still handed it.
func TestEscrowedTokensOutliveTheirPersonsErasure(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	macSim, _ := f.enrolledWith(ts, privacy.Corporate, erika, mac)
	if _, err := macSim.Checkin(f.ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": macSim.UDID,
		"BootstrapToken": []byte("bootstrap-secret")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.priv.EraseSubject(f.ctx, f.tenant, erika, "Art 17 request from the employee", admin); err != nil {
		t.Fatal(err)
	}
	if got := bootstrapOf(t, macSim); got != "bootstrap-secret" {
		t.Errorf("the corporate Mac's bootstrap token after its person's erasure: %q; want it kept", got)
	}
}

// TestTokensEscrowedUnderTheMasterKeyStillServe: a token escrowed before
// tokens went into the vault (sealed under the master key alone) still
// serves GetBootstrapToken and ClearPasscode after the upgrade, and moves
// into the vault at its next use: GetBootstrapToken for a Bootstrap
// Token, the device's next TokenUpdate for an UnlockToken.
func TestTokensEscrowedUnderTheMasterKeyStillServe(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		macSim, macDev := f.enrolledWith(ts, privacy.Corporate, "", mac)
		phoneSim, phone := f.polled(ts, privacy.Corporate, "")
		legacy := []heldToken{
			{what: "Mac's Bootstrap Token", deviceID: macDev.ID, bootstrap: true, plain: "legacy-bootstrap"},
			{what: "iPhone's UnlockToken", deviceID: phone.ID, plain: "legacy-unlock"},
		}
		for i, h := range legacy {
			legacy[i].stored = f.escrowLegacy(t, h.deviceID, h.bootstrap, h.plain)
		}

		if got := f.clearPasscodeToken(t, phoneSim, phone); got != "legacy-unlock" {
			t.Errorf("ClearPasscode carries %q; want the unlock token escrowed before the upgrade", got)
		}
		for range 2 { // before and after it moved
			if got := bootstrapOf(t, macSim); got != "legacy-bootstrap" {
				t.Errorf("GetBootstrapToken gives %q; want the token escrowed before the upgrade", got)
			}
		}
		tokenUpdate := phoneSim.TokenUpdate()
		delete(tokenUpdate, "UnlockToken") // sent again only when it changes
		if _, err := phoneSim.Checkin(f.ctx, tokenUpdate); err != nil {
			t.Fatal(err)
		}
		if got := f.clearPasscodeToken(t, phoneSim, phone); got != "legacy-unlock" {
			t.Errorf("ClearPasscode, after the token moved, carries %q; want the one escrowed before the upgrade", got)
		}

		moved := append([]heldToken(nil), legacy...)
		f.storedTokens(t, moved)
		for i, h := range moved {
			if bytes.Equal(h.stored, legacy[i].stored) {
				t.Errorf("the %s escrowed under the master key did not move into the vault", h.what)
				continue
			}
			if _, err := f.sealer.Open(h.stored, h.masterAD()); err == nil {
				t.Errorf("the %s, moved, still opens with the master key alone", h.what)
			}
			if got, err := f.svc.OpenEscrowed(f.ctx, f.tenant, h.deviceID, h.bootstrap, h.stored); err != nil || string(got) != h.plain {
				t.Errorf("the %s, moved, opens as %q (%v); want %q", h.what, got, err, h.plain)
			}
		}
	})
}

// rotatingMaster is a master key an operator replaces: every holder of
// it (the vault, the service) sees the replacement.
type rotatingMaster struct {
	current atomic.Pointer[secrets.Sealer]
}

func newRotatingMaster(t *testing.T) (*rotatingMaster, []byte) {
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	s, err := secrets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	m := &rotatingMaster{}
	m.use(s)
	return m, key
}

func (m *rotatingMaster) use(s secrets.Sealer) { m.current.Store(&s) }

func (m *rotatingMaster) Seal(plaintext, ad []byte) ([]byte, error) {
	return (*m.current.Load()).Seal(plaintext, ad)
}
func (m *rotatingMaster) Open(sealed, ad []byte) ([]byte, error) {
	return (*m.current.Load()).Open(sealed, ad)
}
func (m *rotatingMaster) KeyID() string { return (*m.current.Load()).KeyID() }

// TestMasterKeyRotationKeepsEscrowedTokens: a master-key rotation
// (ResealJobs, with the vault's own job) re-seals the tokens still
// escrowed under the master key, leaves those in the vault as they are,
// and both serve under the new key alone.
func TestMasterKeyRotationKeepsEscrowedTokens(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		master, oldKey := newRotatingMaster(t)
		f.sealer = master
		f.priv = privacy.NewService(st, keys.New(master), f.signer, nil)
		f.priv.SetClock(func() time.Time { return f.now })
		f.publish(privacy.Corporate)
		ts := f.serve()

		vaultMac, vaultMacDev := f.enrolledWith(ts, privacy.Corporate, "", mac)
		if _, err := vaultMac.Checkin(f.ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": vaultMac.UDID,
			"BootstrapToken": []byte("vault-bootstrap")}); err != nil {
			t.Fatal(err)
		}
		legacyMac, legacyMacDev := f.enrolledWith(ts, privacy.Corporate, "", mac)
		vaultPhone, vaultPhoneDev := f.polled(ts, privacy.Corporate, "")
		legacyPhone, legacyPhoneDev := f.polled(ts, privacy.Corporate, "")
		f.escrowLegacy(t, legacyMacDev.ID, true, "legacy-bootstrap")
		f.escrowLegacy(t, legacyPhoneDev.ID, false, "legacy-unlock")
		held := []heldToken{
			{what: "Bootstrap Token in the vault", deviceID: vaultMacDev.ID, bootstrap: true, plain: "vault-bootstrap"},
			{what: "Bootstrap Token under the master key", deviceID: legacyMacDev.ID, bootstrap: true, plain: "legacy-bootstrap"},
			{what: "UnlockToken in the vault", deviceID: vaultPhoneDev.ID, plain: "simulated-unlock-token"},
			{what: "UnlockToken under the master key", deviceID: legacyPhoneDev.ID, plain: "legacy-unlock"},
		}
		f.storedTokens(t, held)

		newKey := make([]byte, secrets.KeySize)
		_, _ = rand.Read(newKey)
		ring, err := secrets.NewKeyring(newKey, oldKey)
		if err != nil {
			t.Fatal(err)
		}
		master.use(ring)
		jobs := append([]store.ResealJob{f.priv.Vault().MasterResealJob(master)}, mdm.ResealJobs(master)...)
		if _, err := store.RunReseal(f.ctx, st, jobs, store.ResealPageSize, nil); err != nil {
			t.Fatalf("the rotation: %v", err)
		}
		current, _ := secrets.NewSealer(newKey)
		master.use(current) // the old key is gone
		f.priv.Vault().Forget(f.tenant)

		after := append([]heldToken(nil), held...)
		f.storedTokens(t, after)
		for i, h := range after {
			vault := i%2 == 0
			if unchanged := bytes.Equal(h.stored, held[i].stored); unchanged != vault {
				t.Errorf("the %s: unchanged %v by the rotation, want %v", h.what, unchanged, vault)
			}
			if !vault && secrets.SealedBy(h.stored) != current.KeyID() {
				t.Errorf("the %s is not under the new master key", h.what)
			}
		}
		for _, c := range []struct {
			d    *sim.Device
			want string
		}{{vaultMac, "vault-bootstrap"}, {legacyMac, "legacy-bootstrap"}} {
			if got := bootstrapOf(t, c.d); got != c.want {
				t.Errorf("GetBootstrapToken after the rotation gives %q; want %q", got, c.want)
			}
		}
		for _, c := range []struct {
			d    *sim.Device
			dev  store.Device
			want string
		}{{vaultPhone, vaultPhoneDev, "simulated-unlock-token"}, {legacyPhone, legacyPhoneDev, "legacy-unlock"}} {
			if got := f.clearPasscodeToken(t, c.d, c.dev); got != c.want {
				t.Errorf("ClearPasscode after the rotation carries %q; want %q", got, c.want)
			}
		}
	})
}

// TestBootstrapTokenFromAMacOnly: only a Mac sends SetBootstrapToken and
// GetBootstrapToken. Another device sending them gets 400, and nothing is
// kept, moved, handed back or audited, even where a token was kept before
// the rule; a device that has not named its platform yet is not guessed
// at.
func TestBootstrapTokenFromAMacOnly(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		ipad := func(d *sim.Device) { d.Model, d.ProductName = "iPad13,18", "iPad13,18" }
		for _, adjust := range []func(*sim.Device){nil, ipad} {
			d, dev := f.enrolledWith(ts, privacy.Corporate, "", adjust)
			f.escrowLegacy(t, dev.ID, true, "kept before the rule")
			before := storetest.AllValues(t, st)
			for _, msg := range []map[string]any{
				{"MessageType": "SetBootstrapToken", "UDID": d.UDID, "BootstrapToken": []byte("bootstrap-secret")},
				{"MessageType": "SetBootstrapToken", "UDID": d.UDID},
				{"MessageType": "GetBootstrapToken", "UDID": d.UDID},
			} {
				out, err := d.Checkin(f.ctx, msg)
				if got := status(t, err); got != http.StatusBadRequest || bytes.Contains(out, []byte("kept before the rule")) {
					t.Errorf("%s from %s: %d %q; want 400", msg["MessageType"], dev.Platform, got, out)
				}
			}
			if !bytes.Equal(storetest.AllValues(t, st), before) {
				t.Errorf("bootstrap messages from %s changed the database", dev.Platform)
			}
		}

		unnamed, _ := f.enrolledWith(ts, privacy.Corporate, "", func(d *sim.Device) { d.Model, d.ProductName = "", "" })
		if _, err := unnamed.Checkin(f.ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": unnamed.UDID,
			"BootstrapToken": []byte("bootstrap-secret")}); err != nil {
			t.Fatalf("SetBootstrapToken from a device that has not named its platform: %v", err)
		}
		if got := bootstrapOf(t, unnamed); got != "bootstrap-secret" {
			t.Errorf("GetBootstrapToken from a device that has not named its platform gives %q", got)
		}
	})
}
