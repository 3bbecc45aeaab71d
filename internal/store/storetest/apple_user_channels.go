package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// testUserChannels: a user channel is opened and refreshed by its
// TokenUpdates, keyed by (device, user index); its commands are a queue of
// their own beside the device channel's; it has its own push schedule; and
// closing it, or its device, drops its token.
func testUserChannels(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	d := newDevice(t, st, a.ID, "", "corporate")
	ch := store.AppleChannel{DeviceID: d.ID, TenantID: a.ID, CertFingerprint: []byte("fp-" + d.ID), CertNotAfter: micro(at.Add(time.Hour)),
		EnrolmentID: "enr-" + d.ID, ChannelIndex: []byte("idx-" + d.ID), PushToken: []byte{1}, PushMagic: "magic", CreatedAt: micro(at), UpdatedAt: micro(at)}
	tx(t, st, func(q store.Queries) error { return q.AppleChannels().Create(ctx, ch) })

	open := func(c store.AppleUserChannel) store.AppleUserChannel {
		t.Helper()
		var out store.AppleUserChannel
		tx(t, st, func(q store.Queries) error {
			var err error
			out, err = q.AppleUserChannels().Open(ctx, c)
			return err
		})
		return out
	}
	jane := store.AppleUserChannel{ID: store.NewID(), TenantID: a.ID, DeviceID: d.ID, UserIndex: []byte("user-jane"),
		AccountIndex: []byte("account-jdoe"), Topic: "com.apple.mgmt.x", PushToken: []byte("token-1"), PushMagic: "m1",
		LastCheckin: micro(at), UpdatedAt: micro(at)}
	got := open(jane)
	want := jane
	want.CreatedAt, want.TokenAt = micro(at), micro(at)
	if !sameUserChannel(got, want) {
		t.Fatalf("opened:\n got %+v\nwant %+v", got, want)
	}
	// Another TokenUpdate of the same user keeps the channel (and its ID).
	again := jane
	again.ID, again.PushToken, again.PushMagic, again.LastCheckin, again.UpdatedAt = store.NewID(), []byte("token-2"), "m2", micro(at.Add(time.Minute)), micro(at.Add(time.Minute))
	if got = open(again); got.ID != jane.ID || string(got.PushToken) != "token-2" || !got.CreatedAt.Equal(micro(at)) ||
		!got.TokenAt.Equal(again.UpdatedAt) {
		t.Fatalf("a refreshed token: %+v", got)
	}
	bob := open(store.AppleUserChannel{ID: store.NewID(), TenantID: a.ID, DeviceID: d.ID, UserIndex: []byte("user-bob"),
		AccountIndex: []byte("account-bob"), PushToken: []byte("token-bob"), PushMagic: "mm", LastCheckin: micro(at), UpdatedAt: micro(at)})
	if found, err := st.Read().AppleUserChannels().Find(ctx, a.ID, d.ID, []byte("user-bob")); err != nil || found.ID != bob.ID {
		t.Fatalf("find bob: %+v, %v", found, err)
	}
	_, err := st.Read().AppleUserChannels().Find(ctx, b.ID, d.ID, []byte("user-bob"))
	wantErr(t, err, store.ErrNotFound, "another tenant's user channel")
	_, err = st.Read().AppleUserChannels().Get(ctx, b.ID, jane.ID)
	wantErr(t, err, store.ErrNotFound, "another tenant's user channel by ID")
	if list, err := st.Read().AppleUserChannels().List(ctx, a.ID, d.ID); err != nil || len(list) != 2 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	countOpen := func(tenantID string, want int) {
		t.Helper()
		if n, err := st.Read().AppleUserChannels().CountOpen(ctx, tenantID, d.ID); err != nil || n != want {
			t.Fatalf("open user channels of tenant %s: %d, %v; want %d", tenantID, n, err, want)
		}
	}
	countOpen(a.ID, 2)
	countOpen(b.ID, 0)

	// Each channel's queue is its own, and the device's presence counts
	// only the device channel's.
	cmd := func(userChannel string) store.Command {
		return store.Command{ID: store.NewID(), TenantID: a.ID, DeviceID: d.ID, UserChannel: userChannel, RequestType: "ProfileList",
			Payload: []byte("p"), State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: micro(at)}
	}
	janeCmd, maxCmd := cmd(jane.ID), cmd(bob.ID)
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, []store.Command{janeCmd, maxCmd}, 10) })
	if p, err := st.Read().AppleChannels().Presence(ctx, ch.CertFingerprint); err != nil || p.Pending {
		t.Fatalf("the device channel's presence with only user commands queued: %+v, %v", p, err)
	}
	sendNext := func(userChannel string) (store.Command, error) {
		return st.Read().Commands().SendNext(ctx, a.ID, d.ID, userChannel, true, at.Add(time.Minute))
	}
	_, err = sendNext("")
	wantErr(t, err, store.ErrNotFound, "the device channel's next command")
	if next, err := sendNext(jane.ID); err != nil || next.ID != janeCmd.ID || next.UserChannel != jane.ID {
		t.Fatalf("jane's next command: %+v, %v", next, err)
	}

	// Another tenant's writes reach none of them.
	tx(t, st, func(q store.Queries) error {
		for _, id := range []string{jane.ID, bob.ID} {
			if err := q.AppleUserChannels().CheckOut(ctx, b.ID, id, at); err != nil {
				return err
			}
			if err := q.AppleUserChannels().PushDone(ctx, b.ID, id, time.Time{}, time.Time{}, 0, &store.DeadToken{Token: []byte("token-2"), Since: at.Add(time.Hour)}); err != nil {
				return err
			}
		}
		return q.AppleUserChannels().CheckOutDevice(ctx, b.ID, d.ID, at)
	})
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.AppleUserChannels().Touch(ctx, b.ID, jane.ID, at) }),
		store.ErrNotFound, "another tenant touching a user channel")
	var n int
	tx(t, st, func(q store.Queries) error {
		n, err = q.AppleUserChannels().SchedulePush(ctx, b.ID, []string{jane.ID, bob.ID}, at)
		return err
	})
	if list, _ := st.Read().AppleUserChannels().List(ctx, a.ID, d.ID); n != 0 || len(list) != 2 || list[0].CheckedOut || list[1].CheckedOut ||
		list[0].PushToken == nil || !list[0].PushDueAt.IsZero() {
		t.Fatalf("another tenant's writes changed the channels: %d pushes scheduled, %+v", n, list)
	}

	// Pushes: due when asked, only for open channels with a token.
	tx(t, st, func(q store.Queries) error {
		n, err = q.AppleUserChannels().SchedulePush(ctx, a.ID, []string{jane.ID, bob.ID, "unknown"}, at.Add(time.Minute))
		return err
	})
	if n != 2 {
		t.Fatalf("scheduled %d user-channel pushes, want 2", n)
	}
	var due []store.AppleUserChannel
	tx(t, st, func(q store.Queries) error {
		due, err = q.AppleUserChannels().ClaimPushes(ctx, at.Add(time.Hour), at.Add(2*time.Hour), 10)
		return err
	})
	if len(due) != 2 || !due[0].PushDueAt.Equal(micro(at.Add(2*time.Hour))) {
		t.Fatalf("claimed: %+v", due)
	}
	// APNs refused bob's old token after a new one arrived: the new one stays.
	tx(t, st, func(q store.Queries) error {
		return q.AppleUserChannels().PushDone(ctx, a.ID, bob.ID, at.Add(2*time.Hour), at.Add(2*time.Minute), 1, &store.DeadToken{Token: []byte("an older token"), Since: at.Add(time.Hour)})
	})
	tx(t, st, func(q store.Queries) error {
		return q.AppleUserChannels().PushDone(ctx, a.ID, jane.ID, at.Add(2*time.Hour), time.Time{}, 0, &store.DeadToken{Token: []byte("token-2"), Since: at.Add(time.Hour)})
	})
	if got, _ := st.Read().AppleUserChannels().Get(ctx, a.ID, jane.ID); got.PushToken != nil || !got.PushDueAt.IsZero() {
		t.Fatalf("jane's dead token: %+v", got)
	}
	if got, _ := st.Read().AppleUserChannels().Get(ctx, a.ID, bob.ID); string(got.PushToken) != "token-bob" ||
		!got.PushDueAt.Equal(micro(at.Add(2*time.Minute))) {
		t.Fatalf("bob's token was dropped for another token's refusal: %+v", got)
	}

	// Jane checks out: her queue is cancelled, bob's is not.
	var cancelled []store.Command
	tx(t, st, func(q store.Queries) error {
		if err := q.AppleUserChannels().CheckOut(ctx, a.ID, jane.ID, at.Add(time.Hour)); err != nil {
			return err
		}
		cancelled, err = q.Commands().CancelOpenForUser(ctx, a.ID, d.ID, jane.ID, `[{"LocalizedDescription":"gone"}]`, at.Add(time.Hour))
		return err
	})
	if len(cancelled) != 1 || cancelled[0].ID != janeCmd.ID {
		t.Fatalf("cancelled with jane's channel: %+v", cancelled)
	}
	if got, _ := st.Read().Commands().Get(ctx, a.ID, maxCmd.ID); got.State != store.CommandQueued {
		t.Fatalf("bob's command: %s", got.State)
	}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.AppleUserChannels().Touch(ctx, a.ID, jane.ID, at) }),
		store.ErrNotFound, "touching a closed user channel")
	// A closed channel forgets whose it was; logging in again opens a new one.
	if closed, _ := st.Read().AppleUserChannels().Get(ctx, a.ID, jane.ID); closed.UserIndex != nil || closed.AccountIndex != nil || closed.PushToken != nil {
		t.Fatalf("closed: %+v", closed)
	}
	_, err = st.Read().AppleUserChannels().Find(ctx, a.ID, d.ID, jane.UserIndex)
	wantErr(t, err, store.ErrNotFound, "a closed user channel by its user")
	countOpen(a.ID, 1)
	again.ID = store.NewID()
	if got = open(again); got.CheckedOut || got.ID != again.ID {
		t.Fatalf("jane's new channel: %+v", got)
	}

	// Erasing the device's data forgets the account names; the channels
	// still route. Another tenant forgets nothing.
	forget := func(tenantID string) int {
		var n int
		tx(t, st, func(q store.Queries) error {
			var err error
			n, err = q.AppleUserChannels().ForgetAccounts(ctx, tenantID, d.ID)
			return err
		})
		return n
	}
	if n := forget(b.ID); n != 0 {
		t.Fatalf("another tenant forgot %d accounts", n)
	}
	if n := forget(a.ID); n != 2 {
		t.Fatalf("forgot %d accounts, want the 2 open channels'", n)
	}
	if found, err := st.Read().AppleUserChannels().Find(ctx, a.ID, d.ID, []byte("user-bob")); err != nil || found.AccountIndex != nil {
		t.Fatalf("bob's channel after forgetting accounts: %+v, %v", found, err)
	}

	// The device leaves: every user channel closes.
	tx(t, st, func(q store.Queries) error {
		return q.AppleUserChannels().CheckOutDevice(ctx, a.ID, d.ID, at.Add(2*time.Hour))
	})
	list, err := st.Read().AppleUserChannels().List(ctx, a.ID, d.ID)
	must(t, err)
	for _, uc := range list {
		if !uc.CheckedOut || uc.PushToken != nil {
			t.Fatalf("after the device left: %+v", uc)
		}
	}
	tx(t, st, func(q store.Queries) error {
		due, err = q.AppleUserChannels().ClaimPushes(ctx, at.Add(3*time.Hour), at.Add(4*time.Hour), 10)
		return err
	})
	if len(due) != 0 {
		t.Fatalf("closed channels still due a push: %+v", due)
	}
}

func sameUserChannel(a, b store.AppleUserChannel) bool {
	return a.ID == b.ID && a.TenantID == b.TenantID && a.DeviceID == b.DeviceID && string(a.UserIndex) == string(b.UserIndex) &&
		string(a.AccountIndex) == string(b.AccountIndex) && a.Topic == b.Topic && string(a.PushToken) == string(b.PushToken) &&
		a.PushMagic == b.PushMagic && a.CheckedOut == b.CheckedOut && a.LastCheckin.Equal(b.LastCheckin) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.PushDueAt.Equal(b.PushDueAt) &&
		a.TokenAt.Equal(b.TokenAt)
}

// testUserChannelsListOpen: ListOpen walks a tenant's open user channels,
// every device's, page by page in (device, ID) order, without closed
// channels or another tenant's; ForgetAccount drops one channel's account
// index.
func testUserChannelsListOpen(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	var devices []store.Device
	for _, tenantID := range []string{a.ID, b.ID} {
		for range 3 {
			devices = append(devices, newDevice(t, st, tenantID, "", "corporate"))
		}
	}
	var want []string
	tx(t, st, func(q store.Queries) error {
		for _, d := range devices {
			for i := range 3 {
				c, err := q.AppleUserChannels().Open(ctx, store.AppleUserChannel{ID: store.NewID(), TenantID: d.TenantID, DeviceID: d.ID,
					UserIndex: []byte(fmt.Sprintf("user-%d", i)), AccountIndex: []byte("account"), PushToken: []byte("t"), PushMagic: "m",
					LastCheckin: micro(at), UpdatedAt: micro(at)})
				switch {
				case err != nil:
					return err
				case d.TenantID != a.ID:
				case i == 1: // one closed on each device
					if err := q.AppleUserChannels().CheckOut(ctx, d.TenantID, c.ID, at); err != nil {
						return err
					}
				default:
					want = append(want, c.DeviceID+"/"+c.ID)
				}
			}
		}
		return nil
	})
	slices.Sort(want)
	var got []string
	var last store.AppleUserChannel
	for pages := 0; ; pages++ {
		page, err := st.Read().AppleUserChannels().ListOpen(ctx, a.ID, last.DeviceID, last.ID, 4)
		must(t, err)
		for _, c := range page {
			if c.TenantID != a.ID || c.CheckedOut {
				t.Fatalf("listed %+v", c)
			}
			got = append(got, c.DeviceID+"/"+c.ID)
			last = c
		}
		if len(page) < 4 || pages > 3 {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("open channels, in pages of 4:\n got %v\nwant %v", got, want)
	}

	tx(t, st, func(q store.Queries) error { return q.AppleUserChannels().ForgetAccount(ctx, b.ID, last.ID) })
	if c, _ := st.Read().AppleUserChannels().Get(ctx, a.ID, last.ID); c.AccountIndex == nil {
		t.Fatal("another tenant forgot a channel's account")
	}
	tx(t, st, func(q store.Queries) error { return q.AppleUserChannels().ForgetAccount(ctx, a.ID, last.ID) })
	list, err := st.Read().AppleUserChannels().List(ctx, a.ID, last.DeviceID)
	must(t, err)
	for _, c := range list {
		if (c.AccountIndex == nil) != (c.ID == last.ID || c.CheckedOut) {
			t.Fatalf("after forgetting one account: %+v", c)
		}
	}
}
