package mdm_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/apple/certtest"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/proxy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

const testTopic = "com.apple.mgmt.External.2d3b5f0e-0000-4000-8000-000000000001"

// serve starts the device endpoints on a TLS loopback server.
func (f *fixture) serve() *httptest.Server { return f.serveWith(nil) }

// serveWith is serve with the HTTP configuration adjusted by adjust; the
// server asks for (does not require) TLS client certificates.
func (f *fixture) serveWith(adjust func(*mdm.HTTPConfig)) *httptest.Server {
	f.t.Helper()
	var h http.Handler
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	ts.StartTLS()
	f.t.Cleanup(ts.Close)
	f.svc = mdm.New(f.st, f.priv, f.sealer, mdm.Config{PublicURL: ts.URL}, f.log)
	cfg := mdm.HTTPConfig{Topic: func(context.Context, string) (string, error) { return testTopic, nil }}
	if adjust != nil {
		adjust(&cfg)
	}
	var err error
	if h, err = f.svc.Handler(cfg); err != nil {
		f.t.Fatal(err)
	}
	return ts
}

func (f *fixture) enrolled(ts *httptest.Server, o privacy.Ownership, subjectID string) (*sim.Device, store.Device) {
	f.t.Helper()
	return f.enrolledWith(ts, o, subjectID, nil)
}

// enrolledAs is enrolled for a device that names udid (when not empty), as
// one erased and enrolled again does.
func (f *fixture) enrolledAs(ts *httptest.Server, udid string, o privacy.Ownership, subjectID string) (*sim.Device, store.Device) {
	f.t.Helper()
	return f.enrolledWith(ts, o, subjectID, func(d *sim.Device) {
		if udid != "" {
			d.UDID = udid
		}
	})
}

// enrolledWith is enrolled for a device that adjust (when not nil) sets up
// before it enrols.
func (f *fixture) enrolledWith(ts *httptest.Server, o privacy.Ownership, subjectID string, adjust func(*sim.Device)) (*sim.Device, store.Device) {
	f.t.Helper()
	link := f.invite(o, subjectID)
	d, err := sim.New(ts.Client(), o == privacy.UserEnrolled)
	if err != nil {
		f.t.Fatal(err)
	}
	d.Personal, d.Account = o.PersonallyOwned(), f.emails[subjectID]
	if adjust != nil {
		adjust(d)
	}
	if err := d.Enrol(f.ctx, link, false); err != nil {
		f.t.Fatalf("enrolment: %v", err)
	}
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(d.Certificate()))
	if err != nil {
		f.t.Fatal(err)
	}
	dev, err := f.st.Read().Devices().Get(f.ctx, f.tenant, ch.DeviceID)
	if err != nil {
		f.t.Fatal(err)
	}
	return d, dev
}

// supervised sets a device up as Automated Device Enrollment or Apple
// Configurator does: its first DeviceInformation reports it supervised.
func supervised(d *sim.Device) { d.Supervised = true }

// mac makes a device a Mac.
func mac(d *sim.Device) { d.Model, d.ProductName = "Mac14,2", "Mac14,2" }

func (f *fixture) fields(deviceID string) map[string]privacy.FieldView {
	f.t.Helper()
	v, err := f.priv.ViewDevice(f.ctx, f.tenant, deviceID, privacy.Viewer{Actor: admin, AdminID: admin.ID})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]privacy.FieldView{}
	for _, fv := range v.Fields {
		out[fv.Field] = fv
	}
	return out
}

// The content types devices send.
const (
	checkinType = "application/x-apple-aspen-mdm-checkin"
	connectType = "application/x-apple-aspen-mdm"
)

func TestEnrolAndManageThroughTheProtocol(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ts := f.serve()
		for _, o := range []privacy.Ownership{privacy.Personal, privacy.Corporate, privacy.UserEnrolled} {
			f.publish(o)
		}
		erika := f.subject("erika@acme.test")

		// A personal device: enrolled, the initial inventory answered.
		phone, dev := f.enrolled(ts, privacy.Personal, erika)
		if dev.State != store.DeviceEnrolled || dev.SubjectID != erika {
			t.Fatalf("device after enrolment: %+v", dev)
		}
		n, err := phone.Poll(f.ctx)
		if err != nil || n != 3 {
			t.Fatalf("initial inventory: %d commands, %v", n, err)
		}
		got := f.fields(dev.ID)
		for _, never := range []string{"telephony.phone_number", "telephony.imei", "location.coordinates"} {
			if _, ok := got[never]; ok {
				t.Errorf("a personal device's %s was stored", never)
			}
		}
		// The device says 10 of its apps are managed, but none is known to
		// be the organisation's yet: no managed-app list, an empty catalogue
		// (TestPersonalDeviceKeepsOnlyOrganisationApps has the rest).
		var apps []privacy.App
		_ = json.Unmarshal(got["apps.installed"].Value, &apps)
		if len(apps) != 0 {
			t.Errorf("personal apps: %d, want none", len(apps))
		}
		if v := got["os.version"]; string(v.Value) != `"18.1"` || !got["device.serial_number"].Masked {
			t.Errorf("inventory: os %s, serial %+v", v.Value, got["device.serial_number"])
		}
		cs, _ := f.priv.Consents(f.ctx, f.tenant, erika)
		if len(cs.Consents) != 1 || cs.Consents[0].Method != "enrolment" {
			t.Errorf("enrolment consent: %+v", cs.Consents)
		}

		// A user-enrolled device never reports a UDID or serial.
		byod, bdev := f.enrolled(ts, privacy.UserEnrolled, erika)
		if _, err := byod.Poll(f.ctx); err != nil {
			t.Fatal(err)
		}
		for field := range f.fields(bdev.ID) {
			if strings.HasPrefix(field, "device.") || strings.HasPrefix(field, "telephony.") {
				t.Errorf("user enrollment stored %s", field)
			}
		}

		// A corporate device: lock it, with a PIN that is never stored in clear.
		mac, cdev := f.enrolled(ts, privacy.Corporate, "")
		if _, err := mac.Poll(f.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{cdev.ID}, mdmproto.DeviceLock{Message: "Call IT", PIN: "314159"}, "lost on a train", admin); err != nil {
			t.Fatal(err)
		}
		// Checked while the lock waits in the queue: acknowledging it
		// empties its stored payload.
		if bytes.Contains(storetest.AllValues(t, st), []byte("314159")) {
			t.Error("the queued lock's PIN is stored in clear")
		}
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceLocation{}, "where is it", admin); err == nil {
			t.Error("a personal device was located")
		}
		if n, err := mac.Poll(f.ctx); err != nil || n != 1 {
			t.Fatalf("lock: %d, %v", n, err)
		}
		if bytes.Contains(storetest.AllValues(t, st), []byte("314159")) {
			t.Error("the lock PIN is stored in clear")
		}

		// NotNow: not resent in the same exchange, sent again after Idle.
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{cdev.ID}, mdmproto.ProfileList{}, "", admin); err != nil {
			t.Fatal(err)
		}
		first := command(t, mac, map[string]any{"Status": "Idle"})
		if first.RequestType != "ProfileList" {
			t.Fatalf("first command: %+v", first)
		}
		if out, _ := mac.Send(f.ctx, map[string]any{"Status": "NotNow", "CommandUUID": first.CommandUUID}); len(out) != 0 {
			t.Fatalf("a NotNow command came back in the same exchange: %s", out)
		}
		if again := command(t, mac, map[string]any{"Status": "Idle"}); again.CommandUUID != first.CommandUUID {
			t.Fatalf("after Idle: %+v", again)
		}

		// Bad input: refused, never 401, nothing stored.
		head := auditSeq(t, st, f.tenant)
		other, _ := sim.New(ts.Client(), false)
		other.Forge(mac) // another UDID with mac's certificate
		var se *sim.StatusError
		if _, err := other.Send(f.ctx, map[string]any{"Status": "Idle"}); !errors.As(err, &se) || se.Status != http.StatusForbidden {
			t.Errorf("another device's certificate: %v", err)
		}
		if got := auditSeq(t, st, f.tenant); got != head+1 {
			t.Errorf("the identity mismatch was not audited (%d new entries)", got-head)
		}
		idle, _ := plist.Marshal(map[string]any{"Status": "Idle", "UDID": mac.UDID}, plist.XMLFormat)
		sig, _ := mac.Sign(idle)
		changed := bytes.Replace(idle, []byte("Idle"), []byte("NotNow"), 1)
		garbage := []byte("<?xml version=\"1.0\"?><plist><dict><key>Status</key>")
		garbageSig, _ := mac.Sign(garbage)
		metrics := prometheus.NewRegistry()
		metrics.MustRegister(f.svc.MetricsCollector())
		before := deviceOutcomes(t, metrics, f.tenant)
		for name, c := range map[string]struct {
			contentType, sig string
			body             []byte
			want             int
		}{
			"no signature":               {"application/x-apple-aspen-mdm", "", idle, 403},
			"bad signature":              {"application/x-apple-aspen-mdm", "bm90IGEgc2lnbmF0dXJl", idle, 403},
			"body changed after signing": {"application/x-apple-aspen-mdm", sig, changed, 403},
			"wrong content type":         {"text/plain", sig, idle, 415},
			"malformed plist":            {"application/x-apple-aspen-mdm", garbageSig, garbage, 400},
			"oversized body":             {"application/x-apple-aspen-mdm", sig, bytes.Repeat([]byte(" "), 5<<20), 413},
		} {
			_, err := mac.Raw(f.ctx, c.contentType, c.sig, c.body)
			if !errors.As(err, &se) || se.Status != c.want {
				t.Errorf("%s: %v, want HTTP %d", name, err, c.want)
			}
		}
		after := deviceOutcomes(t, metrics, f.tenant)
		for outcome, want := range map[string]float64{"not_signed": 3, "unsupported_type": 1, "bad_message": 1, "too_large": 1, "ok": 0} {
			if got := after[outcome] - before[outcome]; got != want {
				t.Errorf("refusals counted as %s: %v, want %v", outcome, got, want)
			}
		}
		if got := auditSeq(t, st, f.tenant); got != head+1 {
			t.Errorf("refused requests wrote %d audit entries", got-head-1)
		}
		if cmds, _ := st.Read().Commands().List(f.ctx, f.tenant, cdev.ID, store.Page{}); cmds[len(cmds)-1].State != "sent" {
			t.Errorf("a refused result changed the command: %+v", cmds[len(cmds)-1])
		}
		for name, c := range map[string]struct {
			method, path, contentType string
			body                      []byte
			want                      int // 0: any 4xx but 401
		}{
			"unsigned":       {"PUT", "/mdm/" + f.tenant + "/connect", connectType, []byte("<plist/>"), 0},
			"unknown tenant": {"PUT", "/mdm/00000000-0000-0000-0000-000000000000/connect", connectType, []byte("x"), 0},
			// Text PostgreSQL cannot hold must not reach it.
			"a NUL byte for tenant":     {"PUT", "/mdm/a%00b/connect", connectType, []byte("x"), 0},
			"invalid UTF-8 for tenant":  {"PUT", "/mdm/%FF/checkin", checkinType, []byte("x"), 0},
			"SCEP for a NUL tenant":     {"GET", "/scep/%00?operation=GetCACaps", "", nil, 0},
			"a check-in over its bound": {"PUT", "/mdm/" + f.tenant + "/checkin", checkinType, make([]byte, mdmproto.MaxCheckinBytes+1), http.StatusRequestEntityTooLarge},
			// The tenant is looked up before the body is read.
			"an unknown tenant's oversized check-in": {"PUT", "/mdm/00000000-0000-0000-0000-000000000000/checkin", checkinType,
				make([]byte, mdmproto.MaxCheckinBytes+1), http.StatusNotFound},
		} {
			req, _ := http.NewRequest(c.method, ts.URL+c.path, bytes.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode < 400 || resp.StatusCode >= 500 ||
				(c.want != 0 && resp.StatusCode != c.want) {
				t.Errorf("%s: HTTP %d", name, resp.StatusCode)
			}
		}

		// CheckOut: the profile was removed; the device's personal data goes.
		if _, err := phone.Checkin(f.ctx, map[string]any{"MessageType": "CheckOut", "Topic": testTopic, "UDID": phone.UDID}); err != nil {
			t.Fatal(err)
		}
		if d, _ := st.Read().Devices().Get(f.ctx, f.tenant, dev.ID); d.State != store.DeviceDeprovisioned {
			t.Errorf("after CheckOut the device is %s", d.State)
		}
		// It cannot come back with the same certificate: a new enrolment is needed.
		if _, err := phone.Checkin(f.ctx, phone.TokenUpdate()); !errors.As(err, &se) || se.Status != http.StatusForbidden {
			t.Errorf("TokenUpdate after CheckOut: %v", err)
		}
		if d, _ := st.Read().Devices().Get(f.ctx, f.tenant, dev.ID); d.State != store.DeviceDeprovisioned {
			t.Errorf("a checked-out device came back as %s", d.State)
		}

		// One link, two devices that both got a profile and a certificate:
		// once the first finished enrolling, the second is refused. (One
		// whose installation failed may be taken over: retry_test.go.)
		_, link, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: "corporate"}, admin)
		if err != nil {
			t.Fatal(err)
		}
		devA, _ := sim.New(ts.Client(), false)
		devB, _ := sim.New(ts.Client(), false)
		for _, d := range []*sim.Device{devA, devB} {
			if err := d.Prepare(f.ctx, link, false); err != nil {
				t.Fatal(err)
			}
		}
		if err := devA.Complete(f.ctx); err != nil {
			t.Fatal(err)
		}
		if err := devB.Complete(f.ctx); !errors.As(err, &se) || se.Status != http.StatusConflict {
			t.Errorf("a second device on a used link: %v", err)
		}
	})
}

// deviceOutcomes reads the device requests of tenant counted in reg, by
// outcome, with those refused before their tenant was read.
func deviceOutcomes(t *testing.T, reg *prometheus.Registry, tenant string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range counterSeries(t, reg, "steward_apple_device_requests_total") {
		if s.labels["tenant"] == tenant || s.labels["tenant"] == "unknown" {
			out[s.labels["outcome"]] += s.value
		}
	}
	return out
}

type sentCommand struct {
	CommandUUID string
	RequestType string
}

// channelSender is a device or one of its users: what sends on a channel.
type channelSender interface {
	Send(ctx context.Context, msg map[string]any) ([]byte, error)
}

func command(t *testing.T, d channelSender, msg map[string]any) sentCommand {
	t.Helper()
	out, err := d.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		CommandUUID string
		Command     struct{ RequestType string }
	}
	if _, err := plist.Unmarshal(out, &c); err != nil {
		t.Fatalf("command %q: %v", out, err)
	}
	return sentCommand{c.CommandUUID, c.Command.RequestType}
}

func auditSeq(t *testing.T, st store.Store, tenant string) int64 {
	t.Helper()
	h, err := st.Read().Audit().Head(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return h.Seq
}

// TestRenewedCertificateForAnotherDevice: a renewed certificate the
// channel has not moved to yet, speaking for another UDID, is refused and
// audited as the device's, on both endpoints (at most once per interval,
// counting the refusals between), and changes nothing else: the device it
// was issued to still moves its channel over with it.
func TestRenewedCertificateForAnotherDevice(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		mac, dev := f.enrolled(ts, privacy.Corporate, "")
		old := mac.Certificate()
		if err := mac.RenewIdentity(f.ctx); err != nil {
			t.Fatal(err)
		}
		head, before := auditSeq(t, st, f.tenant), valuesBesideAudit(t, st)
		thief, _ := sim.New(ts.Client(), false)
		thief.Forge(mac)
		if _, err := thief.Send(f.ctx, map[string]any{"Status": "Idle"}); status(t, err) != http.StatusForbidden {
			t.Errorf("a connect with the renewed certificate for another UDID: %v, want 403", err)
		}
		update := thief.TokenUpdate()
		update["Topic"] = testTopic
		if _, err := thief.Checkin(f.ctx, update); status(t, err) != http.StatusForbidden {
			t.Errorf("a check-in with the renewed certificate for another UDID: %v, want 403", err)
		}
		// Audited once per interval while it goes on: the check-in right
		// after the connect is counted into the next entry.
		if got := auditSeq(t, st, f.tenant); got != head+1 {
			t.Errorf("%d audit entries after two refusals in a row, want 1", got-head)
		}
		f.svc.SetClock(func() time.Time { return time.Now().Add(6 * time.Minute) })
		if _, err := thief.Send(f.ctx, map[string]any{"Status": "Idle"}); status(t, err) != http.StatusForbidden {
			t.Errorf("a connect with the renewed certificate for another UDID, later: %v, want 403", err)
		}
		refused, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.identity_mismatch", AfterSeq: head})
		if err != nil || len(refused) != 2 || refused[0].TargetID != dev.ID || refused[1].TargetID != dev.ID || refused[0].Outcome != "denied" {
			t.Fatalf("refusals audited: %+v (%v), want two against %s", refused, err, dev.ID)
		}
		var details struct {
			Since int `json:"refusals_since_last_entry"`
		}
		if err := json.Unmarshal(refused[1].Details, &details); err != nil || details.Since != 1 {
			t.Errorf("the second entry counts %s refusals since the first (%v), want 1", refused[1].Details, err)
		}
		if got := auditSeq(t, st, f.tenant); got != head+2 {
			t.Errorf("%d audit entries, want the 2 refusals", got-head)
		}
		if !bytes.Equal(valuesBesideAudit(t, st), before) {
			t.Error("a refused request changed the database")
		}
		if _, err := mac.Poll(f.ctx); err != nil {
			t.Fatalf("the device's own renewed certificate: %v", err)
		}
		ch, _ := st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
		if !bytes.Equal(ch.CertFingerprint, mdm.Fingerprint(mac.Certificate())) || bytes.Equal(ch.CertFingerprint, mdm.Fingerprint(old)) {
			t.Error("the channel did not move to the renewed certificate")
		}
	})
}

// valuesBesideAudit is every stored value but the audit log's.
func valuesBesideAudit(t *testing.T, st store.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := st.(*sqlstore.DB).Dump(context.Background(), map[string]bool{"audit_entries": true, "audit_heads": true},
		func(sqlstore.DumpInfo) error { return nil }, func(table string, row []any) error {
			fmt.Fprintf(&buf, "%s %v\n", table, row)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestIdentityWithoutSignatures: a device identified by its TLS client
// certificate, or by a trusted proxy's header, and nothing else; a request
// presenting two different certificates is refused, and a refusal behind a
// proxy records the device's address, not the proxy's.
func TestIdentityWithoutSignatures(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	cfg := func(c *mdm.HTTPConfig) {
		c.ClientCertHeader = "X-Client-Cert"
		c.Proxies = proxy.Trusted{netip.MustParsePrefix("10.0.0.0/8")}
	}
	ts := f.serveWith(cfg)
	f.publish(privacy.Corporate)
	mac, macDev := f.enrolled(ts, privacy.Corporate, "")
	other, _ := f.enrolled(ts, privacy.Corporate, "")
	idle, _ := plist.Marshal(map[string]any{"Status": "Idle", "UDID": mac.UDID}, plist.XMLFormat)
	// Through the network: the peer is 127.0.0.1, no trusted proxy.
	send := func(client *http.Client) int {
		req, _ := http.NewRequest("PUT", mac.ServerURL(), bytes.NewReader(idle))
		req.Header.Set("Content-Type", "application/x-apple-aspen-mdm")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	withCert := func(d *sim.Device) *http.Client {
		tr := ts.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{d.TLSCertificate()}
		return &http.Client{Transport: tr}
	}
	if got := send(withCert(mac)); got != http.StatusOK {
		t.Errorf("TLS client certificate: HTTP %d", got)
	}
	if got := send(ts.Client()); got != http.StatusForbidden {
		t.Errorf("no identity: HTTP %d", got)
	}
	// A body signed by mac over a TLS connection made with other's certificate.
	signedAs := func(client *http.Client) error {
		probe, _ := sim.New(client, false)
		probe.Forge(mac)
		probe.UDID = mac.UDID
		_, err := probe.Send(f.ctx, map[string]any{"Status": "Idle"})
		return err
	}
	if err := signedAs(withCert(mac)); err != nil {
		t.Errorf("signature and TLS certificate of the same device: %v", err)
	}
	var se *sim.StatusError
	head := auditSeq(t, f.st, f.tenant)
	if err := signedAs(withCert(other)); !errors.As(err, &se) || se.Status != http.StatusForbidden {
		t.Errorf("signature of one device over another's TLS certificate: %v, want 403", err)
	}
	twoDevices, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.identity_mismatch", AfterSeq: head})
	if err != nil || len(twoDevices) != 1 || twoDevices[0].TargetID != macDev.ID || !strings.Contains(twoDevices[0].Reason, "together with another device's") {
		t.Errorf("the refusal of two devices' certificates audited as %+v (%v), want one entry against the signer %s", twoDevices, err, macDev.ID)
	}

	// Through a proxy, served in process so the peer address can be chosen.
	h, err := f.svc.Handler(mdm.HTTPConfig{Topic: func(context.Context, string) (string, error) { return testTopic, nil }})
	if err != nil {
		t.Fatal(err)
	}
	proxied, err := f.svc.Handler(func() mdm.HTTPConfig {
		c := mdm.HTTPConfig{Topic: func(context.Context, string) (string, error) { return testTopic, nil }}
		cfg(&c)
		return c
	}())
	if err != nil {
		t.Fatal(err)
	}
	// Trusted proxies for the client's address only, certificates not
	// forwarded.
	addressesOnly, err := f.svc.Handler(mdm.HTTPConfig{Topic: func(context.Context, string) (string, error) { return testTopic, nil },
		Proxies: proxy.Trusted{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	header := func(d *sim.Device) string {
		return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.Certificate().Raw})))
	}
	// peerTLS is the connection's state: a proxy may present its own
	// client certificate; viaSig, when set, signs the body.
	var peerTLS *tls.ConnectionState
	var viaSig string
	via := func(h http.Handler, peer string, certs ...string) int {
		req := httptest.NewRequest("PUT", mac.ServerURL(), bytes.NewReader(idle))
		req.RemoteAddr, req.TLS = peer, peerTLS
		if viaSig != "" {
			req.Header.Set("Mdm-Signature", viaSig)
		}
		req.Header.Set("Content-Type", "application/x-apple-aspen-mdm")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		for _, c := range certs {
			req.Header.Add("X-Client-Cert", c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	foreign, _ := sim.PushCertificatePEM("com.apple.mgmt.External.x")
	for _, c := range []struct {
		what    string
		handler http.Handler
		peer    string
		certs   []string
		want    int
	}{
		{"a trusted proxy's header", proxied, "10.0.0.5:443", []string{header(mac)}, http.StatusOK},
		{"the header from an untrusted peer", proxied, "192.0.2.7:443", []string{header(mac)}, http.StatusForbidden},
		{"the header with forwarding off", h, "10.0.0.5:443", []string{header(mac)}, http.StatusForbidden},
		{"a foreign certificate by header", proxied, "10.0.0.5:443", []string{url.QueryEscape(string(foreign))}, http.StatusForbidden},
		{"the header twice (a proxy that adds it)", proxied, "10.0.0.5:443", []string{header(mac), header(mac)}, http.StatusForbidden},
	} {
		if got := via(c.handler, c.peer, c.certs...); got != c.want {
			t.Errorf("%s: HTTP %d, want %d", c.what, got, c.want)
		}
	}
	// A proxy that authenticates to Steward with a client certificate of
	// its own: that certificate is the proxy's, no device's, and neither
	// stands in for nor clashes with the device's identity.
	edge, _ := certtest.IssueUntil(t, "edge-proxy", false, time.Now().Add(time.Hour), x509.KeyUsageDigitalSignature, nil, nil)
	peerTLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{edge}}
	if got := via(proxied, "10.0.0.5:443", header(mac)); got != http.StatusOK {
		t.Errorf("a proxy with its own client certificate forwarding the device's: HTTP %d, want 200", got)
	}
	if viaSig, err = mac.Sign(idle); err != nil {
		t.Fatal(err)
	}
	if got := via(proxied, "10.0.0.5:443"); got != http.StatusOK {
		t.Errorf("a signed request through a proxy with its own client certificate: HTTP %d, want 200", got)
	}
	if got := via(addressesOnly, "10.0.0.5:443"); got != http.StatusOK {
		t.Errorf("a signed request through a proxy with its own client certificate, forwarding none: HTTP %d, want 200", got)
	}
	if got := via(proxied, "192.0.2.7:443"); got != http.StatusForbidden {
		t.Errorf("a signed request beside a foreign TLS certificate of a client that is no proxy: HTTP %d, want 403", got)
	}
	// A proxy passing TLS through: the device's own certificate, from the
	// proxy's address, still identifies it, alone or beside its signature.
	peerTLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{mac.Certificate()}}
	for _, signed := range []string{"", viaSig} {
		viaSig = signed
		if got := via(addressesOnly, "10.0.0.5:443"); got != http.StatusOK {
			t.Errorf("the device's TLS certificate from a proxy's address (signed: %v): HTTP %d, want 200", signed != "", got)
		}
	}
	peerTLS, viaSig = nil, ""
	// A signed request beside a certificate of no device of the tenant (a
	// proxy forwarding something else): refused, but no second device to
	// report.
	// (Signed by other: mac's refusals are within their audit interval.)
	head = auditSeq(t, f.st, f.tenant)
	otherIdle, _ := plist.Marshal(map[string]any{"Status": "Idle", "UDID": other.UDID}, plist.XMLFormat)
	sig, err := other.Sign(otherIdle)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("PUT", other.ServerURL(), bytes.NewReader(otherIdle))
	req.RemoteAddr = "10.0.0.5:443"
	req.Header.Set("Content-Type", "application/x-apple-aspen-mdm")
	req.Header.Set("Mdm-Signature", sig)
	stranger, _ := certtest.IssueUntil(t, "steward-device-stranger", false, time.Now().Add(time.Hour), x509.KeyUsageDigitalSignature, nil, nil)
	req.Header.Set("X-Client-Cert", url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: stranger.Raw}))))
	rec := httptest.NewRecorder()
	proxied.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || auditSeq(t, f.st, f.tenant) != head {
		t.Errorf("a signature beside a foreign certificate: HTTP %d, audit entries %d; want 403 and none", rec.Code, auditSeq(t, f.st, f.tenant)-head)
	}
	if got := via(proxied, "10.0.0.5:443", header(other)); got != http.StatusForbidden {
		t.Fatalf("another device's certificate through the proxy: HTTP %d", got)
	}
	refused, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.identity_mismatch", AfterSeq: head})
	if err != nil || len(refused) != 1 || refused[0].SourceIP != "203.0.113.9" {
		t.Fatalf("the refusal's audit entries: %+v, %v; want one from the device's address 203.0.113.9", refused, err)
	}
}

// TestUnansweredCommandIsAbandoned: a command the device keeps receiving and
// never answers (its MDM client fails on it) is given up after
// maxUnanswered deliveries, and the queue behind it moves again.
func TestUnansweredCommandIsAbandoned(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolledWith(ts, privacy.Corporate, "", supervised) // restarts need supervision
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	stuck, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.RestartDevice{}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	behind, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ProfileList{}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if got := command(t, d, map[string]any{"Status": "Idle"}); got.CommandUUID != stuck[0].ID {
			t.Fatalf("check-in %d got %+v, want the unanswered %s again", i+1, got, stuck[0].ID)
		}
	}
	if got := command(t, d, map[string]any{"Status": "Idle"}); got.CommandUUID != behind[0].ID {
		t.Fatalf("the sixth check-in got %+v, want the command queued behind, %s", got, behind[0].ID)
	}
	c, err := f.st.Read().Commands().Get(f.ctx, f.tenant, stuck[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != store.CommandError || c.Attempts != 5 || !strings.Contains(mdm.ErrorSummary(c.ErrorChain), "did not answer") {
		t.Fatalf("the abandoned command is %s after %d attempts (%q), want an error after 5", c.State, c.Attempts, mdm.ErrorSummary(c.ErrorChain))
	}
}
