package mdm_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// answeringAPNs answers every push with the status and reason set last,
// and counts the requests. Each answer carries an apns-id, as APNs' do:
// the request's, or one of its own numbered by request.
type answeringAPNs struct {
	mu       sync.Mutex
	status   int
	reason   string
	requests int
}

// apnsID is the apns-id answeringAPNs gives its nth request that named none.
func apnsID(n int) string { return fmt.Sprintf("6f2c1d3e-0000-4000-8000-%012d", n) }

func (a *answeringAPNs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests++
	id := r.Header.Get("apns-id")
	if id == "" {
		id = apnsID(a.requests)
	}
	w.Header().Set("apns-id", id)
	if a.status != http.StatusOK {
		w.WriteHeader(a.status)
		_, _ = fmt.Fprintf(w, `{"reason":%q}`, a.reason)
	}
}

func (a *answeringAPNs) answer(status int, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.reason = status, reason
}

func (a *answeringAPNs) seen() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

// refusalFixture is a tenant with one enrolled device, a pusher to an
// answeringAPNs, and the pusher's log.
type refusalFixture struct {
	*fixture
	dev    store.Device
	apns   *answeringAPNs
	pusher *mdm.Pusher
	log    *bytes.Buffer
	reg    *prometheus.Registry
}

func newRefusalFixture(t *testing.T, st store.Store) *refusalFixture {
	f, dev, _ := pushFixture(t, st)
	// f.serve made a service on the wall clock: these tests move through hours.
	f.now = time.Now().UTC().Truncate(time.Microsecond)
	f.svc.SetClock(func() time.Time { return f.now })
	a := &answeringAPNs{status: http.StatusOK}
	rf := &refusalFixture{fixture: f, dev: dev, apns: a, pusher: startAPNs(t, f, a), log: &bytes.Buffer{}, reg: prometheus.NewRegistry()}
	rf.pusher.Log = slog.New(slog.NewTextHandler(rf.log, nil))
	rf.reg.MustRegister(f.svc.MetricsCollector())
	return rf
}

// at moves the service's clock to d after start.
func (f *refusalFixture) at(start time.Time, d time.Duration) { f.now = start.Add(d) }

// run runs the pusher once and says how many pushes APNs accepted and how
// many requests it saw meanwhile.
func (f *refusalFixture) run() (delivered, requests int) {
	f.t.Helper()
	before := f.apns.seen()
	n, err := f.pusher.RunOnce(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return n, f.apns.seen() - before
}

func (f *refusalFixture) enqueue() {
	f.t.Helper()
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{f.dev.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil {
		f.t.Fatal(err)
	}
}

func (f *refusalFixture) status() apns.CertStatus {
	f.t.Helper()
	st, err := f.svc.PushCertificateStatus(f.ctx, f.tenant)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// failures is the push failure counter of the tenant for reason.
func (f *refusalFixture) failures(reason string) float64 {
	f.t.Helper()
	return pushFailures(f.t, f.reg, f.tenant, reason)
}

// TestRefusedPushCertificate: APNs refusing the certificate (403
// BadCertificate) is on record with its reason and since when, in the
// certificate's status, a gauge, a counter and one log line; the tenant's
// pushes go to APNs once an hour meanwhile, not at every 15-minute retry;
// the first accepted push clears the refusal.
func TestRefusedPushCertificate(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newRefusalFixture(t, st)
		start := f.now
		f.apns.answer(http.StatusForbidden, "BadCertificate")
		f.enqueue()
		if n, sent := f.run(); n != 0 || sent != 1 {
			t.Fatalf("refused: %d delivered, %d requests", n, sent)
		}
		s := f.status()
		first := f.apns.seen()
		if r := s.Refused; r == nil || r.Status != 403 || r.Reason != "BadCertificate" || r.ID != apnsID(first) ||
			!r.Since.Equal(start) || !r.At.Equal(start) {
			t.Fatalf("the refusal on record: %+v, want it at %v with apns-id %s", r, start, apnsID(first))
		}
		if s.Health() != apns.HealthRefused {
			t.Errorf("health of a refused certificate: %q", s.Health())
		}
		if v := gauge(t, f.reg, "steward_apns_certificate_refused"); v != 1 {
			t.Errorf("refused gauge: %v", v)
		}
		if v := f.failures("BadCertificate"); v != 1 {
			t.Errorf("BadCertificate failures counted: %v", v)
		}

		// The 15-minute retries within the hour do not reach APNs.
		for _, d := range []time.Duration{15 * time.Minute, 30 * time.Minute, 45 * time.Minute} {
			f.at(start, d)
			if _, sent := f.run(); sent != 0 {
				t.Fatalf("%v after the refusal, APNs got %d more requests", d, sent)
			}
		}
		f.at(start, 59*time.Minute)
		if _, sent := f.run(); sent != 0 {
			t.Fatalf("a push was due before the hour: %d requests", sent)
		}
		// The hour's probe is refused again: still one log line, and the
		// refusal keeps when it began.
		f.at(start, 60*time.Minute)
		if _, sent := f.run(); sent != 1 {
			t.Fatalf("the hourly probe sent %d requests", sent)
		}
		if r := f.status().Refused; r == nil || !r.Since.Equal(start) || !r.At.Equal(start.Add(time.Hour)) || r.ID != apnsID(f.apns.seen()) {
			t.Fatalf("the refusal after the probe: %+v, want the probe's apns-id %s", r, apnsID(f.apns.seen()))
		}
		if n := strings.Count(f.log.String(), "refuses the tenant's push certificate"); n != 1 {
			t.Errorf("the refusal was logged %d times, want once:\n%s", n, f.log)
		}
		if !strings.Contains(f.log.String(), "reason=BadCertificate") || !strings.Contains(f.log.String(), "apns_id="+apnsID(first)) {
			t.Errorf("the log does not name the reason and the apns-id to quote to Apple:\n%s", f.log)
		}

		// Apple accepts the certificate again: the next probe's push goes,
		// and the refusal is gone.
		f.apns.answer(http.StatusOK, "")
		f.at(start, 2*time.Hour)
		if n, sent := f.run(); n != 1 || sent != 1 {
			t.Fatalf("after the refusal lifted: %d delivered, %d requests", n, sent)
		}
		if s := f.status(); s.Refused != nil || s.Health() != apns.HealthOK {
			t.Fatalf("an accepted push leaves the refusal: %+v", s)
		}
		if v := gauge(t, f.reg, "steward_apns_certificate_refused"); v != 0 {
			t.Errorf("refused gauge after recovery: %v", v)
		}
		if !strings.Contains(f.log.String(), "accepts the tenant's push certificate again") {
			t.Errorf("the recovery is not logged:\n%s", f.log)
		}
	})
}

// TestRefusedTopicClearedByUpload: a 400 TopicDisallowed is a refusal of
// the certificate too; uploading a certificate, even the same one again,
// clears it and the waiting pushes go at their next retry, not at the
// hourly probe. A refused device
// token is the device's problem, not the certificate's.
func TestRefusedTopicClearedByUpload(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newRefusalFixture(t, st)
		start := f.now
		pem := pushCertPEM(t, testTopic)
		if _, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pem, "", false, admin); err != nil {
			t.Fatal(err)
		}
		f.apns.answer(http.StatusBadRequest, "TopicDisallowed")
		f.enqueue()
		f.run()
		if r := f.status().Refused; r == nil || r.Status != 400 || r.Reason != "TopicDisallowed" {
			t.Fatalf("the refusal on record: %+v", r)
		}

		// The same certificate again: the administrator fixed it with Apple.
		uploaded, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pem, "", false, admin)
		if err != nil {
			t.Fatal(err)
		}
		if uploaded.Refused != nil || f.status().Refused != nil {
			t.Fatalf("the upload left the refusal: %+v", f.status().Refused)
		}
		if v := gauge(t, f.reg, "steward_apns_certificate_refused"); v != 0 {
			t.Errorf("refused gauge after the upload: %v", v)
		}

		// A device token APNs refuses does not mark the certificate.
		f.apns.answer(http.StatusBadRequest, "BadDeviceToken")
		f.at(start, 15*time.Minute)
		if _, sent := f.run(); sent != 1 {
			t.Fatalf("after the upload the waiting push sent %d requests", sent)
		}
		if s := f.status(); s.Refused != nil || s.Health() != apns.HealthOK {
			t.Fatalf("a refused device token marked the certificate: %+v", s.Refused)
		}
		if f.failures("TopicDisallowed") != 1 || f.failures("BadDeviceToken") != 1 {
			t.Errorf("failures counted: TopicDisallowed %v, BadDeviceToken %v", f.failures("TopicDisallowed"), f.failures("BadDeviceToken"))
		}
	})
}

// TestRefusalOfAReplacedCertificateIsNotRecorded: a node still pushing
// with the certificate an upload replaced gets APNs' refusal of it; that
// refusal is not the tenant's and must neither stand nor overwrite the
// current certificate's.
func TestRefusalOfAReplacedCertificateIsNotRecorded(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newRefusalFixture(t, st)
		upload := func() *apns.PushCertificate {
			t.Helper()
			f.setPushCertificate()
			c, err := f.svc.PushCertificate(f.ctx, f.tenant)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		old, current := upload(), upload()
		if current.Serial == old.Serial {
			t.Fatalf("two uploads of one serial %s", old.Serial)
		}
		refused := apns.Result{Outcome: apns.Fatal, Status: http.StatusForbidden, Reason: "BadCertificate"}
		if news, err := f.svc.RecordPushRefusal(f.ctx, f.tenant, old.Serial, refused); err != nil || news {
			t.Fatalf("the replaced certificate's refusal: news %v, %v", news, err)
		}
		if r := f.status().Refused; r != nil {
			t.Fatalf("the replaced certificate's refusal stands: %+v", r)
		}
		if _, err := f.svc.RecordPushRefusal(f.ctx, f.tenant, current.Serial, apns.Result{Outcome: apns.Fatal, Status: http.StatusBadRequest, Reason: "TopicDisallowed"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.RecordPushRefusal(f.ctx, f.tenant, old.Serial, refused); err != nil {
			t.Fatal(err)
		}
		if r := f.status().Refused; r == nil || r.Reason != "TopicDisallowed" {
			t.Errorf("the current certificate's refusal after the replaced one's: %+v", r)
		}
	})
}

// TestTenantDeletionForgetsTheRefusal: deleting a tenant deletes APNs'
// standing refusal of its certificate and its push failure counts with the
// certificate.
func TestTenantDeletionForgetsTheRefusal(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newRefusalFixture(t, st)
		f.apns.answer(http.StatusForbidden, "BadCertificate")
		f.enqueue()
		f.run()
		if f.status().Refused == nil || f.failures("BadCertificate") != 1 {
			t.Fatalf("the refusal was not recorded: %+v", f.status().Refused)
		}
		if err := st.Tx(f.ctx, func(q store.Queries) error { return f.svc.ForgetTenant(f.ctx, q, f.tenant) }); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Read().Settings().Get(f.ctx, "apns-refusal:"+f.tenant); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the deleted tenant's refusal: %v, want it gone", err)
		}
		if v := f.failures("BadCertificate"); v != 0 {
			t.Errorf("the deleted tenant's failures are still counted: %v", v)
		}
	})
}
