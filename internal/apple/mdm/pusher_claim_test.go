package mdm_test

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/apple/mdm"
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
	f.setPushCertificate()
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

// TestPushBatchEndsBeforeItsClaim: APNs stalls mid-batch. The batch stops
// sending before its claim lapses and records what it did: the push
// delivered is not sent again by the next run (another node's), the one
// cut off waits for its retry, and the one never sent is due at once.
func TestPushBatchEndsBeforeItsClaim(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ts := f.serve()
		f.publish(privacy.Corporate)
		f.setPushCertificate()
		deviceOf := map[string]string{} // hex token -> device ID
		var ids []string
		for range 3 {
			d, dev := f.enrolled(ts, privacy.Corporate, "")
			deviceOf[hex.EncodeToString(d.PushToken)] = dev.ID
			ids = append(ids, dev.ID)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		f.svc.SetClock(func() time.Time { return now })
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, ids, mdmproto.SecurityInfo{}, "", admin); err != nil {
			t.Fatal(err)
		}

		var mu sync.Mutex
		var arrivals []string // hex tokens, in the order APNs saw them
		apnsHandler := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			mu.Lock()
			arrivals = append(arrivals, strings.TrimPrefix(r.URL.Path, "/3/device/"))
			stall := len(arrivals) == 2
			mu.Unlock()
			if stall { // far past the batch's end, unless the pusher gives up
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}
		})
		node := func() *mdm.Pusher {
			p := startAPNs(t, f, apnsHandler)
			p.Options = append(p.Options, apns.WithMaxStreams(1)) // one push after the other
			p.SetClaim(time.Second)
			return p
		}

		if n, err := node().RunOnce(f.ctx); err != nil || n != 1 {
			t.Fatalf("pushed %d, %v; want the one push before APNs stalled, recorded", n, err)
		}
		mu.Lock()
		sent := slices.Clone(arrivals)
		mu.Unlock()
		if len(sent) != 2 {
			t.Fatalf("APNs saw %d pushes in the batch, want 2 (one delivered, one stalled)", len(sent))
		}
		channel := func(token string) store.AppleChannel {
			t.Helper()
			ch, err := st.Read().AppleChannels().Get(f.ctx, f.tenant, deviceOf[token])
			if err != nil {
				t.Fatal(err)
			}
			return ch
		}
		if ch := channel(sent[0]); !ch.PushDueAt.IsZero() {
			t.Errorf("the delivered push is still due at %v", ch.PushDueAt)
		}
		if ch := channel(sent[1]); ch.PushAttempts != 1 || !ch.PushDueAt.After(now) {
			t.Errorf("the stalled push: %d attempts, due %v; want a retry later", ch.PushAttempts, ch.PushDueAt)
		}
		var unsent string
		for token := range deviceOf {
			if !slices.Contains(sent, token) {
				unsent = token
			}
		}
		if ch := channel(unsent); ch.PushAttempts != 0 || !ch.PushDueAt.Equal(now) {
			t.Errorf("the push never sent: %d attempts, due %v; want due now (%v), no attempt counted", ch.PushAttempts, ch.PushDueAt, now)
		}

		if n, err := node().RunOnce(f.ctx); err != nil || n != 1 {
			t.Fatalf("the next node pushed %d, %v; want only the push never sent", n, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := append(sent, unsent); !slices.Equal(arrivals, want) {
			t.Errorf("APNs saw %v, want %v: each device once, the unsent one by the next node", arrivals, want)
		}
	})
}

// TestTokenUpdateDuringAPush: the device sends a new token and PushMagic
// while a push to the old ones is in flight, and APNs accepts that push
// (a dead token may keep being accepted). The commands waiting still get
// a push, to the new token with the new PushMagic.
func TestTokenUpdateDuringAPush(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ts := f.serve()
		f.publish(privacy.Corporate)
		f.setPushCertificate()
		d, dev := f.enrolled(ts, privacy.Corporate, "")
		if _, err := d.Poll(f.ctx); err != nil {
			t.Fatal(err)
		}
		oldToken := hex.EncodeToString(d.PushToken)
		fake := &fakeAPNs{pushes: map[string]string{}}
		var once sync.Once
		pusher := startAPNs(t, f, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() {
				d.PushToken, d.PushMagic = []byte("the device's new token"), "NEW-PUSH-MAGIC"
				if _, err := d.Checkin(f.ctx, d.TokenUpdate()); err != nil {
					t.Error(err)
				}
			})
			fake.ServeHTTP(w, r)
		}))
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil {
			t.Fatal(err)
		}
		if n, err := pusher.RunOnce(f.ctx); err != nil || n != 1 {
			t.Fatalf("pushed %d, %v", n, err)
		}
		if _, ok := fake.pushes[oldToken]; !ok {
			t.Fatal("the first push did not go to the old token; the test proves nothing")
		}
		if ch, _ := st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID); ch.PushDueAt.IsZero() {
			t.Fatal("the push to the old token cleared the one the new token is owed")
		}
		if n, err := pusher.RunOnce(f.ctx); err != nil || n != 1 {
			t.Fatalf("the next run pushed %d, %v; want the new token's push", n, err)
		}
		if got := fake.pushes[hex.EncodeToString(d.PushToken)]; got != `{"mdm":"NEW-PUSH-MAGIC"}` {
			t.Errorf("push to the new token: %q", got)
		}
	})
}
