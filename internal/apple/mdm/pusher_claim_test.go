package mdm_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// pushFixture is an enrolled corporate device, its initial inventory
// answered, and a tenant with a push certificate.
func pushFixture(t *testing.T, st store.Store) (*fixture, store.Device, func(context.Context) (int, error)) {
	t.Helper()
	f := newFixture(t, st)
	ts := f.serve()
	f.publish(privacy.Corporate)
	if _, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pushCertPEM(t, testTopic), "", false, admin); err != nil {
		t.Fatal(err)
	}
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	return f, dev, d.Poll
}

// TestPushQueuedDuringAPush: the device wakes on a push and empties its
// queue, and an admin queues a command before the pusher has recorded that
// push. The new command keeps a push due; recording the first one used to
// clear it, and the command waited for whatever woke the device next.
func TestPushQueuedDuringAPush(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f, dev, poll := pushFixture(t, st)
		var once sync.Once
		pusher := startAPNs(t, f, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			once.Do(func() {
				if _, err := poll(f.ctx); err != nil {
					t.Error(err)
				}
				if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ProfileList{}, "", admin); err != nil {
					t.Error(err)
				}
			})
		}))
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil {
			t.Fatal(err)
		}
		if n, err := pusher.RunOnce(f.ctx); err != nil || n != 1 {
			t.Fatalf("pushed %d, %v", n, err)
		}
		open, err := st.Read().Commands().OpenOnChannel(f.ctx, f.tenant, dev.ID, "")
		if err != nil || open != 1 {
			t.Fatalf("%d commands open (%v), want the one queued during the push", open, err)
		}
		if ch, _ := st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID); ch.PushDueAt.IsZero() {
			t.Fatal("a command queued during a push has no push due")
		}
		if n, err := pusher.RunOnce(f.ctx); err != nil || n != 1 {
			t.Errorf("the next run pushed %d, %v; want the new command's push", n, err)
		}
	})
}

// TestPushClaimsOutliveTheLease: two nodes' pushers, and a batch that takes
// longer than the lease (10 intervals) while APNs is slow. The node that
// takes the lease over finds the channel claimed and does not push it again.
func TestPushClaimsOutliveTheLease(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f, dev, _ := pushFixture(t, st)
		var mu sync.Mutex
		inFlight, most, total := 0, 0, 0
		slow := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			mu.Lock()
			inFlight, total = inFlight+1, total+1
			most = max(most, inFlight)
			mu.Unlock()
			time.Sleep(700 * time.Millisecond)
			mu.Lock()
			inFlight--
			mu.Unlock()
		})
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(f.ctx, 1500*time.Millisecond)
		defer cancel()
		var wg sync.WaitGroup
		for _, node := range []string{"node-1", "node-2"} {
			p := startAPNs(t, f, slow)
			p.Holder, p.Log = node, slog.New(slog.DiscardHandler)
			wg.Go(func() { p.Run(ctx, 20*time.Millisecond) })
		}
		wg.Wait()
		if most != 1 || total != 1 {
			t.Errorf("the device got %d pushes, %d at once; want one", total, most)
		}
	})
}
