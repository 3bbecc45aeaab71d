package mdm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/backup"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/exporttest"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func status(t *testing.T, err error) int {
	t.Helper()
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

// TestUserChannel: a user logging in on a managed Mac opens a channel of
// their own; profile commands queued for it go to that user alone, and
// Steward keeps no name, only indexes an admin can look an account up by.
func TestUserChannel(t *testing.T) {
	storetest.ForEachEngine(t, testUserChannel)
}

func testUserChannel(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, otherMac := f.enrolledWith(ts, privacy.Corporate, "", mac)
	mac, dev := f.enrolledWith(ts, privacy.Corporate, "", mac)
	if _, err := mac.Poll(f.ctx); err != nil { // the initial inventory
		t.Fatal(err)
	}
	jane, maxU := mac.NewUser("jdoe", "Jane Doe"), mac.NewUser("mmustermann", "Max Mustermann")

	// The handshake: a zero-length challenge (no password digest). A
	// second step with a digest anyway gets Apple's answer for a digest the
	// server does not take, 200 and an empty AuthToken, and changes nothing.
	out, err := jane.Checkin(f.ctx, map[string]any{"MessageType": "UserAuthenticate"})
	var challenge map[string]any
	if _, perr := plist.Unmarshal(out, &challenge); err != nil || perr != nil || challenge["DigestChallenge"] != "" {
		t.Fatalf("UserAuthenticate: %q, %v", out, err)
	}
	before := storetest.AllValues(t, st)
	out, err = jane.Checkin(f.ctx, map[string]any{"MessageType": "UserAuthenticate", "DigestResponse": "abc"})
	var token map[string]any
	if _, perr := plist.Unmarshal(out, &token); err != nil || perr != nil || len(token) != 1 || token["AuthToken"] != "" {
		t.Errorf("the second UserAuthenticate: %q, %v; want 200 and an empty AuthToken", out, err)
	}
	if !bytes.Equal(storetest.AllValues(t, st), before) {
		t.Error("the second UserAuthenticate changed the database")
	}
	// Before its TokenUpdate a user has no channel and no commands.
	if out, err := jane.Send(f.ctx, map[string]any{"Status": "Idle"}); err != nil || len(out) != 0 {
		t.Fatalf("Idle before the user's TokenUpdate: %q, %v", out, err)
	}
	for _, u := range []*sim.User{jane, maxU} {
		if err := u.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	all, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
	if err != nil || len(all) != 2 {
		t.Fatalf("user channels: %+v, %v", all, err)
	}
	found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, " JDoe ", lookupReason, admin)
	if err != nil || len(found) != 1 {
		t.Fatalf("looking up jdoe: %+v, %v", found, err)
	}
	janeCh := found[0]
	if none, err := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, "nobody", lookupReason, admin); err != nil || len(none) != 0 {
		t.Fatalf("an account that never logged in: %+v, %v", none, err)
	}
	// Whether an account used the device is a question about a person: each
	// lookup is audited, with its reason and what it found, without the name.
	lookups, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.user_channel.lookup", TargetID: dev.ID})
	if err != nil || len(lookups) != 2 || string(lookups[0].Details) != `{"found":true}` || string(lookups[1].Details) != `{"found":false}` {
		t.Fatalf("lookups audited as %+v, %v; want two, found and not", lookups, err)
	}
	for _, e := range lookups {
		if e.Reason != lookupReason {
			t.Errorf("a lookup audited with the reason %q; want %q", e.Reason, lookupReason)
		}
	}
	if raw, _ := json.Marshal(lookups); bytes.Contains(bytes.ToLower(raw), []byte("jdoe")) || bytes.Contains(raw, []byte("nobody")) {
		t.Errorf("an audit entry holds the account name: %s", raw)
	}
	// The account is kept as a keyed index, one that differs per device.
	idx, err := f.svc.AccountIndex(f.ctx, f.st.Read(), f.tenant, dev.ID, "jdoe")
	if err != nil || !bytes.Equal(janeCh.AccountIndex, idx) || bytes.Contains(janeCh.AccountIndex, []byte("jdoe")) || janeCh.PushToken == nil {
		t.Fatalf("jane's channel: %+v (%v)", janeCh, err)
	}
	if elsewhere, _ := f.svc.AccountIndex(f.ctx, f.st.Read(), f.tenant, otherMac.ID, "jdoe"); bytes.Equal(elsewhere, idx) {
		t.Error("the account index links one account across devices")
	}
	// A token refreshed keeps the channel; only the first one is audited.
	if _, err := jane.Checkin(f.ctx, jane.TokenUpdate()); err != nil {
		t.Fatal(err)
	}
	if opened, _ := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.user_channel.open"}); len(opened) != 2 {
		t.Errorf("%d user channels audited as opened, want 2", len(opened))
	}

	// Only profile commands go on a user channel.
	if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, janeCh.ID, mdmproto.DeviceInformation{}, "", admin); !apperr.IsKind(err, apperr.KindInvalid) {
		t.Errorf("DeviceInformation on a user channel: %v, want invalid", err)
	}
	if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, otherMac.ID, janeCh.ID, mdmproto.ProfileList{}, "", admin); !apperr.IsKind(err, apperr.KindNotFound) {
		t.Errorf("a user channel queued through another device: %v, want not found", err)
	}
	profile := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PayloadIdentifier</key><string>com.example.user.wifi</string>` +
		`<key>PayloadType</key><string>Configuration</string><key>PayloadUUID</key><string>5C4C0C5A-1B7E-4C1A-9C3E-2F1D6B7A8E90</string>` +
		`<key>PayloadVersion</key><integer>1</integer><key>PayloadContent</key><array/></dict></plist>`)
	install, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, janeCh.ID, mdmproto.InstallProfile{Payload: profile}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	if install.UserChannel != janeCh.ID {
		t.Fatalf("queued command: %+v", install)
	}
	if ch, _ := f.st.Read().AppleUserChannels().Get(f.ctx, f.tenant, janeCh.ID); ch.PushDueAt.IsZero() {
		t.Error("jane's channel was not put on the push queue")
	}
	// Neither the device channel nor another user gets jane's command, nor
	// can they answer it.
	if n, err := mac.Poll(f.ctx); err != nil || n != 0 {
		t.Fatalf("the device channel answered %d commands (%v), want none", n, err)
	}
	if n, err := maxU.Poll(f.ctx); err != nil || n != 0 {
		t.Fatalf("another user answered %d commands (%v), want none", n, err)
	}
	// Answered on the device channel, it is a stray result, dropped.
	if out, err := mac.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": install.ID}); err != nil || len(out) != 0 {
		t.Errorf("the device channel answering a user's command: %q, %v; want an empty 200", out, err)
	}
	if n, err := jane.Poll(f.ctx); err != nil || n != 1 || jane.Profiles["com.example.user.wifi"] == nil {
		t.Fatalf("jane answered %d commands (%v), profiles %v", n, err, jane.Profiles)
	}
	if got, _ := f.st.Read().Commands().Get(f.ctx, f.tenant, install.ID); got.State != store.CommandAcknowledged {
		t.Fatalf("jane's InstallProfile: %s", got.State)
	}

	// Apple sends no CheckOut on a user channel.
	if _, err := jane.Checkin(f.ctx, map[string]any{"MessageType": "CheckOut", "Topic": testTopic}); status(t, err) != http.StatusBadRequest {
		t.Errorf("a CheckOut on a user channel: %v, want 400", err)
	}
	// Jane left: an admin closes her channel, her queued command is
	// cancelled, and the channel forgets whose it was; maxU carries on.
	list, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, janeCh.ID, mdmproto.ProfileList{}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CloseUserChannel(f.ctx, f.tenant, otherMac.ID, janeCh.ID, "", admin); !apperr.IsKind(err, apperr.KindNotFound) {
		t.Errorf("closing a user channel through another device: %v, want not found", err)
	}
	closed, err := f.svc.CloseUserChannel(f.ctx, f.tenant, dev.ID, janeCh.ID, "left the company", admin)
	if err != nil || !closed.CheckedOut || closed.PushToken != nil || closed.UserIndex != nil || closed.AccountIndex != nil {
		t.Fatalf("closed: %+v, %v", closed, err)
	}
	if got, _ := f.st.Read().Commands().Get(f.ctx, f.tenant, list.ID); got.State != store.CommandCancelled ||
		mdm.ErrorSummary(got.ErrorChain) != "cancelled: an administrator closed the user's channel: left the company" {
		t.Errorf("a closed user channel's queued command: %s (%s)", got.State, mdm.ErrorSummary(got.ErrorChain))
	}
	if _, err := f.svc.CloseUserChannel(f.ctx, f.tenant, dev.ID, janeCh.ID, "", admin); !apperr.IsKind(err, apperr.KindConflict) {
		t.Errorf("closing twice: %v, want a conflict", err)
	}
	if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, janeCh.ID, mdmproto.ProfileList{}, "", admin); !apperr.IsKind(err, apperr.KindConflict) {
		t.Errorf("queuing for a closed user channel: %v, want a conflict", err)
	}
	if found, _ := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, "jdoe", lookupReason, admin); len(found) != 0 {
		t.Errorf("a closed channel still answers to its account: %+v", found)
	}
	if out, err := jane.Send(f.ctx, map[string]any{"Status": "Idle"}); err != nil || len(out) != 0 {
		t.Errorf("jane's Idle on her closed channel: %q, %v", out, err)
	}
	if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, all[1].ID, mdmproto.ProfileList{}, "", admin); err != nil {
		t.Errorf("maxU's channel after jane's closed: %v", err)
	}
	// Jane logs in again: a new channel.
	if _, err := jane.Checkin(f.ctx, jane.TokenUpdate()); err != nil {
		t.Fatal(err)
	}
	if again, _ := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, "jdoe", lookupReason, admin); len(again) != 1 || again[0].ID == janeCh.ID {
		t.Errorf("jane's channel after logging in again: %+v", again)
	}

	// The device leaves: every user channel closes with it.
	if _, err := mac.Checkin(f.ctx, mac.CheckOut()); err != nil {
		t.Fatal(err)
	}
	after, err := f.st.Read().AppleUserChannels().List(f.ctx, f.tenant, dev.ID)
	if err != nil || len(after) != 3 {
		t.Fatalf("user channels after the device's CheckOut: %+v, %v", after, err)
	}
	for _, uc := range after {
		if !uc.CheckedOut || uc.PushToken != nil || uc.AccountIndex != nil {
			t.Fatalf("a user channel after the device's CheckOut: %+v", uc)
		}
	}
	if err := maxU.LogIn(f.ctx); status(t, err) != http.StatusForbidden {
		t.Errorf("a user logging in on a Mac that left: %v, want 403", err)
	}
}

// TestUserChannelMessages: a message on a user channel is vetted like the
// device channel's: the certificate must be the channel's of the device
// the message names, and that device managed.
func TestUserChannelMessages(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	other, _ := f.enrolledWith(ts, privacy.Corporate, "", mac)
	mac, _ := f.enrolledWith(ts, privacy.Corporate, "", mac)
	stranger := other.NewUser("jdoe", "Jane Doe")

	// mac's certificate speaking for another device's user.
	impostor, _ := sim.New(ts.Client(), false) // Send names the sender itself
	impostor.UDID = other.UDID
	impostor.Forge(mac)
	forged := &sim.User{Device: impostor, ID: stranger.ID, ShortName: "jdoe"}
	if _, err := forged.Checkin(f.ctx, map[string]any{"MessageType": "UserAuthenticate"}); status(t, err) != http.StatusForbidden {
		t.Errorf("a user channel under another device's UDID: %v, want 403", err)
	}
	tokenUpdate := map[string]any{"MessageType": "TokenUpdate", "Topic": testTopic, "Token": []byte("token"), "PushMagic": "magic"}
	if _, err := forged.Checkin(f.ctx, tokenUpdate); status(t, err) != http.StatusForbidden {
		t.Errorf("a user TokenUpdate under another device's UDID: %v, want 403", err)
	}
	if _, err := forged.Send(f.ctx, map[string]any{"Status": "Idle"}); status(t, err) != http.StatusForbidden {
		t.Errorf("a user-channel Idle under another device's UDID: %v, want 403", err)
	}
	if _, err := mac.NewUser("x", "X").Checkin(f.ctx, map[string]any{"MessageType": "GetBootstrapToken"}); status(t, err) != http.StatusBadRequest {
		t.Errorf("a bootstrap token asked for on a user channel: %v, want 400", err)
	}

	if _, err := mac.Checkin(f.ctx, mac.CheckOut()); err != nil {
		t.Fatal(err)
	}
	user := mac.NewUser("jdoe", "Jane Doe")
	if _, err := user.Checkin(f.ctx, map[string]any{"MessageType": "UserAuthenticate"}); status(t, err) != http.StatusForbidden {
		t.Errorf("UserAuthenticate after CheckOut: %v, want 403", err)
	}
	if _, err := user.Send(f.ctx, map[string]any{"Status": "Idle"}); status(t, err) != http.StatusForbidden {
		t.Errorf("user-channel Idle after CheckOut: %v, want 403", err)
	}
}

// TestSharedIPadUsers: every Shared iPad user channel sends the same
// UserID; its users are told apart by their short name, so one user's
// commands never go to another.
func TestSharedIPadUsers(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Shared)
	ts := f.serve()
	ipad, dev := f.enrolledWith(ts, privacy.Shared, "", sharedIPad)
	if _, err := ipad.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	anna, ben := sharedIPadUser(ipad, "anna@school.example"), sharedIPadUser(ipad, "ben@school.example")
	for _, u := range []*sim.User{anna, ben} {
		if err := u.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, "anna@school.example", lookupReason, admin)
	if all, _ := f.svc.UserChannels(f.ctx, f.tenant, dev.ID); err != nil || len(found) != 1 || len(all) != 2 {
		t.Fatalf("channels: anna's %+v of %d, %v", found, len(all), err)
	}
	if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, found[0].ID, mdmproto.ProfileList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	if n, err := ben.Poll(f.ctx); err != nil || n != 0 {
		t.Fatalf("ben answered %d of anna's commands (%v)", n, err)
	}
	if n, err := anna.Poll(f.ctx); err != nil || n != 1 {
		t.Fatalf("anna answered %d commands (%v), want her one", n, err)
	}
	// The default policy drops usage logs of shared devices: when a user
	// last used the iPad is not shown, and the other times only by day.
	found, err = f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, "anna@school.example", lookupReason, admin)
	if err != nil || len(found) != 1 {
		t.Fatalf("anna's channel: %+v, %v", found, err)
	}
	day := found[0].CreatedAt.UTC().Truncate(24 * time.Hour)
	if uc := found[0]; !uc.LastCheckin.IsZero() || !uc.CreatedAt.Equal(day) || !uc.UpdatedAt.Equal(uc.UpdatedAt.UTC().Truncate(24*time.Hour)) {
		t.Errorf("a shared iPad user's channel shows when they used it: last check-in %v, created %v, updated %v",
			uc.LastCheckin, uc.CreatedAt, uc.UpdatedAt)
	}
}

// TestUserChannelTimesFollowTheUsagePolicy: a user channel's times tell
// when its user used the Mac. Under the default policy, which hides
// corporate usage logs, they are given by day and without the last
// check-in, as hidden data is seen only after a reason is given; where
// the policy shows usage logs, as they are.
func TestUserChannelTimesFollowTheUsagePolicy(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	mac, dev := f.enrolledWith(ts, privacy.Corporate, "", mac)
	erika := mac.NewUser("erika", "Erika Mustermann")
	if err := erika.LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	// The audit entry of her channel's opening is timed to the
	// microsecond: it does not say which channel, or it would tell when
	// she first logged in.
	opened := func() store.AuditEntry {
		t.Helper()
		es, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.user_channel.open", TargetID: dev.ID})
		if err != nil || len(es) == 0 {
			t.Fatalf("user channel openings audited: %+v, %v", es, err)
		}
		return es[len(es)-1]
	}
	if e := opened(); len(e.Details) != 0 || e.TargetID != dev.ID {
		t.Errorf("hidden usage: the opening of a user channel audited with %s on %s; want the device alone", e.Details, e.TargetID)
	}
	channel := func() store.AppleUserChannel {
		t.Helper()
		all, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
		if err != nil || len(all) != 1 {
			t.Fatalf("channels: %+v, %v", all, err)
		}
		return all[0]
	}
	hidden := func(what string, uc store.AppleUserChannel) {
		t.Helper()
		if !uc.LastCheckin.IsZero() || !uc.CreatedAt.Equal(uc.CreatedAt.UTC().Truncate(24*time.Hour)) {
			t.Errorf("hidden usage: %s shows when the channel was used: last check-in %v, created %v", what, uc.LastCheckin, uc.CreatedAt)
		}
	}
	hidden("the list", channel())
	// Her channel's commands are delivered and answered while she is
	// logged in: their times are given by the day too.
	if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, channel().ID, mdmproto.ProfileList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	if n, err := erika.Poll(f.ctx); err != nil || n != 1 {
		t.Fatalf("erika answered %d commands (%v)", n, err)
	}
	commandTimes := func() (sent, completed time.Time) {
		t.Helper()
		cmds, err := f.st.Read().Commands().List(f.ctx, f.tenant, dev.ID, store.Page{})
		if err == nil {
			err = mdm.HideUserChannelUsage(f.ctx, f.st.Read(), dev, cmds)
		}
		for _, c := range cmds {
			if c.UserChannel != "" {
				return c.SentAt, c.CompletedAt
			}
		}
		t.Fatalf("no user channel command in %+v (%v)", cmds, err)
		return
	}
	if sent, completed := commandTimes(); !sent.Equal(byDay(sent)) || !completed.Equal(byDay(completed)) || completed.IsZero() {
		t.Errorf("hidden usage: a user channel's command shows when it was delivered (%v) and answered (%v)", sent, completed)
	}
	// Closing it answers with the channel as the list shows it.
	if err := mac.NewUser("max", "Max Mustermann").LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	all, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
	if err != nil || len(all) != 2 {
		t.Fatalf("channels: %+v, %v", all, err)
	}
	closed, err := f.svc.CloseUserChannel(f.ctx, f.tenant, dev.ID, all[1].ID, "Max left the company", admin)
	if err != nil {
		t.Fatal(err)
	}
	hidden("closing a channel", closed)
	setDiagnostics(t, f, privacy.Corporate, privacy.Show)
	all, err = f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
	if err != nil || len(all) != 2 {
		t.Fatalf("channels: %+v, %v", all, err)
	}
	for _, uc := range all {
		if uc.LastCheckin.IsZero() || uc.CreatedAt.Equal(uc.CreatedAt.UTC().Truncate(24*time.Hour)) {
			t.Errorf("shown usage: a corporate Mac's user channel lost its times: last check-in %v, created %v", uc.LastCheckin, uc.CreatedAt)
		}
	}
	if sent, completed := commandTimes(); sent.Equal(byDay(sent)) || completed.Equal(byDay(completed)) {
		t.Errorf("shown usage: a user channel's command lost its times: %v, %v", sent, completed)
	}
	// Where usage is shown, so is which channel opened.
	if err := mac.NewUser("jonas", "Jonas Schmidt").LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	before := all
	all, err = f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
	if err != nil || len(all) != 3 {
		t.Fatalf("channels: %+v, %v", all, err)
	}
	jonas := slices.IndexFunc(all, func(uc store.AppleUserChannel) bool {
		return !slices.ContainsFunc(before, func(b store.AppleUserChannel) bool { return b.ID == uc.ID })
	})
	if e := opened(); jonas < 0 || string(e.Details) != `{"user_channel":"`+all[jonas].ID+`"}` {
		t.Errorf("shown usage: the opening of a user channel audited with %s; want its channel", e.Details)
	}
}

func byDay(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// TestErasureForgetsAccounts: erasing a person leaves their corporate Mac
// managed, but its user channels forget the account names, so the erased
// person's account can no longer be looked up there; the channels still
// carry commands. A backup taken before the erasure brings the account index
// back, and the erasure Steward re-applies after the restore forgets it again.
func TestErasureForgetsAccounts(t *testing.T) {
	storetest.ForEachEngine(t, testErasureForgetsAccounts)
}

func testErasureForgetsAccounts(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Corporate)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	mac, dev := f.enrolledWith(ts, privacy.Corporate, erika, mac)
	user := mac.NewUser("erika", "Erika Mustermann")
	if err := user.LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := mac.Poll(f.ctx); err != nil { // the initial inventory, so the device has a data key
		t.Fatal(err)
	}
	var before bytes.Buffer
	if _, err := backup.Create(f.ctx, st.(*sqlstore.DB), f.sealer, &before, nil); err != nil {
		t.Fatal(err)
	}
	signed, err := f.priv.EraseSubject(f.ctx, f.tenant, erika, "erasure request of 2026-12-01", admin)
	if err != nil {
		t.Fatal(err)
	}
	var cert privacy.Certificate
	if err := json.Unmarshal([]byte(signed.Certificate), &cert); err != nil || cert.RowsRemoved["apple_user_channel_accounts"] != 1 {
		t.Fatalf("deletion certificate: %+v, %v", cert.RowsRemoved, err)
	}
	checkForgotten := func(when string) {
		t.Helper()
		if found, _ := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, "erika", lookupReason, admin); len(found) != 0 {
			t.Fatalf("%s: the erased person's account is still found: %+v", when, found)
		}
		all, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
		if err != nil || len(all) != 1 || all[0].CheckedOut {
			t.Fatalf("%s: user channels: %+v, %v", when, all, err)
		}
		if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, all[0].ID, mdmproto.ProfileList{}, "", admin); err != nil {
			t.Fatal(err)
		}
		if n, err := user.Poll(f.ctx); err != nil || n != 1 {
			t.Fatalf("%s: the channel answered %d commands (%v)", when, n, err)
		}
	}
	checkForgotten("after the erasure")

	if _, err := backup.Restore(f.ctx, st.(*sqlstore.DB), f.sealer, bytes.NewReader(before.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	if found, _ := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, "erika", lookupReason, admin); len(found) != 1 {
		t.Fatalf("the restore did not bring the account index back (%d found); the test proves nothing", len(found))
	}
	if n, err := f.priv.ReconcileErasures(f.ctx); err != nil || n == 0 {
		t.Fatalf("re-applying erasures: %d, %v", n, err)
	}
	checkForgotten("after a restore of an older backup")
}

// TestUserChannelBound: a device keeps at most 100 open user channels. A
// new user beyond them is told at login that Steward will not manage them
// (410) and their TokenUpdate is refused, never with a 401; the users who
// have a channel go on, and closing one makes room. A Shared iPad's user,
// who sends no UserAuthenticate, is refused at the TokenUpdate.
func TestUserChannelBound(t *testing.T) {
	storetest.ForEachEngine(t, testUserChannelBound)
}

func testUserChannelBound(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Corporate)
	f.publish(privacy.Shared)
	ts := f.serve()
	mac, dev := f.enrolledWith(ts, privacy.Corporate, "", mac)
	fillUserChannels(t, f, dev, mac.NewUser("jdoe", "Jane Doe"), mac.NewUser("late", "Late Comer"), http.StatusGone)
	ipad, sharedDev := f.enrolledWith(ts, privacy.Shared, "", sharedIPad)
	fillUserChannels(t, f, sharedDev, sharedIPadUser(ipad, "anna@school.example"), sharedIPadUser(ipad, "late@school.example"), http.StatusConflict)
}

// fillUserChannels logs jane in on dev and fills its other 99 user
// channels. Late's login then gets loginStatus (410 at a Mac's
// UserAuthenticate, Apple's "not managed"; 409 at a Shared iPad user's
// TokenUpdate) and their TokenUpdate 409, while jane goes on; closing a
// channel lets late in.
func fillUserChannels(t *testing.T, f *fixture, dev store.Device, jane, late *sim.User, loginStatus int) {
	t.Helper()
	st := f.st
	if err := jane.LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	// 99 more users, straight into the store: the bound is on what is there.
	err := st.Tx(f.ctx, func(q store.Queries) error {
		for i := range 99 {
			if _, err := q.AppleUserChannels().Open(f.ctx, store.AppleUserChannel{ID: store.NewID(), TenantID: f.tenant, DeviceID: dev.ID,
				UserIndex: []byte(fmt.Sprintf("user-%d", i)), Topic: testTopic, PushToken: []byte("t"), PushMagic: "m",
				LastCheckin: f.now, UpdatedAt: f.now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before := storetest.AllValues(t, st)
	if err := late.LogIn(f.ctx); status(t, err) != loginStatus {
		t.Errorf("login of a 101st user: %v; want %d", err, loginStatus)
	}
	if _, err := late.Checkin(f.ctx, late.TokenUpdate()); status(t, err) != http.StatusConflict {
		t.Errorf("TokenUpdate of a 101st user: %v; want 409", err)
	}
	if !bytes.Equal(storetest.AllValues(t, st), before) {
		t.Error("a refused user changed the database")
	}
	// Jane has a channel: her login and a new token still go through.
	if err := jane.LogIn(f.ctx); err != nil {
		t.Errorf("a user with a channel logging in again at the bound: %v", err)
	}
	all, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
	if err != nil || len(all) != 100 {
		t.Fatalf("user channels: %d, %v; want 100", len(all), err)
	}
	if _, err := f.svc.CloseUserChannel(f.ctx, f.tenant, dev.ID, all[len(all)-1].ID, "left the company", admin); err != nil {
		t.Fatal(err)
	}
	if err := late.LogIn(f.ctx); err != nil {
		t.Errorf("a new user once a channel was closed: %v", err)
	}
}

// TestUserTokenUpdateChecked: a user's TokenUpdate names its device's
// topic, and its token and PushMagic are no longer than a real device's;
// the device channel's TokenUpdate passes the same checks of length.
func TestUserTokenUpdateChecked(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	mac, dev := f.enrolledWith(ts, privacy.Corporate, "", mac)
	u := mac.NewUser("x", "")
	for name, change := range map[string]func(m map[string]any){
		"another topic":      func(m map[string]any) { m["Topic"] = "com.apple.mgmt.External.someone-else" },
		"a 900 KiB topic":    func(m map[string]any) { m["Topic"] = strings.Repeat("a", 900<<10) },
		"a 50 KiB PushMagic": func(m map[string]any) { m["PushMagic"] = strings.Repeat("b", 50<<10) },
		"a 300-byte token":   func(m map[string]any) { m["Token"] = bytes.Repeat([]byte{1}, 300) },
		"a topic of 300":     func(m map[string]any) { m["Topic"] = testTopic + strings.Repeat("c", 300) },
		"a PushMagic of 300": func(m map[string]any) { m["PushMagic"] = strings.Repeat("d", 300) },
	} {
		msg := u.TokenUpdate()
		change(msg)
		if _, err := u.Checkin(f.ctx, msg); status(t, err) != http.StatusBadRequest {
			t.Errorf("a user's TokenUpdate with %s: %v; want 400", name, err)
		}
	}
	if all, err := f.st.Read().AppleUserChannels().List(f.ctx, f.tenant, dev.ID); err != nil || len(all) != 0 {
		t.Errorf("refused TokenUpdates opened %d channels (%v)", len(all), err)
	}
	long := mac.TokenUpdate()
	long["PushMagic"] = strings.Repeat("b", 50<<10)
	if _, err := mac.Checkin(f.ctx, long); status(t, err) != http.StatusBadRequest {
		t.Errorf("the device channel's TokenUpdate with a 50 KiB PushMagic: %v; want 400", err)
	}
	if err := u.LogIn(f.ctx); err != nil {
		t.Errorf("a user's TokenUpdate as a Mac sends it: %v", err)
	}
}

// TestUserOfPendingDevice: a user logging in on a Mac that has not
// finished enrolling is told Steward will not manage them (410) rather than
// handed a challenge for a TokenUpdate that is then refused; a Shared
// iPad's user, who sends no UserAuthenticate, is refused at the TokenUpdate.
func TestUserOfPendingDevice(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	f.publish(privacy.Shared)
	ts := f.serve()
	pending := func(o privacy.Ownership, adjust func(*sim.Device)) *sim.Device {
		t.Helper()
		d, err := sim.New(ts.Client(), false)
		if err != nil {
			t.Fatal(err)
		}
		adjust(d)
		if err := d.Prepare(f.ctx, f.invite(o, ""), false); err != nil {
			t.Fatal(err)
		}
		if err := d.Authenticate(f.ctx); err != nil { // no TokenUpdate yet: pending
			t.Fatal(err)
		}
		return d
	}
	u := pending(privacy.Corporate, mac).NewUser("jdoe", "Jane Doe")
	if _, err := u.Checkin(f.ctx, map[string]any{"MessageType": "UserAuthenticate"}); status(t, err) != http.StatusGone {
		t.Errorf("UserAuthenticate on a pending device: %v; want 410", err)
	}
	if _, err := u.Checkin(f.ctx, u.TokenUpdate()); status(t, err) != http.StatusConflict {
		t.Errorf("a user's TokenUpdate on a pending device: %v; want 409", err)
	}
	anna := sharedIPadUser(pending(privacy.Shared, sharedIPad), "anna@school.example")
	if err := anna.LogIn(f.ctx); status(t, err) != http.StatusConflict {
		t.Errorf("a Shared iPad user logging in on a pending iPad: %v; want 409", err)
	}
}

// TestBlankAccountLookup: a blank account name is refused, not matched
// with the channels of users who sent no short name, which have no account
// index at all.
func TestBlankAccountLookup(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	mac, dev := f.enrolledWith(ts, privacy.Corporate, "", mac)
	if err := mac.NewUser("", "").LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, account := range []string{"", " ", "\t "} {
		if found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, account, lookupReason, admin); !apperr.IsKind(err, apperr.KindInvalid) {
			t.Errorf("account %q: %d found, %v; want 400", account, len(found), err)
		}
	}
	all, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
	if err != nil || len(all) != 1 || all[0].AccountIndex != nil {
		t.Errorf("the channel of a user without a short name: %+v, %v; want no account index", all, err)
	}
}

// lookupReason is why the tests look accounts up: a lookup asks whether a
// person used a device, so it needs a reason.
const lookupReason = "ticket 4711: the VPN profile is missing"

// TestAccountLookupNeedsReason: looking an account up without a reason, or
// with one a reveal would refuse, is 400 and changes nothing: no audit
// entry, no access record. Listing every channel needs none.
func TestAccountLookupNeedsReason(t *testing.T) {
	storetest.ForEachEngine(t, testAccountLookupNeedsReason)
}

func testAccountLookupNeedsReason(t *testing.T, st store.Store) {
	f, s := newSchool(t, st)
	if err := sharedIPadUser(s.ipad, "anna@school.example").LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	before := storetest.AllValues(t, st)
	for _, reason := range []string{"", "   ", "too short", "checking\x1b[2J the account", strings.Repeat("r", 501)} {
		found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, s.sharedIPad.ID, "anna@school.example", reason, admin)
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Kind != apperr.KindInvalid || ae.Details["field"] != "reason" || found != nil {
			t.Errorf("a lookup with the reason %q: %d found, %v; want 400 naming the reason", reason, len(found), err)
		}
	}
	if !bytes.Equal(storetest.AllValues(t, st), before) {
		t.Error("a lookup without a valid reason changed the database")
	}
	if lookups, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.user_channel.lookup"}); err != nil || len(lookups) != 0 {
		t.Errorf("lookups without a valid reason audited: %+v, %v", lookups, err)
	}
	if all, err := f.svc.UserChannels(f.ctx, f.tenant, s.sharedIPad.ID); err != nil || len(all) != 1 {
		t.Errorf("listing every channel without a reason: %+v, %v", all, err)
	}
}

// TestAccountLookupAccessRecord: looking up an account that is a person's
// Steward knows, by their e-mail or their Managed Apple Account, goes to
// their access record, found or not, with the device and the reason; the
// person sees it there (the portal reads AccessRecord) and in their export.
// A Mac's short name, or an address that is nobody's, leaves no record, and
// the answer is the same either way.
func TestAccountLookupAccessRecord(t *testing.T) {
	storetest.ForEachEngine(t, testAccountLookupAccessRecord)
}

func testAccountLookupAccessRecord(t *testing.T, st store.Store) {
	f, s := newSchool(t, st)
	carl, err := f.priv.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "carl@school.example", ManagedAppleID: "carl@appleid.school.example"}, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*sim.User{sharedIPadUser(s.ipad, "anna@school.example"), sharedIPadUser(s.ipad, "carl@appleid.school.example"),
		s.mac.NewUser("jdoe", "Jane Doe")} {
		if err := u.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(deviceID, account string, want int) {
		t.Helper()
		if found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, deviceID, account, lookupReason, admin); err != nil || len(found) != want {
			t.Fatalf("looking up %s on %s: %+v, %v; want %d", account, deviceID, found, err, want)
		}
	}
	lookup(s.sharedIPad.ID, "Anna@School.example", 1)
	lookup(s.bobsMac.ID, "anna@school.example", 0) // asked all the same
	lookup(s.sharedIPad.ID, "carl@appleid.school.example", 1)
	known := accessRecordCount(t, st)
	lookup(s.bobsMac.ID, "jdoe", 1)
	lookup(s.sharedIPad.ID, "zoe@school.example", 0)
	if n := accessRecordCount(t, st); n != known {
		t.Errorf("looking up accounts that are nobody's wrote %d access records", n-known)
	}

	wantRecords := func(subjectID string, devices ...string) {
		t.Helper()
		recs, err := f.priv.AccessRecord(f.ctx, f.tenant, subjectID, store.Page{})
		if err != nil || len(recs) != len(devices) {
			t.Fatalf("access record of %s: %+v, %v; want lookups on %v", subjectID, recs, err, devices)
		}
		for i, r := range recs {
			if !slices.Contains(devices, r.DeviceID) || r.Action != mdm.AccountLookupAccess || r.Reason != lookupReason ||
				r.Actor != "admin:"+admin.ID || !slices.Equal(r.Fields, []string{"user.account"}) {
				t.Errorf("access record %d of %s: %+v; want a lookup on one of %v", i, subjectID, r, devices)
			}
		}
	}
	wantRecords(s.anna, s.sharedIPad.ID, s.bobsMac.ID)
	wantRecords(carl.ID, s.sharedIPad.ID)
	wantRecords(s.bob) // his Mac was asked about, not he

	arc, err := f.priv.ExportSubject(f.ctx, f.tenant, s.anna, "", iam.Actor{Type: store.ActorSubject, ID: s.anna})
	if err != nil {
		t.Fatal(err)
	}
	exp, _, _ := exporttest.Open(t, arc)
	var exported int
	for _, r := range exp.AccessRecord {
		if r.Action == mdm.AccountLookupAccess && r.Reason == lookupReason {
			exported++
		}
	}
	if exported != 2 {
		t.Errorf("anna's own export holds %d account lookups, want 2: %+v", exported, exp.AccessRecord)
	}
}

// accessRecordCount counts the access records of every tenant and person.
func accessRecordCount(t *testing.T, st store.Store) int64 {
	t.Helper()
	n := int64(-1)
	errCounted := errors.New("counted")
	err := st.(*sqlstore.DB).Dump(context.Background(), nil, func(info sqlstore.DumpInfo) error {
		for _, table := range info.Tables {
			if table.Name == "access_records" {
				n = table.Rows
			}
		}
		return errCounted
	}, func(string, []any) error { return nil })
	if !errors.Is(err, errCounted) || n < 0 {
		t.Fatalf("counting access records: %d, %v", n, err)
	}
	return n
}

// TestErasureForgetsAccountsEverywhere: erasing a person forgets their
// account on devices not assigned to them too. On a Shared iPad, whose
// users are keyed by their Managed Apple ID, the person's channel closes
// (its user index derives from the ID) and its commands are cancelled; on a
// colleague's Mac the account index goes and the channel goes on. Other
// users keep theirs.
func TestErasureForgetsAccountsEverywhere(t *testing.T) {
	storetest.ForEachEngine(t, testErasureForgetsAccountsEverywhere)
}

func testErasureForgetsAccountsEverywhere(t *testing.T, st store.Store) {
	f, s := newSchool(t, st)
	anna, ipad, sharedIPad, mac, bobsMac := s.anna, s.ipad, s.sharedIPad, s.mac, s.bobsMac
	annaOnIPad, ben := sharedIPadUser(ipad, "anna@school.example"), sharedIPadUser(ipad, "ben@school.example")
	annaOnMac := mac.NewUser("anna@school.example", "Anna")
	for _, u := range []*sim.User{annaOnIPad, ben, annaOnMac} {
		if err := u.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, sharedIPad.ID, "anna@school.example", lookupReason, admin)
	if err != nil || len(found) != 1 {
		t.Fatalf("anna's channel on the Shared iPad: %+v, %v", found, err)
	}
	queued, err := f.svc.EnqueueForUser(f.ctx, f.tenant, sharedIPad.ID, found[0].ID, mdmproto.ProfileList{}, "", admin)
	if err != nil {
		t.Fatal(err)
	}

	signed, err := f.priv.EraseSubject(f.ctx, f.tenant, anna, "erasure request", admin)
	if err != nil {
		t.Fatal(err)
	}
	var cert privacy.Certificate
	if err := json.Unmarshal([]byte(signed.Certificate), &cert); err != nil || cert.RowsRemoved["apple_user_channels_closed"] != 1 ||
		cert.RowsRemoved["apple_user_channel_accounts"] != 1 {
		t.Errorf("deletion certificate: %+v, %v; want one channel closed, one account forgotten", cert.RowsRemoved, err)
	}
	for _, d := range []store.Device{sharedIPad, bobsMac} {
		if found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, d.ID, "anna@school.example", lookupReason, admin); err != nil || len(found) != 0 {
			t.Errorf("after erasing anna, her account is still found on device %s: %d, %v", d.ID, len(found), err)
		}
	}
	closed, err := st.Read().AppleUserChannels().Get(f.ctx, f.tenant, found[0].ID)
	if err != nil || !closed.CheckedOut || closed.UserIndex != nil {
		t.Errorf("anna's Shared iPad channel: closed %v, user index kept %v (%v); want it closed, without its user index",
			closed.CheckedOut, closed.UserIndex != nil, err)
	}
	if cmd, err := st.Read().Commands().Get(f.ctx, f.tenant, queued.ID); err != nil || cmd.State != store.CommandCancelled {
		t.Errorf("anna's queued command: %s, %v; want it cancelled", cmd.State, err)
	}
	if found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, sharedIPad.ID, "ben@school.example", lookupReason, admin); err != nil || len(found) != 1 {
		t.Errorf("ben's channel after anna's erasure: %d, %v", len(found), err)
	}
	// The Mac's channel still routes; logging in again opens a new one on the iPad.
	macChannels, err := f.svc.UserChannels(f.ctx, f.tenant, bobsMac.ID)
	if err != nil || len(macChannels) != 1 || macChannels[0].CheckedOut {
		t.Fatalf("the Mac's user channels: %+v, %v", macChannels, err)
	}
	if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, bobsMac.ID, macChannels[0].ID, mdmproto.ProfileList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	if n, err := annaOnMac.Poll(f.ctx); err != nil || n != 1 {
		t.Errorf("the Mac's channel answered %d commands (%v), want 1", n, err)
	}
	if err := annaOnIPad.LogIn(f.ctx); err != nil {
		t.Errorf("logging in on the Shared iPad again: %v", err)
	}

	// Managed Apple Accounts do not depend on case, and a Shared iPad may
	// send one in another case than the person's address: erasing the
	// person closes its channel all the same.
	dora := f.subject("dora@school.example")
	if err := sharedIPadUser(ipad, "Dora@School.Example").LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	dorasChannel, err := f.svc.LookupUserChannel(f.ctx, f.tenant, sharedIPad.ID, "dora@school.example", lookupReason, admin)
	if err != nil || len(dorasChannel) != 1 {
		t.Fatalf("dora's channel on the Shared iPad: %+v, %v", dorasChannel, err)
	}
	if _, err := f.priv.EraseSubject(f.ctx, f.tenant, dora, "erasure request", admin); err != nil {
		t.Fatal(err)
	}
	if closed, err := st.Read().AppleUserChannels().Get(f.ctx, f.tenant, dorasChannel[0].ID); err != nil || !closed.CheckedOut || closed.UserIndex != nil {
		t.Errorf("dora's Shared iPad channel, her account sent in another case: closed %v, user index kept %v (%v); want it closed, without its user index",
			closed.CheckedOut, closed.UserIndex != nil, err)
	}

	// A person whose Managed Apple Account is not their e-mail is known on
	// the Shared iPad by that account: erasing them closes its channel too,
	// even after an admin changed the account.
	carl, err := f.priv.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "carl@school.example", ManagedAppleID: "carl@appleid.school.example"}, admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := sharedIPadUser(ipad, "carl@appleid.school.example").LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	corrected := "carl.b@appleid.school.example"
	if _, err := f.priv.UpdateSubject(f.ctx, f.tenant, carl.ID, privacy.SubjectUpdate{ManagedAppleID: &corrected}, admin); err != nil {
		t.Fatal(err)
	}
	if _, err := f.priv.EraseSubject(f.ctx, f.tenant, carl.ID, "erasure request", admin); err != nil {
		t.Fatal(err)
	}
	if found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, sharedIPad.ID, "carl@appleid.school.example", lookupReason, admin); err != nil || len(found) != 0 {
		t.Errorf("after erasing carl, his Managed Apple Account is still found on the Shared iPad: %d, %v", len(found), err)
	}

	// An account given up is forgotten at once, while it is still its
	// holder's alone: once someone else has it, erasing its former holder
	// leaves it alone.
	erin, err := f.priv.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erin@school.example", ManagedAppleID: "e.k@appleid.school.example"}, admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := sharedIPadUser(ipad, "e.k@appleid.school.example").LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	erinsNew, given := "erin@appleid.school.example", "e.k@appleid.school.example"
	if _, err := f.priv.UpdateSubject(f.ctx, f.tenant, erin.ID, privacy.SubjectUpdate{ManagedAppleID: &erinsNew}, admin); err != nil {
		t.Fatal(err)
	}
	if found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, sharedIPad.ID, given, lookupReason, admin); err != nil || len(found) != 0 {
		t.Errorf("the account erin gave up is still found on the Shared iPad: %d, %v", len(found), err)
	}
	if _, err := f.priv.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "emil@school.example", ManagedAppleID: given}, admin); err != nil {
		t.Fatal(err)
	}
	if err := sharedIPadUser(ipad, given).LogIn(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.priv.EraseSubject(f.ctx, f.tenant, erin.ID, "erasure request", admin); err != nil {
		t.Fatal(err)
	}
	if found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, sharedIPad.ID, given, lookupReason, admin); err != nil || len(found) != 1 || found[0].CheckedOut {
		t.Errorf("emil's account after erasing erin, its former holder: %+v, %v; want its channel open", found, err)
	}
}

// TestUserEnrollmentUserChannel: on a Mac enrolled by User Enrollment,
// Apple requires the EnrollmentUserID in every message of the user
// channel, its TokenUpdate and its command results alike, and makes the
// UserID optional. The channel is keyed on the one that is always there:
// a Mac that names the UserID in its TokenUpdate and not in its results
// (or the reverse) still has its results find their channel.
func TestUserEnrollmentUserChannel(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	ts := f.serve()
	laptop, dev := f.enrolledWith(ts, privacy.UserEnrolled, f.subject("erika@acme.test"), mac)
	if _, err := laptop.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	user := laptop.NewUser("erika", "Erika Mustermann")
	if user.EnrollmentUserID == "" {
		t.Fatal("the simulated User Enrollment's user has no EnrollmentUserID")
	}
	if err := user.LogIn(f.ctx); err != nil { // with its UserID
		t.Fatal(err)
	}
	channels, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
	if err != nil || len(channels) != 1 {
		t.Fatalf("user channels: %+v, %v", channels, err)
	}
	userID := user.ID
	for _, sent := range []string{"", userID} { // results without the UserID, then with it
		user.ID = sent
		if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, channels[0].ID, mdmproto.ProfileList{}, "", admin); err != nil {
			t.Fatal(err)
		}
		if n, err := user.Poll(f.ctx); err != nil || n != 1 {
			t.Errorf("UserID %q: the user answered %d commands (%v), want the one queued on its channel", sent, n, err)
		}
	}
	// A TokenUpdate without the UserID keeps the channel it opened.
	user.ID = ""
	if _, err := user.Checkin(f.ctx, user.TokenUpdate()); err != nil {
		t.Fatal(err)
	}
	if all, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID); err != nil || len(all) != 1 {
		t.Errorf("after a TokenUpdate without the UserID: %d user channels (%v), want the one", len(all), err)
	}
}

// school is a Shared iPad, and bob's corporate Mac, of a tenant with two
// people, anna and bob.
type school struct {
	anna, bob           string
	ipad, mac           *sim.Device
	sharedIPad, bobsMac store.Device
}

func newSchool(t *testing.T, st store.Store) (*fixture, school) {
	t.Helper()
	f := newFixture(t, st)
	f.publish(privacy.Shared)
	f.publish(privacy.Corporate)
	ts := f.serve()
	var s school
	s.anna, s.bob = f.subject("anna@school.example"), f.subject("bob@school.example")
	s.ipad, s.sharedIPad = f.enrolledWith(ts, privacy.Shared, "", sharedIPad)
	s.mac, s.bobsMac = f.enrolledWith(ts, privacy.Corporate, s.bob, mac)
	return f, s
}

// sharedIPad makes a simulated device an iPad in Shared iPad mode.
func sharedIPad(d *sim.Device) {
	d.Model, d.ProductName, d.Supervised, d.SharedIPad = "iPad13,18", "iPad13,18", true, true
}

// sharedIPadUser is a user of a Shared iPad: named by their Managed Apple
// Account, with the UserID every Shared iPad user sends.
func sharedIPadUser(ipad *sim.Device, managedAppleID string) *sim.User {
	u := ipad.NewUser(managedAppleID, "")
	u.ID = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"
	return u
}
