package mdm_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPutOffCommandIsPushedAgain: a device whose exchange ends on a result
// while a command it put off (NotNow) is still open waits for a push, as
// Apple documents; Steward schedules one so that command is not stranded.
// An exchange that ends on NotNow needs none: the device polls by itself.
// A Mac user's channel is held to the same.
func TestPutOffCommandIsPushedAgain(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		d, dev := f.enrolledWith(ts, privacy.Corporate, "", mac)
		if _, err := d.Poll(f.ctx); err != nil {
			t.Fatal(err)
		}
		t.Run("device", func(t *testing.T) {
			putOffIsPushed(t, d, func(req mdmproto.Request) error {
				_, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, req, "", admin)
				return err
			}, func() time.Time {
				ch, err := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
				if err != nil {
					t.Fatal(err)
				}
				return ch.PushDueAt
			}, func() { f.pushDelivered(dev.ID) })
		})
		t.Run("user", func(t *testing.T) {
			jane := d.NewUser("jdoe", "Jane Doe")
			if err := jane.LogIn(f.ctx); err != nil {
				t.Fatal(err)
			}
			found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, "jdoe", lookupReason, admin)
			if err != nil || len(found) != 1 {
				t.Fatalf("jdoe's channel: %+v, %v", found, err)
			}
			channel := found[0].ID
			userPushDue := func() time.Time {
				ch, err := f.st.Read().AppleUserChannels().Get(f.ctx, f.tenant, channel)
				if err != nil {
					t.Fatal(err)
				}
				return ch.PushDueAt
			}
			putOffIsPushed(t, jane, func(req mdmproto.Request) error {
				_, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, channel, req, "", admin)
				return err
			}, userPushDue, func() {
				if err := f.st.Tx(f.ctx, func(q store.Queries) error {
					return q.AppleUserChannels().PushDone(f.ctx, f.tenant, channel, userPushDue(), time.Time{}, 0, nil)
				}); err != nil {
					t.Fatal(err)
				}
			})
		})
	})
}

// putOffIsPushed runs TestPutOffCommandIsPushedAgain on one channel.
func putOffIsPushed(t *testing.T, c channelSender, enqueue func(mdmproto.Request) error, pushDue func() time.Time, clearPush func()) {
	ctx := context.Background()
	for range 2 {
		if err := enqueue(mdmproto.ProfileList{}); err != nil {
			t.Fatal(err)
		}
	}
	clearPush()
	first := command(t, c, map[string]any{"Status": "Idle"})
	second := command(t, c, map[string]any{"Status": "NotNow", "CommandUUID": first.CommandUUID})
	if second.CommandUUID == first.CommandUUID {
		t.Fatal("the put-off command came back in the same exchange")
	}
	// Ending on NotNow: the device polls again by itself.
	if out, err := c.Send(ctx, map[string]any{"Status": "NotNow", "CommandUUID": second.CommandUUID}); err != nil || len(out) != 0 {
		t.Fatalf("the last NotNow: %q, %v", out, err)
	}
	if due := pushDue(); !due.IsZero() {
		t.Errorf("an exchange ending on NotNow scheduled a push at %v", due)
	}
	// Idle offers both again, in order: the first, put off once more,
	// then the second, whose answer ends the exchange with the first
	// still put off.
	again := command(t, c, map[string]any{"Status": "Idle"})
	if again.CommandUUID != first.CommandUUID {
		t.Fatalf("after Idle: %+v, want the first put-off command", again)
	}
	if next := command(t, c, map[string]any{"Status": "NotNow", "CommandUUID": again.CommandUUID}); next.CommandUUID != second.CommandUUID {
		t.Fatalf("after the first was put off again: %+v, want the second, put off in the exchange before", next)
	}
	if out, err := c.Send(ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": second.CommandUUID,
		"RequestType": second.RequestType, second.RequestType: []any{}}); err != nil || len(out) != 0 {
		t.Fatalf("the answer to the second: %q, %v", out, err)
	}
	if due := pushDue(); due.IsZero() || time.Until(due) > 10*time.Minute {
		t.Errorf("the put-off command left behind got no push soon (due %v)", due)
	}
}

// TestUndecodableResultKeepsNothing: a result that does not decode fails
// its command and leaves the inventory as it was; before, the empty values
// its decoder built replaced what the device had reported.
func TestUndecodableResultKeepsNothing(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ManagedApplicationList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	before := f.fields(dev.ID)["apps.managed"].Value
	if len(before) < 10 {
		t.Fatalf("apps.managed before: %s", before)
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ManagedApplicationList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	sent := command(t, d, map[string]any{"Status": "Idle"})
	if _, err := d.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": sent.CommandUUID,
		"ManagedApplicationList": "not a dictionary"}); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, sent.CommandUUID)
	if err != nil || got.State != store.CommandError {
		t.Fatalf("the command answered with garbage: %+v, %v", got, err)
	}
	if after := f.fields(dev.ID)["apps.managed"].Value; !json.Valid(after) || string(after) != string(before) {
		t.Errorf("apps.managed changed by an undecodable result: %s, was %s", after, before)
	}
}

// TestNonFiniteNumberFailsTheCommand: a result holding a NaN or infinite
// number does not decode, so its command finishes as failed and the device
// gets its 200. Before, the number passed the decoder, the gate could not
// encode it, the device got a 500 and the command stayed sent.
func TestNonFiniteNumberFailsTheCommand(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceInformation{Queries: []string{"BatteryLevel"}}, "", admin); err != nil {
			t.Fatal(err)
		}
		sent := command(t, d, map[string]any{"Status": "Idle"})
		if _, err := d.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": sent.CommandUUID, "RequestType": "DeviceInformation",
			"QueryResponses": map[string]any{"BatteryLevel": n}}); err != nil {
			t.Fatalf("BatteryLevel %v: %v", n, err)
		}
		got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, sent.CommandUUID)
		if err != nil || got.State != store.CommandError {
			t.Fatalf("BatteryLevel %v: %+v, %v, want the command failed", n, got, err)
		}
	}
}

// TestDeviceNamedTwiceGetsOneCommand: a bulk request naming a device twice
// queues one command for it.
func TestDeviceNamedTwiceGetsOneCommand(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, dev := f.enrolled(ts, privacy.Corporate, "")
	_, other := f.enrolled(ts, privacy.Corporate, "")
	cmds, skipped, err := f.svc.EnqueueBulk(f.ctx, f.tenant, []string{dev.ID, dev.ID, other.ID, dev.ID}, mdmproto.SecurityInfo{}, "", admin)
	if err != nil || len(cmds) != 2 || len(skipped) != 0 {
		t.Fatalf("bulk with a device named three times: %d commands, skipped %v, %v; want one each", len(cmds), skipped, err)
	}
}

// TestBulkSkipsIneligibleDevices: a bulk command leaves out the devices
// that cannot take it (one still enrolling, one whose ownership the command
// is not for) and those whose queue is full, says why for each, and queues
// the rest, audited with the counts. A request none can take fails as it
// would for one of them alone; a device that is not the tenant's fails it
// as not found.
func TestBulkSkipsIneligibleDevices(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		f.publish(privacy.Personal)
		ts := f.serve()
		_, corp := f.polled(ts, privacy.Corporate, "", supervised) // locating needs supervision
		_, full := f.enrolled(ts, privacy.Corporate, "")
		_, personal := f.enrolled(ts, privacy.Personal, f.subject("erika@acme.test"))
		pending, err := f.priv.RegisterDevice(f.ctx, f.tenant, privacy.DeviceInput{Ownership: "corporate", Platform: "ios"}, admin)
		if err != nil {
			t.Fatal(err)
		}
		// Room for the commands enrolment queued and a few more.
		const maxQueued = 8
		svc := mdm.New(st, f.priv, f.sealer, mdm.Config{PublicURL: ts.URL, MaxQueued: maxQueued}, nil)
		for open := f.open(full.ID); open < maxQueued; open++ {
			if _, err := svc.Enqueue(f.ctx, f.tenant, []string{full.ID}, mdmproto.ProfileList{}, "", admin); err != nil {
				t.Fatal(err)
			}
		}
		// Lost Mode first: a device is located only in it.
		if _, err := svc.Enqueue(f.ctx, f.tenant, []string{corp.ID}, mdmproto.EnableLostMode{Message: "Call IT"}, "", admin); err != nil {
			t.Fatal(err)
		}
		openBefore := f.open(corp.ID)
		reasons := func(skips []mdm.Skip) map[string]string {
			out := map[string]string{}
			for _, s := range skips {
				if s.Message == "" {
					t.Errorf("skip %+v says nothing for a person", s)
				}
				out[s.DeviceID] = s.Reason
			}
			return out
		}

		// Locating is for corporate devices only.
		head := auditSeq(t, st, f.tenant)
		cmds, skipped, err := svc.EnqueueBulk(f.ctx, f.tenant, []string{pending.ID, corp.ID, personal.ID, full.ID}, mdmproto.DeviceLocation{}, "lost in the office", admin)
		if err != nil {
			t.Fatalf("a bulk with ineligible devices: %v", err)
		}
		if len(cmds) != 1 || cmds[0].DeviceID != corp.ID {
			t.Fatalf("queued %+v, want the corporate device's command only", cmds)
		}
		want := map[string]string{pending.ID: mdm.SkipNotEnrolled, personal.ID: mdm.SkipOwnership, full.ID: mdm.SkipQueueFull}
		if got := reasons(skipped); !maps.Equal(got, want) {
			t.Errorf("skipped %v, want %v", got, want)
		}
		entries, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.command.enqueue", AfterSeq: head})
		if err != nil || len(entries) != 1 {
			t.Fatalf("audit: %v %v", entries, err)
		}
		var details map[string]any
		if err := json.Unmarshal(entries[0].Details, &details); err != nil {
			t.Fatal(err)
		}
		if details["devices"] != 1.0 || details["skipped_full_queue"] != 1.0 || details["skipped_ineligible"] != 2.0 ||
			entries[0].Reason != "lost in the office" || entries[0].TargetID != corp.ID {
			t.Errorf("audited %+v: %v; want it against the one device queued, %s", entries[0], details, corp.ID)
		}

		// All enrolled devices: the personal one is left out, with why.
		cmds, skipped, err = svc.EnqueueAllEnrolled(f.ctx, f.tenant, 10, mdmproto.DeviceLocation{}, "", admin)
		want = map[string]string{personal.ID: mdm.SkipOwnership, full.ID: mdm.SkipQueueFull}
		if got := reasons(skipped); err != nil || len(cmds) != 1 || !maps.Equal(got, want) {
			t.Errorf("all enrolled: %d queued, skipped %v, %v; want one, %v", len(cmds), got, err, want)
		}

		// None can take it: the error one of them gives alone.
		for _, c := range []struct {
			ids  []string
			req  mdmproto.Request
			kind apperr.Kind
		}{
			{[]string{pending.ID}, mdmproto.SecurityInfo{}, apperr.KindConflict},
			{[]string{personal.ID}, mdmproto.DeviceLocation{}, apperr.KindForbidden},
			{[]string{pending.ID, personal.ID}, mdmproto.DeviceLocation{}, apperr.KindConflict},
		} {
			before := auditSeq(t, st, f.tenant)
			_, _, bulkErr := svc.EnqueueBulk(f.ctx, f.tenant, c.ids, c.req, "", admin)
			_, oneErr := svc.Enqueue(f.ctx, f.tenant, c.ids[:1], c.req, "", admin)
			if !apperr.IsKind(bulkErr, c.kind) || bulkErr.Error() != oneErr.Error() {
				t.Errorf("%v to %d devices none can take: %v; want %v, as for the first alone", c.req.RequestType(), len(c.ids), bulkErr, oneErr)
			}
			if after := auditSeq(t, st, f.tenant); after != before {
				t.Errorf("a refused bulk wrote %d audit entries", after-before)
			}
		}
		// Only full queues: nothing queued, not an error (as before).
		if cmds, skipped, err := svc.EnqueueBulk(f.ctx, f.tenant, []string{full.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil || len(cmds) != 0 || len(skipped) != 1 {
			t.Errorf("a bulk to a full queue: %d queued, skipped %v, %v", len(cmds), skipped, err)
		}

		// A device of no tenant, or of another, is not found, whatever else
		// the request names.
		other := store.NewID()
		err = st.Tx(f.ctx, func(q store.Queries) error {
			return q.Tenants().Create(f.ctx, store.Tenant{ID: other, Kind: store.TenantCustomer, Name: "Other", Slug: "other-" + other[len(other)-6:],
				CreatedAt: f.now, UpdatedAt: f.now})
		})
		if err != nil {
			t.Fatal(err)
		}
		stranger, err := f.priv.RegisterDevice(f.ctx, other, privacy.DeviceInput{Ownership: "corporate", Platform: "ios"}, admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{store.NewID(), stranger.ID} {
			for _, ids := range [][]string{{id}, {corp.ID, id}, {pending.ID, id}} {
				if _, _, err := svc.EnqueueBulk(f.ctx, f.tenant, ids, mdmproto.SecurityInfo{}, "", admin); !apperr.IsKind(err, apperr.KindNotFound) {
					t.Errorf("a bulk naming %v: %v, want not found", ids, err)
				}
			}
		}
		if open := f.open(corp.ID); open != openBefore+2 {
			t.Errorf("the corporate device holds %d open commands, want the two locates beside %d", open, openBefore)
		}
	})
}

// open counts the open commands of a device's channel.
func (f *fixture) open(deviceID string) int {
	f.t.Helper()
	n, err := f.st.Read().Commands().OpenOnChannel(f.ctx, f.tenant, deviceID, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// TestPayloadThisNodeCannotOpenStaysQueued: a node not given the master key
// that sealed a command (another node's, after a rotation it missed)
// answers the device's check-in with a server error and leaves the command
// queued, however often the device asks; sent each time, it would be
// abandoned in the end as the device's failure to answer. After an hour
// it fails as Steward's error, and the queue behind it moves.
func TestPayloadThisNodeCannotOpenStaysQueued(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	f.svc.SetClock(func() time.Time { return f.now })
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	rotated := otherMasterKeyNode(t, f, ts.URL)
	cmds, err := rotated.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceInformation{Queries: []string{"OSVersion"}}, "", admin)
	if err != nil || len(cmds) != 1 {
		t.Fatalf("queued %d: %v", len(cmds), err)
	}
	for range 7 {
		var status *sim.StatusError
		if _, err := d.Poll(f.ctx); !errors.As(err, &status) || status.Status != http.StatusInternalServerError {
			t.Fatalf("a check-in whose command this node cannot open: %v, want a 500", err)
		}
	}
	c, err := f.st.Read().Commands().Get(f.ctx, f.tenant, cmds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != store.CommandQueued || c.Attempts != 0 || !c.SentAt.IsZero() {
		t.Fatalf("the command is %s after %d deliveries, want queued and never sent", c.State, c.Attempts)
	}
	behind, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceInformation{Queries: []string{"OSVersion"}}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	// A node with the key delivers it in the meantime (the device answers
	// NotNow): the hour starts again.
	f.now = f.now.Add(50 * time.Minute)
	if err := f.st.Tx(f.ctx, func(q store.Queries) error {
		sent, err := q.Commands().SendNext(f.ctx, f.tenant, dev.ID, "", true, f.now)
		if err == nil && sent.ID != cmds[0].ID {
			return fmt.Errorf("delivered %s first", sent.ID)
		}
		if err == nil {
			err = q.Commands().PutOff(f.ctx, f.tenant, sent.ID, sent.Attempts)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(50 * time.Minute)
	if _, err := d.Poll(f.ctx); err == nil {
		t.Fatal("a check-in whose command this node cannot open was answered")
	}
	if c, err = f.st.Read().Commands().Get(f.ctx, f.tenant, cmds[0].ID); err != nil || !store.CommandOpen(c.State) {
		t.Fatalf("a command another node delivered 50 minutes ago was given up here: %s (%v)", c.State, err)
	}
	f.now = f.now.Add(time.Hour)
	if _, err := d.Poll(f.ctx); err == nil {
		t.Fatal("the check-in that gives the command up was answered")
	}
	if n, err := d.Poll(f.ctx); err != nil || n != 1 {
		t.Fatalf("after an hour the device answered %d commands (%v), want the one behind", n, err)
	}
	for _, id := range []string{cmds[0].ID, behind[0].ID} {
		if c, err = f.st.Read().Commands().Get(f.ctx, f.tenant, id); err != nil {
			t.Fatal(err)
		}
		if id == cmds[0].ID && (c.State != store.CommandError || !strings.Contains(c.ErrorChain, "Steward could not open")) {
			t.Errorf("the unopened command: %s, %s; want failed as Steward's error", c.State, c.ErrorChain)
		}
		if id == behind[0].ID && c.State != store.CommandAcknowledged {
			t.Errorf("the command behind it is %s", c.State)
		}
	}
}

// TestAnswerKeptWhenTheNextPayloadDoesNotOpen: a device's answer to one
// command is kept when the claim of the next, whose payload this node
// cannot open, fails its exchange: undone with the claim, the answered
// command would be sent again at every check-in, carried out again, and
// in the end counted as never answered.
func TestAnswerKeptWhenTheNextPayloadDoesNotOpen(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		d, dev := f.enrolled(ts, privacy.Corporate, "")
		if _, err := d.Poll(f.ctx); err != nil {
			t.Fatal(err)
		}
		answered, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceInformation{Queries: []string{"OSVersion"}}, "", admin)
		if err != nil {
			t.Fatal(err)
		}
		rotated := otherMasterKeyNode(t, f, ts.URL)
		if _, err := rotated.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceInformation{Queries: []string{"OSVersion"}}, "", admin); err != nil {
			t.Fatal(err)
		}
		for range 6 {
			_, _ = d.Poll(f.ctx) // the exchanges fail with a server error once the first answer is in
		}
		c, err := f.st.Read().Commands().Get(f.ctx, f.tenant, answered[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != store.CommandAcknowledged || c.Attempts != 1 {
			t.Fatalf("the command the device answered is %s after %d deliveries, want acknowledged after 1", c.State, c.Attempts)
		}
	})
}

// otherMasterKeyNode is a node sharing f's store under another master key,
// as one given a rotated key that f's node missed: what it seals, f's node
// cannot open.
func otherMasterKeyNode(t *testing.T, f *fixture, publicURL string) *mdm.Service {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	sealer, err := secrets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	node := mdm.New(f.st, f.priv, sealer, mdm.Config{PublicURL: publicURL}, nil)
	node.SetClock(func() time.Time { return f.now })
	return node
}
