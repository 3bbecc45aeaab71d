package mdm_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// pushCertPEM makes an MDM push certificate with its key.
func pushCertPEM(t *testing.T, topic string) []byte {
	t.Helper()
	b, err := sim.PushCertificatePEM(topic)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeAPNs is an HTTP/2 TLS server speaking the provider API: 200 for known
// tokens, 410 for the dead one, found dead at deadSince.
type fakeAPNs struct {
	mu        sync.Mutex
	pushes    map[string]string // token -> PushMagic
	dead      string
	deadSince time.Time
}

func (f *fakeAPNs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.URL.Path, "/3/device/")
	if r.ProtoMajor != 2 || r.Header.Get("apns-push-type") != "mdm" || !strings.HasPrefix(r.Header.Get("apns-topic"), "com.apple.mgmt.") {
		http.Error(w, `{"reason":"BadRequest"}`, http.StatusBadRequest)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if token == f.dead {
		w.WriteHeader(http.StatusGone)
		_, _ = fmt.Fprintf(w, `{"reason":"Unregistered","timestamp":%d}`, f.deadSince.UnixMilli())
		return
	}
	f.pushes[token] = string(body)
}

// startAPNs serves h as APNs, over HTTP/2 with TLS, and returns a pusher of
// f's service that pushes to it.
func startAPNs(t *testing.T, f *fixture, h http.Handler) *mdm.Pusher {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &mdm.Pusher{Service: f.svc, Endpoint: srv.URL, Options: []apns.Option{apns.WithRootCAs(pool)}}
}

func TestPushQueue(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ts := f.serve()
		f.publish(privacy.Corporate)
		if _, err := f.svc.SetPushCertificate(f.ctx, f.tenant, []byte("not a certificate"), "", false, admin); err == nil {
			t.Fatal("a bad push certificate was accepted")
		}
		status, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pushCertPEM(t, testTopic), "", false, admin)
		if err != nil || status.Topic != testTopic {
			t.Fatalf("push certificate: %+v %v", status, err)
		}
		a, adev := f.enrolledWith(ts, privacy.Corporate, "", mac)
		b, bdev := f.enrolled(ts, privacy.Corporate, "")
		_, _ = a.Poll(f.ctx)
		_, _ = b.Poll(f.ctx)

		// APNs found b's token dead in 2023, before b sent it: b registered
		// it again since, so it must stay.
		fake := &fakeAPNs{pushes: map[string]string{}, dead: hex.EncodeToString(b.PushToken), deadSince: time.Unix(1700000000, 0)}
		pusher := startAPNs(t, f, fake)

		// Enqueueing puts the devices on the push queue in the same transaction.
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{adev.ID, bdev.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil {
			t.Fatal(err)
		}
		n, err := pusher.RunOnce(f.ctx)
		if err != nil || n != 1 {
			t.Fatalf("pushed %d, %v", n, err)
		}
		if got := fake.pushes[hex.EncodeToString(a.PushToken)]; got != `{"mdm":"`+a.PushMagic+`"}` {
			t.Errorf("push payload: %q", got)
		}
		ch, _ := st.Read().AppleChannels().Get(f.ctx, f.tenant, bdev.ID)
		if !bytes.Equal(ch.PushToken, b.PushToken) || ch.PushAttempts != 1 || !ch.PushDueAt.After(time.Now()) {
			t.Fatalf("a 410 older than the token must keep it and retry later: %+v", ch)
		}
		if n, _ := pusher.RunOnce(f.ctx); n != 0 {
			t.Errorf("the queue pushed again before the retry: %d", n)
		}
		// Found dead after b sent it: the token goes and nothing is due.
		fake.mu.Lock()
		fake.deadSince = time.Now().Add(time.Second)
		fake.mu.Unlock()
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			_, err := q.AppleChannels().SchedulePush(f.ctx, f.tenant, []string{bdev.ID}, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := pusher.RunOnce(f.ctx); err != nil || n != 0 {
			t.Fatalf("pushed %d to a dead token, %v", n, err)
		}
		ch, _ = st.Read().AppleChannels().Get(f.ctx, f.tenant, bdev.ID)
		if ch.PushToken != nil || !ch.PushDueAt.IsZero() {
			t.Fatalf("a 410 must drop the token: %+v", ch)
		}
		// b's next TokenUpdate brings a live token, and the SecurityInfo
		// still queued for it gets its push.
		b.PushToken = []byte("a fresh token for b")
		if _, err := b.Checkin(f.ctx, b.TokenUpdate()); err != nil {
			t.Fatal(err)
		}
		if n, err := pusher.RunOnce(f.ctx); err != nil || n != 1 {
			t.Fatalf("pushed %d after the new token, %v", n, err)
		}
		if got := fake.pushes[hex.EncodeToString(b.PushToken)]; got != `{"mdm":"`+b.PushMagic+`"}` {
			t.Errorf("push to the new token: %q", got)
		}

		// A command for a user channel wakes that user's channel, with its
		// own token and magic.
		user := a.NewUser("jdoe", "Jane Doe")
		if err := user.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
		ucs, err := f.svc.LookupUserChannel(f.ctx, f.tenant, adev.ID, "jdoe", lookupReason, admin)
		if err != nil || len(ucs) != 1 {
			t.Fatalf("jdoe's channel: %+v, %v", ucs, err)
		}
		if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, adev.ID, ucs[0].ID, mdmproto.ProfileList{}, "", admin); err != nil {
			t.Fatal(err)
		}
		if n, err := pusher.RunOnce(f.ctx); err != nil || n != 1 {
			t.Fatalf("pushed %d to the user channel, %v", n, err)
		}
		if got := fake.pushes[hex.EncodeToString(user.PushToken)]; got != `{"mdm":"`+user.PushMagic+`"}` {
			t.Errorf("user-channel push payload: %q", got)
		}
		if n, _ := pusher.RunOnce(f.ctx); n != 0 {
			t.Errorf("the user channel was pushed again: %d", n)
		}
	})
}

func TestPushCertificateMetric(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.setPushCertificate()
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.svc.MetricsCollector())
	if v := gauge(t, reg, "steward_apns_certificate_days_left"); v < 363 || v > 365 {
		t.Errorf("days left: %v", v)
	}
	if v := gauge(t, reg, "steward_apns_certificate_refused"); v != 0 {
		t.Errorf("a certificate APNs has not refused shows refused: %v", v)
	}
}

// TestPushCertificateLifecycle: enrolment profiles carry the uploaded
// certificate's topic; another topic is refused while devices depend on the
// current one unless the admin says so; an expired certificate still shows,
// as expired, and refuses new enrolments.
func TestPushCertificateLifecycle(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ts := f.serveWith(func(cfg *mdm.HTTPConfig) { cfg.Topic = f.svc.Topic })
		f.publish(privacy.Corporate)
		f.setPushCertificate()
		d, _ := f.enrolled(ts, privacy.Corporate, "")
		if d.Topic() != testTopic {
			t.Fatalf("the profile's topic is %q, want the certificate's %q", d.Topic(), testTopic)
		}

		other := "com.apple.mgmt.External.another"
		_, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pushCertPEM(t, other), "", false, admin)
		if !apperr.IsKind(err, apperr.KindConflict) || !strings.Contains(err.Error(), "1 enrolled Apple devices") {
			t.Fatalf("another topic with a device enrolled: %v", err)
		}
		if c, err := f.svc.PushCertificate(f.ctx, f.tenant); err != nil || c.Topic != testTopic {
			t.Fatalf("the refused upload changed the certificate: %+v %v", c, err)
		}
		if _, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pushCertPEM(t, other), "", true, admin); err != nil {
			t.Fatalf("a deliberate topic change: %v", err)
		}
		entries, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.push_certificate.set"})
		if err != nil || len(entries) != 2 || !strings.Contains(string(entries[len(entries)-1].Details), testTopic) {
			t.Fatalf("the topic change is not on record: %+v %v", entries, err)
		}

		later := time.Now().Add(400 * 24 * time.Hour)
		f.svc.SetClock(func() time.Time { return later })
		c, err := f.svc.PushCertificate(f.ctx, f.tenant)
		if err != nil {
			t.Fatalf("an expired certificate no longer opens: %v", err)
		}
		if st := c.Status(later); st.DaysLeft >= 0 || !st.Warning {
			t.Errorf("expired certificate status: %+v", st)
		}
		if _, err := f.svc.Topic(f.ctx, f.tenant); !errors.Is(err, mdm.ErrPushCertificateExpired) {
			t.Errorf("a new enrolment under an expired certificate: %v", err)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(f.svc.MetricsCollector())
		if v := gauge(t, reg, "steward_apns_certificate_days_left"); v >= 0 {
			t.Errorf("days left of an expired certificate: %v", v)
		}
	})
}

// gauge reads the one value of a gauge family.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() == name && len(fam.Metric) == 1 {
			return fam.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single %s in %v", name, families)
	return 0
}

// setPushCertificate uploads a push certificate for testTopic.
func (f *fixture) setPushCertificate() {
	f.t.Helper()
	if _, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pushCertPEM(f.t, testTopic), "", false, admin); err != nil {
		f.t.Fatal(err)
	}
}
