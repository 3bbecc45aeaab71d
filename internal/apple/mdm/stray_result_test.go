package mdm_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestStrayResultIsDropped: a late result for a command Steward no longer
// holds open on the channel (purged after its retention, or cancelled as
// its user channel closed) is dropped unread, and the exchange goes on: the
// device gets its next command with a 200 instead of a 400 that stalled its
// queue. A result naming another device's command is still refused, and
// audited as certificate misuse, once per interval however often it comes.
func TestStrayResultIsDropped(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		d, dev := f.enrolledWith(ts, privacy.Corporate, "", mac)
		other, otherDev := f.enrolled(ts, privacy.Corporate, "")
		for _, device := range []interface {
			Poll(context.Context) (int, error)
		}{d, other} {
			if _, err := device.Poll(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		const secret = "stray-result-secret-value"
		lateAnswer := func(id string) map[string]any {
			return map[string]any{"Status": "Acknowledged", "CommandUUID": id, "ProfileList": []any{map[string]any{"PayloadDisplayName": secret}}}
		}

		// Answered, then purged after its retention; the late repeat of
		// its answer gets the next command.
		purged, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ProfileList{}, "", admin)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := d.Poll(f.ctx); err != nil || n != 1 {
			t.Fatalf("poll: %d, %v", n, err)
		}
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			_, err := q.Commands().PurgeBefore(f.ctx, time.Now().Add(time.Hour), 100)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		next, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ProfileList{}, "", admin)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := d.Send(f.ctx, lateAnswer(purged[0].ID)); err != nil || !bytes.Contains(out, []byte(next[0].ID)) {
			t.Errorf("after a late result for a purged command: %q, %v; want the next command %s", out, err, next[0].ID)
		}

		// Another device's command: refused and audited, and it changes nothing.
		theirs, err := f.svc.Enqueue(f.ctx, f.tenant, []string{otherDev.ID}, mdmproto.ProfileList{}, "", admin)
		if err != nil {
			t.Fatal(err)
		}
		head := auditSeq(t, st, f.tenant)
		if _, err := d.Send(f.ctx, lateAnswer(theirs[0].ID)); status(t, err) != http.StatusForbidden {
			t.Errorf("a result for another device's command: %v, want 403", err)
		}
		if got := auditSeq(t, st, f.tenant); got != head+1 {
			t.Errorf("%d audit entries, want one for the identity mismatch alone", got-head)
		}
		// Sent again and again, it is refused each time but audited once
		// per interval: one device cannot grow the audit trail at will.
		for range 20 {
			if _, err := d.Send(f.ctx, lateAnswer(theirs[0].ID)); status(t, err) != http.StatusForbidden {
				t.Fatalf("a repeated result for another device's command: %v, want 403", err)
			}
		}
		if got := auditSeq(t, st, f.tenant); got != head+1 {
			t.Errorf("%d audit entries after 21 refusals in a row, want 1", got-head)
		}
		if got, _ := st.Read().Commands().Get(f.ctx, f.tenant, theirs[0].ID); got.State != store.CommandQueued {
			t.Errorf("another device's command after the refused result: %s", got.State)
		}

		// A user's channel closed after its command was sent: the late
		// answer is dropped with a 200, and the channel has nothing more.
		jane := d.NewUser("jdoe", "Jane Doe")
		if err := jane.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
		found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, "jdoe", lookupReason, admin)
		if err != nil || len(found) != 1 {
			t.Fatalf("jdoe's channel: %+v, %v", found, err)
		}
		sent, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, found[0].ID, mdmproto.ProfileList{}, "", admin)
		if err != nil {
			t.Fatal(err)
		}
		if got := command(t, jane, map[string]any{"Status": "Idle"}); got.CommandUUID != sent.ID {
			t.Fatalf("jane's command: %+v", got)
		}
		if _, err := f.svc.CloseUserChannel(f.ctx, f.tenant, dev.ID, found[0].ID, "left", admin); err != nil {
			t.Fatal(err)
		}
		if out, err := jane.Send(f.ctx, lateAnswer(sent.ID)); err != nil || len(out) != 0 {
			t.Errorf("a late result on a closed user channel: %q, %v; want an empty 200", out, err)
		}
		if _, err := jane.Send(f.ctx, lateAnswer(theirs[0].ID)); status(t, err) != http.StatusForbidden {
			t.Errorf("another device's command on a closed user channel: %v, want 403", err)
		}
		if got, _ := st.Read().Commands().Get(f.ctx, f.tenant, sent.ID); got.State != store.CommandCancelled {
			t.Errorf("the cancelled command after its late result: %s", got.State)
		}
		if bytes.Contains(storetest.AllValues(t, st), []byte(secret)) {
			t.Error("a dropped result's payload was stored")
		}
	})
}

// TestDeviceTextStaysOutOfTheLog: what a device sends reaches the log only
// as Steward's own words: an undecodable result as the kind of fault, a
// stray result's command ID only when it is one.
func TestDeviceTextStaysOutOfTheLog(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	var logged bytes.Buffer
	f.log = slog.New(slog.NewTextHandler(&logged, nil))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceInformation{Queries: []string{"DeviceCapacity"}}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Send(f.ctx, map[string]any{"Status": "Idle"}); err != nil {
		t.Fatal(err)
	}
	const marker = "Erika-Mustermann-private"
	// An answer naming, as its request type, text of the device's own,
	// which the decoder's verdict quotes; and a stray answer whose
	// command ID is such text.
	for _, answer := range []struct{ uuid, requestType string }{{cmds[0].ID, marker}, {marker, "DeviceInformation"}} {
		body := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Status</key><string>Acknowledged</string>` +
			`<key>RequestType</key><string>` + answer.requestType + `</string>` +
			`<key>UDID</key><string>` + d.UDID + `</string><key>CommandUUID</key><string>` + answer.uuid + `</string>` +
			`<key>QueryResponses</key><dict><key>DeviceCapacity</key><real>64</real></dict></dict></plist>`)
		sig, err := d.Sign(body)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = d.Raw(f.ctx, "application/x-apple-aspen-mdm", sig, body)
	}
	if c, err := f.st.Read().Commands().Get(f.ctx, f.tenant, cmds[0].ID); err != nil || c.State != store.CommandError {
		t.Fatalf("the undecodable answer left the command %s (%v); the test needs it refused as bad input", c.State, err)
	}
	if !strings.Contains(logged.String(), "undecodable result") || !strings.Contains(logged.String(), "no command open") {
		t.Fatalf("the log does not show both answers, so the test proves nothing:\n%s", logged.String())
	}
	if strings.Contains(logged.String(), marker) {
		t.Errorf("the device's text reached the log:\n%s", logged.String())
	}
}
