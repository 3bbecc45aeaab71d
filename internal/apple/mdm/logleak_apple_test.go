package mdm_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// capturedLog holds every record logged through its logger, at every
// level, as JSON and as text (without their time, whose digits could
// look like a PIN), messages and attributes alike.
type capturedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capturedLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capturedLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// captureLogs returns a logger writing to a new capturedLog, which also
// becomes slog's default for the test: a record logged past the service's
// own logger is caught too.
func captureLogs(t *testing.T) (*slog.Logger, *capturedLog) {
	t.Helper()
	c := &capturedLog{}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	logger := slog.New(slog.NewMultiHandler(slog.NewJSONHandler(c, opts), slog.NewTextHandler(c, opts)))
	previous := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(previous) })
	return logger, c
}

// leaks returns the canaries found in logged, in any of the encodings a
// log may give a value: as is, hex, base64 (JSON's for bytes). A canary of
// digits alone (a PIN) counts only standing alone, not inside a longer
// number.
func leaks(logged string, canaries map[string][]byte) []string {
	var found []string
	for name, v := range canaries {
		forms := []string{string(v), hex.EncodeToString(v), strings.ToUpper(hex.EncodeToString(v)),
			base64.StdEncoding.EncodeToString(v), base64.RawStdEncoding.EncodeToString(v), base64.RawURLEncoding.EncodeToString(v)}
		for _, form := range forms {
			if regexp.MustCompile(`^[0-9]+$`).MatchString(form) {
				if regexp.MustCompile(`(^|[^0-9])` + form + `([^0-9]|$)`).MatchString(logged) {
					found = append(found, name)
					break
				}
			} else if strings.Contains(logged, form) {
				found = append(found, name)
				break
			}
		}
	}
	return found
}

// challengeSpy is a device's HTTP client transport that reads the SCEP
// challenge out of every enrolment profile downloaded through it.
type challengeSpy struct {
	base       http.RoundTripper
	mu         sync.Mutex
	challenges []string
}

func (s *challengeSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/profile") || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if p7, err := pkcs7.Parse(body); err == nil {
		var doc struct {
			PayloadContent []struct {
				PayloadType    string
				PayloadContent map[string]any
			}
		}
		if _, err := plist.Unmarshal(p7.Content, &doc); err == nil {
			for _, p := range doc.PayloadContent {
				if c, ok := p.PayloadContent["Challenge"].(string); ok && p.PayloadType == "com.apple.security.scep" {
					s.mu.Lock()
					s.challenges = append(s.challenges, c)
					s.mu.Unlock()
				}
			}
		}
	}
	return resp, nil
}

func canary(t *testing.T, prefix string) []byte {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return []byte(prefix + hex.EncodeToString(b))
}

// TestAppleSecretsStayOutOfTheLog drives the Apple flows that handle
// secrets, through the HTTP endpoints a device uses, and finds none of
// them in any record logged, at any level: the enrolment link's secret
// (created, mailed, opened, accepted, and a forged one), the SCEP
// challenge, a TokenUpdate's push token, PushMagic and UnlockToken, a
// DeviceLock's PIN, a serial in a MachineInfo that does not decode, and
// a push APNs refuses.
func TestAppleSecretsStayOutOfTheLog(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	logger, logged := captureLogs(t)
	f.log = logger
	ts := f.serve()
	f.publish(privacy.Corporate)
	f.setPushCertificate()
	spy := &challengeSpy{base: ts.Client().Transport}
	client := &http.Client{Transport: spy}

	canaries := map[string][]byte{
		"forged link secret":    canary(t, "sel_forgedcanary"),
		"PushMagic":             canary(t, "PUSHMAGICCANARY"),
		"UnlockToken":           canary(t, "unlockcanary"),
		"replaced UnlockToken":  canary(t, "unlockcanarytwo"),
		"MachineInfo serial":    canary(t, "C02SERIALCANARY"),
		"DeviceLock PIN":        []byte("582917"),
		"push token":            canary(t, "pushtokencanary"),
		"push token, as bytes":  nil, // set below
		"mailed link secret":    nil,
		"shown link secret":     nil,
		"SCEP challenge":        nil,
		"Mac's SCEP challenge":  nil,
		"Mac's push token":      canary(t, "macpushtokencanary"),
		"Mac's PushMagic":       canary(t, "MACPUSHMAGICCANARY"),
		"Mac's Bootstrap Token": canary(t, "bootstrapcanary"),
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	canaries["push token, as bytes"] = raw

	// A link shown once, and one mailed; a forged one opened.
	link := f.invite(privacy.Corporate, "")
	canaries["shown link secret"] = []byte(path.Base(link))
	mailed := f.inviteByMail(privacy.Corporate, f.subject("max@acme.test"))
	canaries["mailed link secret"] = []byte(path.Base(mailed))
	if resp, err := client.Get(ts.URL + "/enrol/" + string(canaries["forged link secret"])); err != nil || resp.StatusCode == http.StatusOK {
		t.Fatalf("a forged link opened: %v %v", resp, err)
	}

	// An iPhone enrols by the shown link: the invitation, the notice, the
	// profile with its challenge, SCEP, Authenticate and TokenUpdate.
	phone, err := sim.New(client, false)
	if err != nil {
		t.Fatal(err)
	}
	phone.PushToken, phone.PushMagic = raw, string(canaries["PushMagic"])
	if err := phone.Prepare(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	if err := phone.Authenticate(f.ctx); err != nil {
		t.Fatal(err)
	}
	tu := phone.TokenUpdate()
	tu["UnlockToken"] = canaries["UnlockToken"]
	if _, err := phone.Checkin(f.ctx, tu); err != nil {
		t.Fatal(err)
	}
	// Another token, and a malformed TokenUpdate carrying one.
	phone.PushToken = canaries["push token"]
	tu = phone.TokenUpdate()
	tu["UnlockToken"] = canaries["replaced UnlockToken"]
	if _, err := phone.Checkin(f.ctx, tu); err != nil {
		t.Fatal(err)
	}
	tu["PushMagic"] = strings.Repeat("x", 300) + string(canaries["PushMagic"])
	if _, err := phone.Checkin(f.ctx, tu); err == nil {
		t.Fatal("a TokenUpdate with an overlong PushMagic was taken")
	}
	if _, err := phone.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}

	// A Mac enrols by the mailed link, escrows its Bootstrap Token and is
	// locked with a PIN.
	mac, err := sim.New(client, false)
	if err != nil {
		t.Fatal(err)
	}
	mac.Model, mac.ProductName = "Mac14,2", "Mac14,2"
	mac.PushToken, mac.PushMagic = canaries["Mac's push token"], string(canaries["Mac's PushMagic"])
	if err := mac.Enrol(f.ctx, mailed, false); err != nil {
		t.Fatal(err)
	}
	if _, err := mac.Checkin(f.ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": mac.UDID, "BootstrapToken": canaries["Mac's Bootstrap Token"]}); err != nil {
		t.Fatal(err)
	}
	if _, err := mac.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(mac.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{ch.DeviceID},
		mdmproto.DeviceLock{Message: "Call IT", PIN: mdmproto.SecretString(canaries["DeviceLock PIN"])}, "lost on a train", admin); err != nil {
		t.Fatal(err)
	}

	// APNs refuses the push that would wake it.
	apns := &answeringAPNs{status: http.StatusBadRequest, reason: "BadDeviceToken"}
	pusher := startAPNs(t, f, apns)
	pusher.Log = logger
	if _, err := pusher.RunOnce(f.ctx); err != nil {
		t.Fatal(err)
	}
	if apns.seen() == 0 {
		t.Fatal("nothing was pushed; the test proves nothing of a failed push")
	}
	if _, err := mac.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}

	// Account-driven enrolment with a MachineInfo that does not decode,
	// its decoder's message quoting the serial.
	body := `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>SERIAL</key><integer>` +
		string(canaries["MachineInfo serial"]) + `</integer></dict></plist>`
	if resp, err := client.Post(ts.URL+"/enrol/account", "application/pkcs7-signature", strings.NewReader(body)); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a malformed MachineInfo: %v %v, want 400", resp, err)
	}

	spy.mu.Lock()
	if len(spy.challenges) != 2 {
		t.Fatalf("%d challenges seen, want the two profiles'", len(spy.challenges))
	}
	canaries["SCEP challenge"], canaries["Mac's SCEP challenge"] = []byte(spy.challenges[0]), []byte(spy.challenges[1])
	spy.mu.Unlock()

	out := logged.String()
	for _, want := range []string{"scep: certificate issued", `"bad_token":2`, "account-driven enrolment request refused"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the log lacks %q, so the test proves less than it says:\n%s", want, out)
		}
	}
	if found := leaks(out, canaries); len(found) > 0 {
		t.Errorf("the log holds %v:\n%s", found, out)
	}
}

// TestMalformedMachineInfoIsLoggedByKind: the plist decoder's message
// quotes the value it could not read, which in a MachineInfo may be a
// serial or a UDID; the refusal is logged by the kind of fault alone.
func TestMalformedMachineInfoIsLoggedByKind(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	logger, logged := captureLogs(t)
	f.log = logger
	ts := f.serve()
	const serial = "C02MACHINEINFOSERIAL"
	body := `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PRODUCT</key><string>iPhone16,2</string>` +
		`<key>SERIAL</key><integer>` + serial + `</integer></dict></plist>`
	resp, err := ts.Client().Post(ts.URL+"/enrol/account", "application/pkcs7-signature", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a malformed MachineInfo: %v %v, want 400", resp, err)
	}
	_ = resp.Body.Close()
	out := logged.String()
	if !strings.Contains(out, "account-driven enrolment request refused") || !strings.Contains(out, "malformed") {
		t.Fatalf("the refusal was not logged with its kind:\n%s", out)
	}
	if strings.Contains(out, serial) {
		t.Errorf("the serial reached the log:\n%s", out)
	}
}
