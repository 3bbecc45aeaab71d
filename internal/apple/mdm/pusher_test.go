package mdm_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

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
// tokens, 410 for the dead one.
type fakeAPNs struct {
	mu     sync.Mutex
	pushes map[string]string // token -> PushMagic
	dead   string
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
		_, _ = w.Write([]byte(`{"reason":"Unregistered","timestamp":1700000000000}`))
		return
	}
	f.pushes[token] = string(body)
}

func TestPushQueue(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ts := f.serve()
		f.publish(privacy.Corporate)
		if _, err := f.svc.SetPushCertificate(f.ctx, f.tenant, []byte("not a certificate"), "", admin); err == nil {
			t.Fatal("a bad push certificate was accepted")
		}
		status, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pushCertPEM(t, testTopic), "", admin)
		if err != nil || status.Topic != testTopic {
			t.Fatalf("push certificate: %+v %v", status, err)
		}
		a, adev := f.enrolled(ts, privacy.Corporate, "")
		b, bdev := f.enrolled(ts, privacy.Corporate, "")
		_, _ = a.Poll(f.ctx)
		_, _ = b.Poll(f.ctx)

		fake := &fakeAPNs{pushes: map[string]string{}, dead: hex.EncodeToString(b.PushToken)}
		apnsSrv := httptest.NewUnstartedServer(fake)
		apnsSrv.EnableHTTP2 = true
		apnsSrv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
		apnsSrv.StartTLS()
		defer apnsSrv.Close()
		pool := x509.NewCertPool()
		pool.AddCert(apnsSrv.Certificate())
		pusher := &mdm.Pusher{Service: f.svc, Endpoint: apnsSrv.URL, Options: []apns.Option{apns.WithRootCAs(pool)}}

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
		if ch.PushToken != nil || !ch.PushDueAt.IsZero() {
			t.Errorf("a 410 must drop the token: %+v", ch)
		}
		if n, _ := pusher.RunOnce(f.ctx); n != 0 {
			t.Errorf("the queue pushed again: %d", n)
		}

		// A command for a user channel wakes that user's channel, with its
		// own token and magic.
		user := a.NewUser("jdoe", "Jane Doe")
		if err := user.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
		ucs, err := f.svc.UserChannels(f.ctx, f.tenant, adev.ID, "jdoe")
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
	if _, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pushCertPEM(t, testTopic), "", admin); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.svc.MetricsCollector())
	families, err := reg.Gather()
	if err != nil || len(families) != 1 || len(families[0].Metric) != 1 {
		t.Fatalf("metrics: %v %v", families, err)
	}
	if v := families[0].Metric[0].GetGauge().GetValue(); v < 363 || v > 365 {
		t.Errorf("days left: %v", v)
	}
}
