package privacy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func newKey(t *testing.T) []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func TestTenantKeyRotationRewrapsWithoutReencrypting(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		d := f.device(erika.ID, privacy.Corporate)
		f.ingest(deviceInformation(f, d.ID))
		q := f.st.Read()
		before, _ := q.Keys().GetKeyset(f.ctx, f.tenant)
		valuesBefore, _ := q.Inventory().Current(f.ctx, f.tenant, d.ID)
		keyBefore, _ := q.Keys().DataKeyByOwner(f.ctx, f.tenant, keys.DeviceOwner(d.ID))

		rotate := func() keys.RotationResult {
			var res keys.RotationResult
			err := f.st.Tx(f.ctx, func(q store.Queries) error {
				var err error
				res, err = f.svc.Vault().RotateTenant(f.ctx, q, f.tenant, nil)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		// The previous primary survives one rotation (late wraps by other
		// nodes stay readable) and goes with the next.
		nodeB := privacy.NewService(f.st, keys.New(f.sealer), f.signer, nil)
		if _, err := nodeB.FindSubjectByEmail(f.ctx, f.tenant, "erika@acme.test"); err != nil { // caches the keyset
			t.Fatal(err)
		}
		f.svc.Vault().SetClock(func() time.Time { return f.now.Add(time.Minute) }) // a minute after the keyset was made
		if res := rotate(); res.DataKeys != 2 || res.RetiredIDs != 0 {
			t.Fatalf("first rotation: %+v", res)
		}
		// Node B still wraps with the cached previous primary: that stays readable.
		late, err := nodeB.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "late@acme.test"}, admin)
		if err != nil {
			t.Fatal(err)
		}
		fresh := privacy.NewService(f.st, keys.New(f.sealer), f.signer, nil)
		if p, err := fresh.OpenProfile(f.ctx, f.st.Read(), late); err != nil || p.Email != "late@acme.test" {
			t.Fatalf("a key wrapped by a node with a stale keyset: %+v %v", p, err)
		}
		// Not again before every node has dropped the keyset it cached:
		// the rotation after next deletes that keyset's primary.
		err = f.st.Tx(f.ctx, func(q store.Queries) error {
			_, err := f.svc.Vault().RotateTenant(f.ctx, q, f.tenant, nil)
			return err
		})
		if !errors.Is(err, keys.ErrRotatedRecently) {
			t.Fatalf("a second rotation at once: %v, want ErrRotatedRecently", err)
		}
		f.svc.Vault().SetClock(func() time.Time { return f.now.Add(time.Minute + keys.RotationSpacing) })
		if res := rotate(); res.DataKeys != 3 || res.RetiredIDs != 1 {
			t.Fatalf("second rotation: %+v", res)
		}
		if p, err := privacy.NewService(f.st, keys.New(f.sealer), f.signer, nil).OpenProfile(f.ctx, f.st.Read(), late); err != nil || p.Email != "late@acme.test" {
			t.Fatalf("the late key after the second rotation: %+v %v", p, err)
		}
		after, _ := q.Keys().GetKeyset(f.ctx, f.tenant)
		keyAfter, _ := q.Keys().DataKeyByOwner(f.ctx, f.tenant, keys.DeviceOwner(d.ID))
		valuesAfter, _ := q.Inventory().Current(f.ctx, f.tenant, d.ID)
		if bytes.Equal(before.AEADKeyset, after.AEADKeyset) || bytes.Equal(keyBefore.Wrapped, keyAfter.Wrapped) {
			t.Error("the keyset or the wrapped data key did not change")
		}
		for i := range valuesBefore {
			if !bytes.Equal(valuesBefore[i].Ciphertext, valuesAfter[i].Ciphertext) {
				t.Errorf("%s was re-encrypted", valuesBefore[i].Field)
			}
		}
		// A fresh vault (another node) reads everything under the new keyset.
		other := privacy.NewService(f.st, keys.New(f.sealer), f.signer, nil)
		v, err := other.ViewDevice(f.ctx, f.tenant, d.ID, privacy.Viewer{Actor: admin, AdminID: admin.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, fv := range v.Fields {
			if fv.Unreadable != "" {
				t.Errorf("%s unreadable after rotation: %s", fv.Field, fv.Unreadable)
			}
		}
		// The old keyset no longer opens the re-wrapped key: the old key is gone.
		if bytes.Contains(after.AEADKeyset, before.AEADKeyset) {
			t.Error("the old keyset survives inside the new one")
		}
	})
}

func TestMasterKeyRotation(t *testing.T) {
	st := storetest.OpenSQLite(t)
	oldKey, newKey := newKey(t), newKey(t)
	oldSealer, _ := secrets.NewSealer(oldKey)
	f := newFixtureWithSealer(t, st, oldSealer)
	erika := f.person("erika@acme.test")
	d := f.device(erika.ID, privacy.Corporate)
	f.ingest(deviceInformation(f, d.ID))

	// Step 1: nodes run with the new key first and the old one as previous.
	ring, err := secrets.NewKeyring(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	rotating := privacy.NewService(st, keys.New(ring), f.signer, nil)
	job := []store.ResealJob{rotating.Vault().MasterResealJob(ring)}
	if n, err := store.RunReseal(f.ctx, st, job, store.ResealPageSize, nil); err != nil || n != 1 {
		t.Fatalf("master rotation: %d keysets, %v; want 1", n, err)
	}
	if n, err := store.RunReseal(f.ctx, st, job, store.ResealPageSize, nil); err != nil || n != 0 {
		t.Fatalf("master rotation again: %d keysets, %v; want none", n, err)
	}
	// Step 3: the old key is gone; everything opens with the new one alone.
	newOnly, _ := secrets.NewSealer(newKey)
	after := privacy.NewService(st, keys.New(newOnly), f.signer, nil)
	v, err := after.ViewDevice(f.ctx, f.tenant, d.ID, privacy.Viewer{Actor: admin, AdminID: admin.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Fields) == 0 {
		t.Fatal("no fields")
	}
	for _, fv := range v.Fields {
		if fv.Unreadable != "" {
			t.Errorf("%s: %s", fv.Field, fv.Unreadable)
		}
	}
	// With only the old key nothing opens: the keysets really moved.
	stale := privacy.NewService(st, keys.New(oldSealer), f.signer, nil)
	if _, err := stale.ViewDevice(f.ctx, f.tenant, d.ID, privacy.Viewer{Actor: admin, AdminID: admin.ID}); err == nil {
		t.Error("the retired master key still opens the tenant keyset")
	}
}

// racingKeys is a key store on which another rotation of the tenant
// commits while this one runs. Until the data keys are read, its keyset
// reads see stale, when set; race runs just before this one writes its
// keyset, on the same transaction.
type racingKeys struct {
	store.KeyStore
	q     store.Queries
	stale *store.TenantKeyset
	race  func(ctx context.Context, q store.Queries) error
}

func (r *racingKeys) GetKeyset(ctx context.Context, tenantID string) (store.TenantKeyset, error) {
	if r.stale != nil {
		return *r.stale, nil
	}
	return r.KeyStore.GetKeyset(ctx, tenantID)
}

func (r *racingKeys) ListDataKeys(ctx context.Context, tenantID string, p store.Page) ([]store.DataKey, error) {
	r.stale = nil
	return r.KeyStore.ListDataKeys(ctx, tenantID, p)
}

func (r *racingKeys) SwapKeyset(ctx context.Context, old []byte, k store.TenantKeyset) (bool, error) {
	if r.race != nil {
		if err := r.race(ctx, r.q); err != nil {
			return false, err
		}
	}
	return r.KeyStore.SwapKeyset(ctx, old, k)
}

type racingQueries struct {
	store.Queries
	keys store.KeyStore
}

func (r racingQueries) Keys() store.KeyStore { return r.keys }

// TestTenantRotationOvertaken: a rotation whose keyset changed while it
// ran changes nothing. Overtaken by another rotation, it says it need not
// be repeated (writing its keyset over the other's would orphan the data
// keys the other re-wrapped), whether it notices at its write or at the
// data keys. When a master-key rotation re-sealed the same keys, it asks
// to be run again.
func TestTenantRotationOvertaken(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		oldKey, newKey := newKey(t), newKey(t)
		oldSealer, _ := secrets.NewSealer(oldKey)
		ring, err := secrets.NewKeyring(newKey, oldKey)
		if err != nil {
			t.Fatal(err)
		}
		f := newFixtureWithSealer(t, st, oldSealer)
		erika := f.person("erika@acme.test")
		d := f.device(erika.ID, privacy.Corporate)
		f.ingest(deviceInformation(f, d.ID))
		// The command line during a master-key rotation: both keys.
		rotating := keys.New(ring)
		rotating.SetClock(func() time.Time { return f.now.Add(time.Minute) })
		rotate := func(r *racingKeys) error {
			return st.Tx(f.ctx, func(q store.Queries) error {
				r.KeyStore, r.q = q.Keys(), q
				_, err := rotating.RotateTenant(f.ctx, racingQueries{Queries: q, keys: r}, f.tenant, nil)
				return err
			})
		}
		snapshot := func() (store.TenantKeyset, store.DataKey) {
			k, err := st.Read().Keys().GetKeyset(f.ctx, f.tenant)
			if err != nil {
				t.Fatal(err)
			}
			dk, err := st.Read().Keys().DataKeyByOwner(f.ctx, f.tenant, keys.DeviceOwner(d.ID))
			if err != nil {
				t.Fatal(err)
			}
			return k, dk
		}
		unchanged := func(what string, k store.TenantKeyset, dk store.DataKey) {
			t.Helper()
			if nowK, nowDK := snapshot(); !bytes.Equal(nowK.AEADKeyset, k.AEADKeyset) || !bytes.Equal(nowDK.Wrapped, dk.Wrapped) {
				t.Errorf("%s changed the keyset or a data key", what)
			}
		}

		// At its write: another rotation's keyset is there now. That
		// keyset is a real rotation's, made and rolled back beforehand.
		k0, dk0 := snapshot()
		var another store.TenantKeyset
		rollBack := errors.New("rolled back")
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			if _, err := keys.New(ring).RotateTenant(f.ctx, q, f.tenant, nil); err != nil {
				return err
			}
			var err error
			if another, err = q.Keys().GetKeyset(f.ctx, f.tenant); err != nil {
				return err
			}
			return rollBack
		}); !errors.Is(err, rollBack) {
			t.Fatal(err)
		}
		overtake := func(k store.TenantKeyset) *racingKeys {
			return &racingKeys{race: func(ctx context.Context, q store.Queries) error {
				_, err := q.Keys().SwapKeyset(ctx, k0.AEADKeyset, k)
				return err
			}}
		}
		if err := rotate(overtake(another)); !errors.Is(err, keys.ErrOvertaken) || !strings.Contains(err.Error(), "need not be repeated") {
			t.Errorf("a rotation overtaken at its write: %v, want ErrOvertaken", err)
		}
		unchanged("a rotation overtaken at its write", k0, dk0)
		// A keyset this host cannot open is no proof of another rotation.
		unreadable := k0
		unreadable.AEADKeyset = append([]byte("sealed under a key this host lacks: "), k0.AEADKeyset...)
		if err := rotate(overtake(unreadable)); !errors.Is(err, store.ErrConflict) || errors.Is(err, keys.ErrOvertaken) ||
			!strings.Contains(err.Error(), "run the rotation again with the current keys") {
			t.Errorf("a rotation whose keyset changed into one it cannot open: %v, want a conflict asking to run it again", err)
		}
		unchanged("a rotation whose keyset became unreadable", k0, dk0)

		// At the data keys: another rotation committed after this one read
		// the keyset, and the data keys no longer unwrap with it.
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			_, err := f.svc.Vault().RotateTenant(f.ctx, q, f.tenant, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		k1, dk1 := snapshot()
		if err := rotate(&racingKeys{stale: &k0}); !errors.Is(err, keys.ErrOvertaken) {
			t.Errorf("a rotation overtaken before its data keys: %v, want ErrOvertaken", err)
		}
		unchanged("a rotation overtaken before its data keys", k1, dk1)

		// A master-key rotation re-sealed the same keys meanwhile.
		rotating.SetClock(func() time.Time { return f.now.Add(time.Minute + keys.RotationSpacing) })
		err = rotate(&racingKeys{race: func(ctx context.Context, q store.Queries) error {
			page, err := keys.New(ring).MasterResealJob(ring).Page(ctx, q, "", 100)
			if err == nil && page.Written != 1 {
				err = fmt.Errorf("the master-key re-seal wrote %d keysets, want 1", page.Written)
			}
			return err
		}})
		if !errors.Is(err, store.ErrConflict) || errors.Is(err, keys.ErrOvertaken) || !strings.Contains(err.Error(), "run the rotation again") {
			t.Errorf("a rotation whose keyset a master-key rotation re-sealed: %v, want a conflict asking to run it again", err)
		}
		unchanged("a rotation whose keyset was re-sealed", k1, dk1)

		// A rotation under both keys leaves both keysets under the new
		// one: blind indexes still work once the old key is gone.
		rotating.SetClock(func() time.Time { return f.now.Add(time.Minute + 2*keys.RotationSpacing) })
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			_, err := rotating.RotateTenant(f.ctx, q, f.tenant, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		newOnly, _ := secrets.NewSealer(newKey)
		if _, err := privacy.NewService(st, keys.New(newOnly), f.signer, nil).FindSubjectByEmail(f.ctx, f.tenant, "erika@acme.test"); err != nil {
			t.Errorf("a blind-index lookup under the new key alone after a rotation under both: %v", err)
		}
	})
}
