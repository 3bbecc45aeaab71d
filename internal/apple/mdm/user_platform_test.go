package mdm_test

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestUserAuthenticateOnlyFromAMac: Apple sends UserAuthenticate from a
// Mac enrolled by device enrolment only (userauthenticate.yaml: macOS,
// User Enrollment forbidden, iOS n/a). One from a User Enrollment, a
// Shared iPad or an iPhone gets 400, never a challenge (nor a 401), and
// stores nothing; their users' channels open with their TokenUpdate.
func TestUserAuthenticateOnlyFromAMac(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	f.publish(privacy.Shared)
	f.publish(privacy.Corporate)
	ts := f.serve()
	userEnrolledMac, _ := f.enrolledWith(ts, privacy.UserEnrolled, f.subject("erika@acme.test"), mac)
	ipad, _ := f.enrolledWith(ts, privacy.Shared, "", sharedIPad)
	phone, _ := f.enrolled(ts, privacy.Corporate, "")
	for name, u := range map[string]*sim.User{
		"a User Enrollment's Mac": userEnrolledMac.NewUser("erika", "Erika Mustermann"),
		"a Shared iPad":           sharedIPadUser(ipad, "anna@school.example"),
		"an iPhone":               phone.NewUser("jdoe", ""),
	} {
		before := storetest.AllValues(t, f.st)
		for _, msg := range []map[string]any{{"MessageType": "UserAuthenticate"}, {"MessageType": "UserAuthenticate", "DigestResponse": "abc"}} {
			if out, err := u.Checkin(f.ctx, msg); status(t, err) != http.StatusBadRequest {
				t.Errorf("%s: %v: %q, %v; want 400", name, msg, out, err)
			}
		}
		if !bytes.Equal(storetest.AllValues(t, f.st), before) {
			t.Errorf("%s: a refused UserAuthenticate changed the database", name)
		}
		if name == "an iPhone" {
			continue // no user channel at all: TestNoUserChannelOnAnIPhone
		}
		if err := u.LogIn(f.ctx); err != nil {
			t.Errorf("%s: a user logging in: %v", name, err)
		}
	}
}

// TestNoUserChannelOnAnIPhone: only a Mac and a Shared iPad have user
// channels (tokenupdate.yaml). A user's TokenUpdate from an iPhone, or
// from an iPad on User Enrollment, gets 400 and opens nothing.
func TestNoUserChannelOnAnIPhone(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	f.publish(privacy.Corporate)
	ts := f.serve()
	phone, _ := f.enrolled(ts, privacy.Corporate, "")
	byodIPad, _ := f.enrolledWith(ts, privacy.UserEnrolled, f.subject("erika@acme.test"), func(d *sim.Device) {
		d.Model, d.ProductName = "iPad13,1", "iPad13,1"
	})
	for name, u := range map[string]*sim.User{
		"an iPhone":                 phone.NewUser("jdoe", ""),
		"an iPad's User Enrollment": byodIPad.NewUser("erika", ""),
	} {
		before := storetest.AllValues(t, f.st)
		if err := u.LogIn(f.ctx); status(t, err) != http.StatusBadRequest {
			t.Errorf("%s: a user's TokenUpdate: %v; want 400", name, err)
		}
		if !bytes.Equal(storetest.AllValues(t, f.st), before) {
			t.Errorf("%s: a refused user TokenUpdate changed the database", name)
		}
	}
}

// TestSimulatedUsersSendTheirPlatformsKeys: a simulated user logs in as
// its device does (userauthenticate.yaml, tokenupdate.yaml): a Mac
// enrolled by device enrolment sends UserAuthenticate first, a User
// Enrollment's Mac and a Shared iPad do not; iOS has no NotOnConsole or
// UserLongName. A Shared iPad user's TokenUpdate, which names its user by
// UserID and UserShortName only, opens a user channel, not the device's.
func TestSimulatedUsersSendTheirPlatformsKeys(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	f.publish(privacy.Shared)
	f.publish(privacy.Corporate)
	ts := f.serve()
	rec := &checkinRecorder{next: ts.Client().Transport}
	ts.Client().Transport = rec // the client every simulated device of ts uses
	corporateMac, _ := f.enrolledWith(ts, privacy.Corporate, "", mac)
	userEnrolledMac, _ := f.enrolledWith(ts, privacy.UserEnrolled, f.subject("erika@acme.test"), mac)
	ipad, ipadDev := f.enrolledWith(ts, privacy.Shared, "", sharedIPad)
	macUser := []string{"MessageType", "NotOnConsole", "PushMagic", "Token", "Topic", "UDID", "UserID", "UserLongName", "UserShortName"}
	for _, c := range []struct {
		name string
		user *sim.User
		want [][]string // each message's keys, in order
	}{
		{"a Mac's user", corporateMac.NewUser("jdoe", "Jane Doe"),
			[][]string{{"MessageType", "UDID", "UserID", "UserLongName", "UserShortName"}, macUser}},
		{"a User Enrollment's Mac user", userEnrolledMac.NewUser("erika", "Erika Mustermann"),
			[][]string{{"EnrollmentID", "EnrollmentUserID", "MessageType", "NotOnConsole", "PushMagic", "Token", "Topic", "UserID", "UserLongName", "UserShortName"}}},
		{"a Shared iPad's user", sharedIPadUser(ipad, "anna@school.example"),
			[][]string{{"MessageType", "PushMagic", "Token", "Topic", "UDID", "UserID", "UserShortName"}}},
	} {
		rec.reset()
		if err := c.user.LogIn(f.ctx); err != nil {
			t.Errorf("%s logging in: %v", c.name, err)
		}
		if got := rec.keys(); !slices.EqualFunc(got, c.want, slices.Equal) {
			t.Errorf("%s logs in with %v; want %v", c.name, got, c.want)
		}
	}
	if ucs, err := f.svc.UserChannels(f.ctx, f.tenant, ipadDev.ID); err != nil || len(ucs) != 1 {
		t.Errorf("the Shared iPad's user channels: %+v, %v; want the user's", ucs, err)
	}
	if ch, err := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, ipadDev.ID); err != nil || !bytes.Equal(ch.PushToken, ipad.PushToken) {
		t.Errorf("the Shared iPad's device channel after its user's TokenUpdate: %v; want its own push token kept", err)
	}
}

// checkinRecorder records the keys of each check-in message sent through it.
type checkinRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent [][]string
}

func (r *checkinRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Content-Type") == checkinType && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var msg map[string]any
		if _, err := plist.Unmarshal(body, &msg); err == nil {
			r.mu.Lock()
			r.sent = append(r.sent, slices.Sorted(maps.Keys(msg)))
			r.mu.Unlock()
		}
	}
	return r.next.RoundTrip(req)
}

func (r *checkinRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = nil
}

func (r *checkinRecorder) keys() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}
