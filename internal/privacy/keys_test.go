package privacy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
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
// commits just before this one writes its keyset.
type racingKeys struct {
	store.KeyStore
	race func(ctx context.Context, k store.TenantKeyset) error
}

func (r racingKeys) SwapKeyset(ctx context.Context, old []byte, k store.TenantKeyset) (bool, error) {
	if err := r.race(ctx, k); err != nil {
		return false, err
	}
	return r.KeyStore.SwapKeyset(ctx, old, k)
}

type racingQueries struct {
	store.Queries
	keys store.KeyStore
}

func (r racingQueries) Keys() store.KeyStore { return r.keys }

// TestTenantRotationOvertaken: a rotation that another one overtook
// changes nothing, and says it need not be repeated: writing its keyset
// over the other's would orphan the data keys the other re-wrapped.
func TestTenantRotationOvertaken(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		d := f.device(erika.ID, privacy.Corporate)
		f.ingest(deviceInformation(f, d.ID))
		before, err := st.Read().Keys().GetKeyset(f.ctx, f.tenant)
		if err != nil {
			t.Fatal(err)
		}
		keyBefore, _ := st.Read().Keys().DataKeyByOwner(f.ctx, f.tenant, keys.DeviceOwner(d.ID))
		err = st.Tx(f.ctx, func(q store.Queries) error {
			raced := racingQueries{Queries: q, keys: racingKeys{KeyStore: q.Keys(), race: func(ctx context.Context, k store.TenantKeyset) error {
				other := before
				other.AEADKeyset = append([]byte("another rotation: "), before.AEADKeyset...)
				_, err := q.Keys().SwapKeyset(ctx, before.AEADKeyset, other)
				return err
			}}}
			_, err := f.svc.Vault().RotateTenant(f.ctx, raced, f.tenant, nil)
			return err
		})
		if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "need not be repeated") {
			t.Fatalf("an overtaken rotation: %v, want a conflict that says it need not be repeated", err)
		}
		after, _ := st.Read().Keys().GetKeyset(f.ctx, f.tenant)
		keyAfter, _ := st.Read().Keys().DataKeyByOwner(f.ctx, f.tenant, keys.DeviceOwner(d.ID))
		if !bytes.Equal(after.AEADKeyset, before.AEADKeyset) || !bytes.Equal(keyAfter.Wrapped, keyBefore.Wrapped) {
			t.Error("the overtaken rotation changed the keyset or a data key")
		}
	})
}
