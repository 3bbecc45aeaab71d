package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestResealCommitsPageByPage: a rotation's job commits each page on its
// own, so one that stops keeps what it did, and running it again finishes
// the rest without touching what is done.
func TestResealCommitsPageByPage(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		old, ring, tenant, actions := keptPINs(t, st, 5)
		ad := pinAD
		underNew := func() (n int) {
			for _, a := range actions {
				got, err := st.Read().Actions().Get(ctx, tenant, a.ID)
				if err != nil {
					t.Fatal(err)
				}
				if secrets.SealedBy(got.SealedPIN) == ring.KeyID() {
					n++
				}
			}
			return n
		}

		job := store.ColumnJob("PINs", ring, store.SealedActionPINs, ad)
		broken, calls := job, 0
		broken.Page = func(ctx context.Context, q store.Queries, after string, limit int) (store.ResealPage, error) {
			if calls++; calls == 3 {
				return store.ResealPage{}, errors.New("the database went away")
			}
			return job.Page(ctx, q, after, limit)
		}
		var seen []int
		n, err := store.RunReseal(ctx, st, []store.ResealJob{broken}, 2, func(_ string, done int) { seen = append(seen, done) })
		if err == nil || n != 4 || len(seen) != 2 || seen[1] != 4 {
			t.Fatalf("a job stopping at its third page: %d re-sealed, progress %v, %v; want 4 in two pages and the error", n, seen, err)
		}
		if got := underNew(); got != 4 {
			t.Fatalf("%d PINs under the new key after the stop, want the 4 its pages committed", got)
		}
		if n, err := store.RunReseal(ctx, st, []store.ResealJob{job}, 2, nil); err != nil || n != 1 {
			t.Fatalf("running it again: %d re-sealed, %v; want the one left", n, err)
		}
		if got := underNew(); got != 5 {
			t.Fatalf("%d PINs under the new key, want all 5", got)
		}

		// A node still sealing under the old key writes a PIN between a
		// page's read and its swap: the swap loses, and the next pass
		// re-seals what the node wrote.
		budget := 0
		racing := store.ResealJob{What: "PINs", Page: func(ctx context.Context, q store.Queries, after string, limit int) (store.ResealPage, error) {
			current := func(sealed []byte) bool { return secrets.SealedBy(sealed) == ring.KeyID() }
			return q.Sealed().Reseal(ctx, store.SealedActionPINs, after, limit, current, func(r store.SealedRow) ([]byte, error) {
				fresh, err := secrets.Reseal(ring, r.Sealed, ad(r))
				if err == nil && budget > 0 {
					budget--
					var stale []byte
					if stale, err = old.Seal([]byte("135790"), ad(r)); err == nil {
						err = q.Actions().KeepPIN(ctx, tenant, r.ID, stale)
					}
				}
				return fresh, err
			})
		}}
		keepOld := func() error {
			return st.Tx(ctx, func(q store.Queries) error {
				sealed, err := old.Seal([]byte("482913"), ad(store.SealedRow{ID: actions[0].ID}))
				if err != nil {
					return err
				}
				return q.Actions().KeepPIN(ctx, tenant, actions[0].ID, sealed)
			})
		}
		if err := keepOld(); err != nil {
			t.Fatal(err)
		}
		budget = 1
		if n, err := store.RunReseal(ctx, st, []store.ResealJob{racing}, 2, nil); err != nil || n != 1 || underNew() != 5 {
			t.Fatalf("a swap lost to a node sealing under the old key: %d re-sealed, %v, %d of 5 under the new key; want 1, all 5",
				n, err, underNew())
		}
		// One that keeps doing it is named rather than reported done.
		if err := keepOld(); err != nil {
			t.Fatal(err)
		}
		budget = 100
		if _, err := store.RunReseal(ctx, st, []store.ResealJob{racing}, 2, nil); err == nil || !strings.Contains(err.Error(), "old master key") {
			t.Fatalf("a node sealing under the old key throughout: %v, want an error naming the old key", err)
		}
	})
}

// pinAD binds a test PIN to its action.
func pinAD(r store.SealedRow) []byte { return []byte("pin:" + r.ID) }

// keptPINs makes n locks in a new tenant whose PINs are sealed under an old
// master key, and a keyring of a new key that still opens the old one.
func keptPINs(t *testing.T, st store.Store, n int) (old secrets.Sealer, ring secrets.Sealer, tenant string, actions []store.DeviceAction) {
	t.Helper()
	key := func() []byte {
		k := make([]byte, secrets.KeySize)
		_, _ = rand.Read(k)
		return k
	}
	oldKey, newKey := key(), key()
	old, _ = secrets.NewSealer(oldKey)
	ring, err := secrets.NewKeyring(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	tenant, now := store.NewID(), time.Now().UTC()
	for range n {
		a := store.DeviceAction{ID: store.NewID(), TenantID: tenant, BatchID: store.NewID(), DeviceID: store.NewID(), Action: "lock",
			Reason: "lost", RequestedBy: "admin:1", State: store.ActionQueued, CreatedAt: now, UpdatedAt: now}
		if a.SealedPIN, err = old.Seal([]byte("482913"), pinAD(store.SealedRow{ID: a.ID})); err != nil {
			t.Fatal(err)
		}
		actions = append(actions, a)
	}
	if err := st.Tx(context.Background(), func(q store.Queries) error { return q.Actions().Create(context.Background(), actions) }); err != nil {
		t.Fatal(err)
	}
	return old, ring, tenant, actions
}

// TestResealBesideLiveWrites: a rotation in short transactions runs beside
// nodes that keep writing (under the new key, as the rotation requires):
// neither waits the other out, no write is lost, and nothing is left
// under the old key.
func TestResealBesideLiveWrites(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		_, ring, tenant, actions := keptPINs(t, st, 300)
		done := make(chan struct{})
		written := make(chan map[string]string, 1)
		go func() {
			// A node re-locking Macs with new PINs while the rotation runs.
			last := map[string]string{}
			defer func() { written <- last }()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				a := actions[(i*37)%len(actions)]
				pin := fmt.Sprintf("%06d", i)
				sealed, err := ring.Seal([]byte(pin), pinAD(store.SealedRow{ID: a.ID}))
				if err == nil {
					err = st.Tx(ctx, func(q store.Queries) error { return q.Actions().KeepPIN(ctx, tenant, a.ID, sealed) })
				}
				if err != nil {
					t.Errorf("a live write during the rotation: %v", err)
					return
				}
				last[a.ID] = pin
			}
		}()
		n, err := store.RunReseal(ctx, st, []store.ResealJob{store.ColumnJob("PINs", ring, store.SealedActionPINs, pinAD)}, 7, nil)
		close(done)
		last := <-written
		if err != nil || n == 0 || n > len(actions) {
			t.Fatalf("the rotation beside live writes: %d re-sealed, %v", n, err)
		}
		for _, a := range actions {
			got, err := st.Read().Actions().Get(ctx, tenant, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			pin, err := ring.Open(got.SealedPIN, pinAD(store.SealedRow{ID: a.ID}))
			if err != nil || secrets.SealedBy(got.SealedPIN) != ring.KeyID() {
				t.Fatalf("action %s after the rotation: under %s, %v", a.ID, secrets.SealedBy(got.SealedPIN), err)
			}
			if want, ok := last[a.ID]; ok && string(pin) != want {
				t.Fatalf("action %s lost the live write %s to the rotation: %s", a.ID, want, pin)
			} else if !ok && string(pin) != "482913" {
				t.Fatalf("action %s: PIN %s, want the original", a.ID, pin)
			}
		}
		t.Logf("%d actions written by the live node during the rotation", len(last))
	})
}
