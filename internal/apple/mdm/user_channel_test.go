package mdm_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestUserChannelMessages: Steward declines macOS user channels, but a
// message on one is still vetted like any other: the certificate must be
// the channel's of the device the message names, and that device managed.
func TestUserChannelMessages(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	mac, _ := f.enrolled(ts, privacy.Corporate, "")
	other, _ := f.enrolled(ts, privacy.Corporate, "")
	user := func(d *sim.Device, msg map[string]any) map[string]any {
		msg["UserID"], msg["UserShortName"], msg["UDID"] = "A1B2C3D4-1111-2222-3333-444455556666", "jdoe", d.UDID
		return msg
	}
	authenticate := func(d *sim.Device) map[string]any {
		return user(d, map[string]any{"MessageType": "UserAuthenticate", "Topic": testTopic})
	}
	status := func(err error) int {
		var se *sim.StatusError
		if err == nil {
			return http.StatusOK
		}
		if errors.As(err, &se) {
			return se.Status
		}
		t.Fatal(err)
		return 0
	}

	if _, err := mac.Checkin(f.ctx, authenticate(mac)); status(err) != http.StatusGone {
		t.Errorf("UserAuthenticate: %v, want 410 (declined)", err)
	}
	tokenUpdate := user(mac, mac.TokenUpdate())
	if _, err := mac.Checkin(f.ctx, tokenUpdate); err != nil {
		t.Errorf("user-channel TokenUpdate: %v", err)
	}
	if out, err := mac.Send(f.ctx, user(mac, map[string]any{"Status": "Idle"})); err != nil || len(out) != 0 {
		t.Errorf("user-channel Idle: %q, %v; want an empty 200", out, err)
	}
	// mac's certificate speaking for another device's user.
	if _, err := mac.Checkin(f.ctx, authenticate(other)); status(err) != http.StatusForbidden {
		t.Errorf("a user channel under another device's UDID: %v, want 403", err)
	}
	impostor, _ := sim.New(ts.Client(), false) // Send names the sender itself
	impostor.UDID = other.UDID
	impostor.Forge(mac)
	if _, err := impostor.Send(f.ctx, user(other, map[string]any{"Status": "Idle"})); status(err) != http.StatusForbidden {
		t.Errorf("a user-channel Idle under another device's UDID: %v, want 403", err)
	}

	if _, err := mac.Checkin(f.ctx, mac.CheckOut()); err != nil {
		t.Fatal(err)
	}
	if _, err := mac.Checkin(f.ctx, authenticate(mac)); status(err) != http.StatusForbidden {
		t.Errorf("UserAuthenticate after CheckOut: %v, want 403", err)
	}
	if _, err := mac.Send(f.ctx, user(mac, map[string]any{"Status": "Idle"})); status(err) != http.StatusForbidden {
		t.Errorf("user-channel Idle after CheckOut: %v, want 403", err)
	}
}
