package mdm_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPushCertificateTopicFollowsTheChannels: a certificate for another
// topic is refused while open channels carry a topic it cannot push to,
// whatever certificate was stored before. After a deliberate replacement,
// the original topic's certificate goes back without replace_topic while
// the devices enrolled under it are all there are; once a device enrolled
// under the new topic, it is refused like any other topic change.
func TestPushCertificateTopicFollowsTheChannels(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ts := f.serveWith(func(cfg *mdm.HTTPConfig) { cfg.Topic = f.svc.Topic })
		f.publish(privacy.Corporate)
		const original, other, third = testTopic, "com.apple.mgmt.External.other", "com.apple.mgmt.External.third"
		set := func(topic string, replace bool) error {
			t.Helper()
			_, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pushCertPEM(t, topic), "", replace, admin)
			return err
		}
		stored := func() string {
			t.Helper()
			c, err := f.svc.PushCertificate(f.ctx, f.tenant)
			if err != nil {
				t.Fatal(err)
			}
			return c.Topic
		}
		refused := func(err error, devices string, topics ...string) {
			t.Helper()
			if !apperr.IsKind(err, apperr.KindConflict) || !strings.Contains(err.Error(), devices+" enrolled Apple devices") {
				t.Fatalf("want a refusal naming %s devices, got %v", devices, err)
			}
			for _, topic := range topics {
				if !strings.Contains(err.Error(), topic) {
					t.Errorf("the refusal does not name the devices' topic %s: %v", topic, err)
				}
			}
		}

		if err := set(original, false); err != nil {
			t.Fatal(err)
		}
		d1, _ := f.enrolled(ts, privacy.Corporate, "")
		if d1.Topic() != original {
			t.Fatalf("first device's topic %q", d1.Topic())
		}
		refused(set(other, false), "1", original)
		if got := stored(); got != original {
			t.Fatalf("a refused upload stored topic %s", got)
		}
		if err := set(other, true); err != nil {
			t.Fatalf("a deliberate topic change: %v", err)
		}
		// The first device still listens on the original topic: its
		// certificate (here a renewal, with a new key) is what it needs.
		if err := set(original, false); err != nil {
			t.Fatalf("the original topic back, for the devices still on it: %v", err)
		}
		if got := stored(); got != original {
			t.Fatalf("stored topic %s after putting the original back", got)
		}

		if err := set(other, true); err != nil {
			t.Fatal(err)
		}
		d2, _ := f.enrolled(ts, privacy.Corporate, "")
		if d2.Topic() != other {
			t.Fatalf("second device's topic %q", d2.Topic())
		}
		refused(set(original, false), "1", other)
		// Only the devices the stored certificate reaches count: the first
		// device, left on the original topic, is cut off already.
		refused(set(third, false), "1", other)
		if got := stored(); got != other {
			t.Fatalf("refused uploads left topic %s", got)
		}
		// Nor does it hold up the yearly renewal of the current topic.
		if err := set(other, false); err != nil {
			t.Fatalf("renewing the current topic's certificate while a device is left on the old one: %v", err)
		}

		entries, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.push_certificate.set"})
		if err != nil || len(entries) != 5 {
			t.Fatalf("audit: %d entries, %v; want the 5 stored", len(entries), err)
		}
		stranded := 0
		for _, e := range entries {
			var d struct {
				Topic    string `json:"topic"`
				Replaced string `json:"replaced_topic"`
				Stranded int    `json:"stranded_devices"`
			}
			if err := json.Unmarshal(e.Details, &d); err != nil {
				t.Fatal(err)
			}
			if d.Topic == other && d.Replaced != "" && (d.Replaced != original || d.Stranded != 1) {
				t.Errorf("a replacement that left a device behind: %s", e.Details)
			}
			stranded += d.Stranded
		}
		if stranded != 2 {
			t.Errorf("%d stranded devices on record, want 1 for each replacement", stranded)
		}
	})
}

// TestPushCertificateDatesOnTheServiceClock: an upload is judged valid,
// expired or not yet valid by the service's clock, not the wall clock's.
func TestPushCertificateDatesOnTheServiceClock(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t)) // its service runs on f.now
	notBefore := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	lapsed, err := sim.PushCertificatePEMValid(testTopic, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	upload := func(data []byte) (apns.CertStatus, error) {
		return f.svc.SetPushCertificate(f.ctx, f.tenant, data, "", false, admin)
	}

	f.now = notAfter.Add(-10 * 24 * time.Hour)
	st, err := upload(lapsed)
	if err != nil {
		t.Fatalf("a certificate valid by the service's clock, expired by the wall clock's: %v", err)
	}
	if st.DaysLeft != 10 || !st.Warning {
		t.Errorf("status on the service's clock: %+v, want 10 days left and a warning", st)
	}
	f.now = notAfter
	if _, err := upload(lapsed); !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("a certificate expired by the service's clock: %v", err)
	}
	f.now = notBefore.Add(-time.Second)
	if _, err := upload(lapsed); !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "not valid yet") {
		t.Errorf("a certificate not valid yet by the service's clock: %v", err)
	}
	f.now = time.Now().Add(400 * 24 * time.Hour)
	if _, err := upload(pushCertPEM(t, testTopic)); !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("a certificate valid by the wall clock, expired by the service's: %v", err)
	}
}

// TestPusherRunsOnTheServiceClock: the pusher's APNs client judges the
// certificate on the service's clock too: expired there, nothing is sent.
func TestPusherRunsOnTheServiceClock(t *testing.T) {
	f, dev, _ := pushFixture(t, storetest.OpenSQLite(t))
	fake := &fakeAPNs{pushes: map[string]string{}}
	pusher := startAPNs(t, f, fake)
	later := time.Now().Add(400 * 24 * time.Hour)
	f.svc.SetClock(func() time.Time { return later })
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil {
		t.Fatal(err)
	}
	if n, err := pusher.RunOnce(f.ctx); err != nil || n != 0 {
		t.Fatalf("pushed %d, %v, with a certificate expired by the service's clock", n, err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.pushes) != 0 {
		t.Fatalf("APNs got %d pushes under an expired certificate", len(fake.pushes))
	}
}

// TestPushClientsClosedWithTheCertificate: replacing the tenant's push
// certificate, or deleting the tenant (its ForgetTenant hook), drops the
// pusher's client of that tenant and closes its connection to APNs.
func TestPushClientsClosedWithTheCertificate(t *testing.T) {
	f, dev, _ := pushFixture(t, storetest.OpenSQLite(t))
	w := watchAPNs(t, f, dev)
	pusher, push, awaitClose, closed := w.pusher, w.push, w.awaitClose, w.closed

	push()
	f.setPushCertificate()
	if pusher.HasClient(f.tenant) {
		t.Fatal("the client of the replaced certificate is still cached")
	}
	awaitClose("certificate replaced")

	push() // a new client, with the new certificate
	if err := f.st.Tx(f.ctx, func(q store.Queries) error { return f.svc.ForgetTenant(f.ctx, q, f.tenant) }); err != nil {
		t.Fatal(err)
	}
	if pusher.HasClient(f.tenant) {
		t.Fatal("a deleted tenant's client is still cached")
	}
	awaitClose("tenant deleted")
	select {
	case <-closed:
		t.Fatal("more connections closed than were dropped")
	default:
	}
}

// TestIdlePushClientsAreClosed: a client unused for an hour on the service
// clock is closed by the sweep every node runs; one in use stays.
func TestIdlePushClientsAreClosed(t *testing.T) {
	f, dev, _ := pushFixture(t, storetest.OpenSQLite(t))
	w := watchAPNs(t, f, dev)
	start := time.Now()
	at := func(d time.Duration) { f.svc.SetClock(func() time.Time { return start.Add(d) }) }

	at(0)
	w.push()
	at(50 * time.Minute)
	w.push() // used again: its hour starts over
	at(100 * time.Minute)
	w.pusher.DropIdleClients()
	if !w.pusher.HasClient(f.tenant) {
		t.Fatal("a client used 50 minutes ago was dropped")
	}
	at(111 * time.Minute)
	w.pusher.DropIdleClients()
	if w.pusher.HasClient(f.tenant) {
		t.Fatal("a client unused for over an hour is still cached")
	}
	w.awaitClose("idle for an hour")
}

// watchedAPNs is an HTTP/2 APNs stand-in that reports each connection it
// sees closed, and a pusher talking to it.
type watchedAPNs struct {
	pusher     *mdm.Pusher
	closed     chan struct{}
	push       func()           // queues a command for the device and pushes it
	awaitClose func(why string) // waits until APNs sees a connection close
}

func watchAPNs(t *testing.T, f *fixture, dev store.Device) watchedAPNs {
	t.Helper()
	closed := make(chan struct{}, 16)
	srv := httptest.NewUnstartedServer(&fakeAPNs{pushes: map[string]string{}})
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	w := watchedAPNs{closed: closed,
		pusher: &mdm.Pusher{Service: f.svc, Endpoint: srv.URL, Options: []apns.Option{apns.WithRootCAs(pool)}}}
	w.push = func() {
		t.Helper()
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil {
			t.Fatal(err)
		}
		if n, err := w.pusher.RunOnce(f.ctx); err != nil || n != 1 {
			t.Fatalf("pushed %d, %v", n, err)
		}
		if !w.pusher.HasClient(f.tenant) {
			t.Fatal("no client after a push")
		}
	}
	// The client closes its connection at once; the server notices when
	// it reads the EOF.
	w.awaitClose = func(why string) {
		t.Helper()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the connection to APNs is still open", why)
		}
	}
	return w
}

// TestPushesHeldForAnotherTopic: after a deliberate topic replacement, a
// device left on the old topic cannot be woken with the new certificate
// (APNs answers DeviceTokenNotForTopic). Its push is held, not sent, nor
// tried again at every run; its token stays, and the log says why. Once
// the old topic's certificate is back, the push goes.
func TestPushesHeldForAnotherTopic(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f, dev, _ := pushFixture(t, st)
		var mu sync.Mutex
		var topics []string // of the pushes APNs saw
		pusher := startAPNs(t, f, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			topics = append(topics, r.Header.Get("apns-topic"))
			mu.Unlock()
			if r.Header.Get("apns-topic") != testTopic {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"reason":"DeviceTokenNotForTopic"}`)
			}
		}))
		var logs bytes.Buffer
		pusher.Log = slog.New(slog.NewTextHandler(&logs, nil))
		seen := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(topics)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		f.svc.SetClock(func() time.Time { return now })

		if _, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pushCertPEM(t, "com.apple.mgmt.External.other"), "", true, admin); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil {
			t.Fatal(err)
		}
		before, err := st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
		if err != nil || before.PushToken == nil || before.Topic != testTopic {
			t.Fatalf("the device's channel: %+v, %v", before, err)
		}
		for run := range 2 {
			if n, err := pusher.RunOnce(f.ctx); err != nil || n != 0 {
				t.Fatalf("run %d pushed %d, %v", run, n, err)
			}
		}
		if got := seen(); len(got) != 0 {
			t.Fatalf("APNs got pushes with topics %v for a device on %s", got, testTopic)
		}
		ch, err := st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
		if err != nil || !bytes.Equal(ch.PushToken, before.PushToken) || !ch.PushDueAt.Equal(now.Add(mdm.StrandedHold)) {
			t.Fatalf("held channel: token kept %v, due %v; want the token kept and the push due after a hold (%v)",
				bytes.Equal(ch.PushToken, before.PushToken), ch.PushDueAt, now.Add(mdm.StrandedHold))
		}
		if got := logs.String(); strings.Count(got, "enrolled under another topic") != 1 || !strings.Contains(got, "channels=1") ||
			strings.Contains(got, hex.EncodeToString(before.PushToken)) || strings.Contains(got, before.PushMagic) {
			t.Errorf("want one log line counting the held channel, without its token or PushMagic: %s", got)
		}

		f.setPushCertificate()
		now = now.Add(mdm.StrandedHold)
		if n, err := pusher.RunOnce(f.ctx); err != nil || n != 1 {
			t.Fatalf("with the device's topic's certificate back, pushed %d, %v", n, err)
		}
		if got := seen(); !slices.Equal(got, []string{testTopic}) {
			t.Errorf("APNs saw pushes with topics %v, want one with %s", got, testTopic)
		}
	})
}
