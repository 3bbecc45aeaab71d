package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// runApple checks the Apple MDM aggregates.
func runApple(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Enrolments", func(t *testing.T) { testEnrolments(t, open(t)) })
	t.Run("EnrolmentRevoke", func(t *testing.T) { testEnrolmentRevoke(t, open(t)) })
	t.Run("EnrolmentGetShared", func(t *testing.T) { testEnrolmentGetShared(t, open(t)) })
	t.Run("AppleChannels", func(t *testing.T) { testAppleChannels(t, open(t)) })
	t.Run("ChannelTopics", func(t *testing.T) { testChannelTopics(t, open(t)) })
	t.Run("ChannelPresence", func(t *testing.T) { testChannelPresence(t, open(t)) })
	t.Run("CommandQueue", func(t *testing.T) { testCommandQueue(t, open(t)) })
	t.Run("CommandCancel", func(t *testing.T) { testCommandCancel(t, open(t)) })
	t.Run("StaleNotNow", func(t *testing.T) { testStaleNotNow(t, open(t)) })
	t.Run("StaleFinish", func(t *testing.T) { testStaleFinish(t, open(t)) })
	t.Run("DepartureWinsOverMessages", func(t *testing.T) { testDepartureWinsOverMessages(t, open(t)) })
	t.Run("CancelOneCommand", func(t *testing.T) { testCancelOneCommand(t, open(t)) })
	t.Run("OpenOfDeparted", func(t *testing.T) { testOpenOfDeparted(t, open(t)) })
	t.Run("CertificateExpiry", func(t *testing.T) { testCertificateExpiry(t, open(t)) })
	t.Run("PurgedDeviceTakesItsChannel", func(t *testing.T) { testPurgedDeviceTakesItsChannel(t, open(t)) })
	t.Run("CommandQueueBound", func(t *testing.T) { testCommandQueueBound(t, open(t)) })
	t.Run("ConcurrentEnqueuesKeepTheBound", func(t *testing.T) { testConcurrentEnqueuesKeepTheBound(t, open(t)) })
	t.Run("CountedEnqueueKeepsTheBound", func(t *testing.T) { testCountedEnqueueKeepsTheBound(t, open(t)) })
	t.Run("UserChannels", func(t *testing.T) { testUserChannels(t, open(t)) })
	t.Run("UserChannelsListOpen", func(t *testing.T) { testUserChannelsListOpen(t, open(t)) })
}

func testEnrolments(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	e := store.Enrolment{ID: store.NewID(), TenantID: a.ID, Ownership: "personal", SubjectID: "s1", NoticeVersion: 3, UserEnrollment: true,
		AccessRights: 4071, SecretHash: []byte("hash-0"), State: store.EnrolmentOpen, CreatedBy: "admin:x", CreatedAt: micro(at), ExpiresAt: micro(at.Add(time.Hour)),
		LinkMailed: true}
	tx(t, st, func(q store.Queries) error { return q.Enrolments().Create(ctx, e) })
	// A mailed link's secret is set as the mail leaves, on an open enrolment only.
	e.SecretHash = []byte("hash-1")
	tx(t, st, func(q store.Queries) error { return q.Enrolments().SetSecretHash(ctx, a.ID, e.ID, e.SecretHash) })
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Enrolments().SetSecretHash(ctx, b.ID, e.ID, []byte("hash-x")) }), store.ErrConflict,
		"another tenant's enrolment's secret")
	if _, err := st.Read().Enrolments().GetBySecretHash(ctx, []byte("hash-0")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the replaced secret still opens the enrolment: %v", err)
	}
	dup := e
	dup.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Enrolments().Create(ctx, dup) }), store.ErrConflict, "same secret hash")
	got, err := st.Read().Enrolments().Get(ctx, a.ID, e.ID)
	must(t, err)
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
	}
	_, err = st.Read().Enrolments().Get(ctx, b.ID, e.ID)
	wantErr(t, err, store.ErrNotFound, "other tenant's enrolment")
	if got, err = st.Read().Enrolments().GetBySecretHash(ctx, []byte("hash-1")); err != nil || got.ID != e.ID {
		t.Fatalf("by secret: %+v %v", got, err)
	}
	e.State, e.AccessRights, e.AllowFullWipe = "accepted", 8191, true
	tx(t, st, func(q store.Queries) error {
		if err := q.Enrolments().Accept(ctx, a.ID, e.ID, true); err != nil {
			return err
		}
		return q.Enrolments().SetAccessRights(ctx, a.ID, e.ID, e.AccessRights)
	})
	// Accepted once: a second acceptance (another tab) changes nothing.
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Enrolments().Accept(ctx, a.ID, e.ID, false) }), store.ErrConflict,
		"accepting an accepted enrolment")
	if got, _ := st.Read().Enrolments().Get(ctx, a.ID, e.ID); !reflect.DeepEqual(got, e) {
		t.Fatalf("after acceptance:\n got %+v\nwant %+v", got, e)
	}
	e.State, e.DeviceID, e.UsedAt = store.EnrolmentUsed, "dev-1", micro(at.Add(time.Minute))
	tx(t, st, func(q store.Queries) error { return q.Enrolments().Update(ctx, e) })
	e.AllowFullWipe = false
	tx(t, st, func(q store.Queries) error { return q.Enrolments().TakeBackFullWipe(ctx, a.ID, e.ID) })
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Enrolments().TakeBackFullWipe(ctx, b.ID, e.ID) }), store.ErrNotFound,
		"taking back another tenant's enrolment's permission")
	e.AccessRights = 8191 &^ 8 // a renewal takes the erase right back
	tx(t, st, func(q store.Queries) error { return q.Enrolments().SetAccessRights(ctx, a.ID, e.ID, e.AccessRights) })
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Enrolments().SetAccessRights(ctx, b.ID, e.ID, 1) }), store.ErrNotFound,
		"access rights of another tenant's enrolment")
	list, err := st.Read().Enrolments().List(ctx, a.ID, store.Page{})
	must(t, err)
	if len(list) != 1 || !reflect.DeepEqual(list[0], e) {
		t.Fatalf("list: %+v", list)
	}
	if list, _ := st.Read().Enrolments().List(ctx, b.ID, store.Page{}); len(list) != 0 {
		t.Fatalf("other tenant lists %d enrolments", len(list))
	}
	other := e
	other.TenantID = b.ID
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Enrolments().Update(ctx, other) }), store.ErrNotFound, "update across tenants")
	// A person's enrolments, oldest first; another person's and another
	// tenant's are not among them.
	later := store.Enrolment{ID: store.NewID(), TenantID: a.ID, Ownership: "corporate", SubjectID: "s1", NoticeVersion: 1, SecretHash: []byte("hash-later"),
		State: store.EnrolmentOpen, CreatedBy: "admin:x", CreatedAt: micro(at.Add(time.Second)), ExpiresAt: micro(at.Add(3 * time.Hour))}
	colleague := later
	colleague.ID, colleague.SubjectID, colleague.SecretHash = store.NewID(), "s2", []byte("hash-colleague")
	tx(t, st, func(q store.Queries) error {
		return errors.Join(q.Enrolments().Create(ctx, later), q.Enrolments().Create(ctx, colleague))
	})
	mine, err := st.Read().Enrolments().ListForSubject(ctx, a.ID, "s1")
	must(t, err)
	if len(mine) != 2 || !reflect.DeepEqual(mine[0], e) || mine[1].ID != later.ID {
		t.Fatalf("the person's enrolments: %+v", mine)
	}
	if elsewhere, _ := st.Read().Enrolments().ListForSubject(ctx, b.ID, "s1"); len(elsewhere) != 0 {
		t.Fatalf("another tenant lists %d of the person's enrolments", len(elsewhere))
	}

	// PurgeUnused takes the links no device used that expired before the
	// cutoff; the used one (e) and one expiring after it stay.
	unused := func(secret string, expires time.Time) store.Enrolment {
		u := store.Enrolment{ID: store.NewID(), TenantID: b.ID, Ownership: "corporate", NoticeVersion: 1, SecretHash: []byte(secret),
			State: store.EnrolmentOpen, CreatedBy: "admin:x", CreatedAt: micro(at), ExpiresAt: micro(expires)}
		tx(t, st, func(q store.Queries) error { return q.Enrolments().Create(ctx, u) })
		return u
	}
	stale, fresh := unused("hash-stale", at.Add(time.Hour)), unused("hash-fresh", at.Add(3*time.Hour))
	var counts []store.PurgeCount
	tx(t, st, func(q store.Queries) error {
		var err error
		counts, err = q.Enrolments().PurgeUnused(ctx, at.Add(2*time.Hour), 10)
		return err
	})
	if len(counts) != 1 || counts[0] != (store.PurgeCount{TenantID: b.ID, Category: "unused_enrolments", Rows: 1}) {
		t.Fatalf("purging unused enrolments: %+v", counts)
	}
	_, err = st.Read().Enrolments().Get(ctx, b.ID, stale.ID)
	wantErr(t, err, store.ErrNotFound, "an unused enrolment expired before the cutoff")
	for _, kept := range []store.Enrolment{e, fresh} {
		if _, err := st.Read().Enrolments().Get(ctx, kept.TenantID, kept.ID); err != nil {
			t.Fatalf("enrolment %s went with the purge: %v", kept.ID, err)
		}
	}
}

// testEnrolmentRevoke: Revoke closes an enrolment only from the states its
// caller names, keeps what a device's use recorded, and races Use cleanly:
// whichever commits first wins, and the other changes nothing.
func testEnrolmentRevoke(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	enrolment := func(state string) store.Enrolment {
		e := store.Enrolment{ID: store.NewID(), TenantID: a.ID, Ownership: "personal", SubjectID: "s1", NoticeVersion: 2,
			SecretHash: []byte("hash-" + store.NewID()), State: state, CreatedBy: "admin:x", CreatedAt: micro(at), ExpiresAt: micro(at.Add(time.Hour))}
		tx(t, st, func(q store.Queries) error { return q.Enrolments().Create(ctx, e) })
		return e
	}
	unused := []string{store.EnrolmentOpen, "accepted"}
	revoke := func(e store.Enrolment, from ...string) error {
		return st.Tx(ctx, func(q store.Queries) error { return q.Enrolments().Revoke(ctx, e.TenantID, e.ID, from...) })
	}
	stateOf := func(e store.Enrolment) store.Enrolment {
		t.Helper()
		got, err := st.Read().Enrolments().Get(ctx, e.TenantID, e.ID)
		must(t, err)
		return got
	}

	open := enrolment(store.EnrolmentOpen)
	must(t, revoke(open, unused...))
	want := open
	want.State = store.EnrolmentRevoked
	if got := stateOf(open); !reflect.DeepEqual(got, want) {
		t.Fatalf("revoked:\n got %+v\nwant %+v", got, want)
	}
	wantErr(t, revoke(open, unused...), store.ErrConflict, "revoking a revoked enrolment")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Enrolments().Accept(ctx, a.ID, open.ID, true) }), store.ErrConflict,
		"accepting a revoked enrolment")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Enrolments().Use(ctx, a.ID, open.ID, "dev-x", at) }), store.ErrConflict,
		"using a revoked enrolment")
	if got := stateOf(open); got.State != store.EnrolmentRevoked || got.DeviceID != "" {
		t.Fatalf("a revoked enrolment changed: %+v", got)
	}

	accepted := enrolment(store.EnrolmentOpen)
	tx(t, st, func(q store.Queries) error { return q.Enrolments().Accept(ctx, a.ID, accepted.ID, false) })
	wantErr(t, revoke(accepted, store.EnrolmentOpen), store.ErrConflict, "revoking an accepted enrolment from open only")
	wantErr(t, revoke(store.Enrolment{TenantID: b.ID, ID: accepted.ID}, unused...), store.ErrNotFound, "revoking another tenant's enrolment")
	wantErr(t, revoke(store.Enrolment{TenantID: a.ID, ID: store.NewID()}, unused...), store.ErrNotFound, "revoking an unknown enrolment")
	if err := revoke(accepted); err == nil {
		t.Fatal("revoking from no state at all succeeded")
	}
	must(t, revoke(accepted, unused...))
	if got := stateOf(accepted); got.State != store.EnrolmentRevoked {
		t.Fatalf("accepted enrolment after revoking: %+v", got)
	}

	// A used enrolment is revoked only when its caller says so (a failed
	// installation); its device and use stay, for the device's purge.
	used := enrolment(store.EnrolmentOpen)
	tx(t, st, func(q store.Queries) error {
		if err := q.Enrolments().Accept(ctx, a.ID, used.ID, false); err != nil {
			return err
		}
		return q.Enrolments().Use(ctx, a.ID, used.ID, "dev-1", micro(at.Add(time.Minute)))
	})
	wantErr(t, revoke(used, unused...), store.ErrConflict, "revoking a used enrolment as unused")
	if got := stateOf(used); got.State != store.EnrolmentUsed {
		t.Fatalf("a refused revocation changed the enrolment: %+v", got)
	}
	must(t, revoke(used, store.EnrolmentUsed))
	if got := stateOf(used); got.State != store.EnrolmentRevoked || got.DeviceID != "dev-1" || !got.UsedAt.Equal(micro(at.Add(time.Minute))) {
		t.Fatalf("a used enrolment after revoking: %+v", got)
	}

	// Revoked links are pending nothing, and go with the purge of unused
	// ones once expired.
	versions, err := st.Read().Enrolments().PendingVersions(ctx, a.ID, "personal")
	must(t, err)
	if len(versions) != 0 {
		t.Fatalf("revoked enrolments keep notice versions pending: %v", versions)
	}
	var counts []store.PurgeCount
	tx(t, st, func(q store.Queries) error {
		counts, err = q.Enrolments().PurgeUnused(ctx, at.Add(2*time.Hour), 10)
		return err
	})
	if len(counts) != 1 || counts[0].Rows != 2 {
		t.Fatalf("purging expired unused enrolments (two revoked unused, one revoked used): %+v", counts)
	}

	// Racing a device's Use: the one that waits finds the other committed.
	race := func(first, second func(q store.Queries) error) error {
		t.Helper()
		release := Hold(t, st, first)
		result := make(chan error, 1)
		go func() { result <- st.Tx(ctx, second) }()
		if st.Engine() == "postgres" {
			AwaitLockWaiters(t, st, 1) // the second waits on the row
		} else {
			time.Sleep(100 * time.Millisecond) // SQLite's second writer waits for the first
		}
		release()
		return <-result
	}
	ready := func() store.Enrolment {
		e := enrolment(store.EnrolmentOpen)
		tx(t, st, func(q store.Queries) error { return q.Enrolments().Accept(ctx, a.ID, e.ID, false) })
		return e
	}
	usedFirst := ready()
	err = race(func(q store.Queries) error { return q.Enrolments().Use(ctx, a.ID, usedFirst.ID, "dev-2", at) },
		func(q store.Queries) error { return q.Enrolments().Revoke(ctx, a.ID, usedFirst.ID, unused...) })
	wantErr(t, err, store.ErrConflict, "revoking an enrolment a device used meanwhile")
	if got := stateOf(usedFirst); got.State != store.EnrolmentUsed || got.DeviceID != "dev-2" {
		t.Fatalf("the device that used the link first lost it: %+v", got)
	}
	revokedFirst := ready()
	err = race(func(q store.Queries) error { return q.Enrolments().Revoke(ctx, a.ID, revokedFirst.ID, unused...) },
		func(q store.Queries) error { return q.Enrolments().Use(ctx, a.ID, revokedFirst.ID, "dev-3", at) })
	wantErr(t, err, store.ErrConflict, "using an enrolment revoked meanwhile")
	if got := stateOf(revokedFirst); got.State != store.EnrolmentRevoked || got.DeviceID != "" {
		t.Fatalf("a device used a link revoked first: %+v", got)
	}
}

func testAppleChannels(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	c := store.AppleChannel{DeviceID: store.NewID(), TenantID: a.ID, CertFingerprint: []byte("fp-1"), CertSerial: "1234567890123456789", CertNotAfter: micro(at.Add(24 * time.Hour)),
		EnrolmentID: "enr-1", ChannelIndex: []byte("udid-idx"), Topic: "com.apple.mgmt.External.x", CreatedAt: micro(at), UpdatedAt: micro(at),
		TokenAt: micro(at)}
	tx(t, st, func(q store.Queries) error { return q.AppleChannels().Create(ctx, c) })
	same := c
	same.DeviceID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.AppleChannels().Create(ctx, same) }), store.ErrConflict,
		"one certificate for two devices")
	got, err := st.Read().AppleChannels().GetByCert(ctx, []byte("fp-1"))
	must(t, err)
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
	}
	_, err = st.Read().AppleChannels().Get(ctx, b.ID, c.DeviceID)
	wantErr(t, err, store.ErrNotFound, "other tenant's channel")
	tx(t, st, func(q store.Queries) error {
		n, err := q.AppleChannels().SchedulePush(ctx, a.ID, []string{c.DeviceID}, at)
		if n != 0 {
			t.Errorf("a channel without a push token was scheduled")
		}
		return err
	})
	c.PushToken, c.PushMagic, c.UnlockToken, c.LastCheckin, c.UpdatedAt = []byte{1, 2, 3}, "magic", []byte("sealed"), micro(at.Add(time.Hour)), micro(at.Add(time.Hour))
	c.TokenAt = micro(at.Add(time.Hour))
	tx(t, st, func(q store.Queries) error { return q.AppleChannels().Update(ctx, c) })
	if got, _ := st.Read().AppleChannels().Get(ctx, a.ID, c.DeviceID); !reflect.DeepEqual(got, c) {
		t.Fatalf("update round trip:\n got %+v\nwant %+v", got, c)
	}
	// Change writes only what it names, and MoveCertificate only from the
	// certificate the channel holds.
	bootstrap := []byte("sealed bootstrap")
	tx(t, st, func(q store.Queries) error {
		return q.AppleChannels().Change(ctx, a.ID, c.DeviceID, store.ChannelChange{At: micro(at.Add(2 * time.Hour)), Bootstrap: &bootstrap})
	})
	c.Bootstrap, c.LastCheckin, c.UpdatedAt = bootstrap, micro(at.Add(2*time.Hour)), micro(at.Add(2*time.Hour))
	if got, _ := st.Read().AppleChannels().Get(ctx, a.ID, c.DeviceID); !reflect.DeepEqual(got, c) {
		t.Fatalf("a bootstrap change touched other columns:\n got %+v\nwant %+v", got, c)
	}
	// A change signed by a certificate the channel no longer holds is refused.
	wantErr(t, st.Tx(ctx, func(q store.Queries) error {
		return q.AppleChannels().Change(ctx, a.ID, c.DeviceID, store.ChannelChange{At: at.Add(3 * time.Hour), Signer: []byte("another certificate")})
	}), store.ErrNotFound, "a change signed by another certificate")
	tx(t, st, func(q store.Queries) error {
		return q.AppleChannels().Change(ctx, a.ID, c.DeviceID, store.ChannelChange{At: micro(at.Add(2 * time.Hour)), Signer: c.CertFingerprint})
	})
	if got, _ := st.Read().AppleChannels().Get(ctx, a.ID, c.DeviceID); !reflect.DeepEqual(got, c) {
		t.Fatalf("a change signed by the channel's certificate:\n got %+v\nwant %+v", got, c)
	}
	renewed := store.ChannelCertificate{Fingerprint: []byte("renewed fingerprint"), Serial: "77", NotAfter: micro(at.Add(90 * 24 * time.Hour))}
	err = st.Tx(ctx, func(q store.Queries) error {
		return q.AppleChannels().MoveCertificate(ctx, a.ID, c.DeviceID, []byte("not the channel's"), renewed, at)
	})
	wantErr(t, err, store.ErrConflict, "moving from a certificate the channel does not hold")
	tx(t, st, func(q store.Queries) error {
		return q.AppleChannels().MoveCertificate(ctx, a.ID, c.DeviceID, c.CertFingerprint, renewed, micro(at.Add(2*time.Hour)))
	})
	c.CertFingerprint, c.CertSerial, c.CertNotAfter = renewed.Fingerprint, renewed.Serial, renewed.NotAfter
	if got, _ := st.Read().AppleChannels().Get(ctx, a.ID, c.DeviceID); !reflect.DeepEqual(got, c) {
		t.Fatalf("certificate move:\n got %+v\nwant %+v", got, c)
	}
	schedule := func(tenant string, due time.Time) int {
		var n int
		tx(t, st, func(q store.Queries) error {
			var err error
			n, err = q.AppleChannels().SchedulePush(ctx, tenant, []string{c.DeviceID, "missing"}, due)
			return err
		})
		return n
	}
	if n := schedule(b.ID, at); n != 0 {
		t.Fatal("another tenant scheduled a push to the device")
	}
	if n := schedule(a.ID, at.Add(time.Minute)); n != 1 {
		t.Fatalf("scheduled %d pushes, want 1", n)
	}
	schedule(a.ID, at.Add(time.Hour)) // a later due time keeps the earlier one
	claim := func(now time.Time) []store.AppleChannel {
		t.Helper()
		var due []store.AppleChannel
		tx(t, st, func(q store.Queries) error {
			var err error
			due, err = q.AppleChannels().ClaimPushes(ctx, now, now.Add(5*time.Minute), 10)
			return err
		})
		return due
	}
	done := func(claimed, next time.Time, attempts int, dead *store.DeadToken) {
		t.Helper()
		tx(t, st, func(q store.Queries) error {
			return q.AppleChannels().PushDone(ctx, a.ID, c.DeviceID, claimed, next, attempts, dead)
		})
	}
	if due := claim(at); len(due) != 0 {
		t.Fatalf("claimed a push due later: %+v", due)
	}
	due := claim(at.Add(2 * time.Minute))
	claimed := micro(at.Add(7 * time.Minute))
	if len(due) != 1 || due[0].DeviceID != c.DeviceID || !due[0].PushDueAt.Equal(claimed) {
		t.Fatalf("claimed pushes: %+v", due)
	}
	if again := claim(at.Add(3 * time.Minute)); len(again) != 0 {
		t.Fatalf("a claimed push was claimed again: %+v", again)
	}
	// A 410 for a token a TokenUpdate has since replaced: the new token is
	// kept and still due its push, at the retry time.
	done(claimed, at.Add(time.Minute), 1, &store.DeadToken{Token: []byte{9, 9, 9}, Since: at.Add(2 * time.Hour)})
	got, _ = st.Read().AppleChannels().Get(ctx, a.ID, c.DeviceID)
	if !bytes.Equal(got.PushToken, c.PushToken) || got.PushMagic != "magic" {
		t.Fatalf("a 410 for an older token dropped the current one: %x %q", got.PushToken, got.PushMagic)
	}
	if due := claim(at.Add(2 * time.Minute)); len(due) != 1 || due[0].PushAttempts != 1 {
		t.Fatalf("the current token lost its push: %+v", due)
	}
	// A 410 dated before the device last sent this very token: the device
	// registered it again since, so it is live and the push is retried.
	done(claimed, at.Add(3*time.Minute), 2, &store.DeadToken{Token: c.PushToken, Since: at})
	if got, _ = st.Read().AppleChannels().Get(ctx, a.ID, c.DeviceID); !bytes.Equal(got.PushToken, c.PushToken) ||
		!got.PushDueAt.Equal(micro(at.Add(3*time.Minute))) || got.PushAttempts != 2 {
		t.Fatalf("a token registered again after APNs found it dead: %+v", got)
	}
	// A push scheduled while one is out (a command queued after the device
	// woke) moves the due time off the claim: the claim's outcome leaves it.
	if due := claim(at.Add(4 * time.Minute)); len(due) != 1 {
		t.Fatalf("claimed %d pushes, want the retry", len(due))
	}
	schedule(a.ID, at.Add(5*time.Minute))
	done(micro(at.Add(9*time.Minute)), time.Time{}, 0, nil)
	if got, _ = st.Read().AppleChannels().Get(ctx, a.ID, c.DeviceID); !got.PushDueAt.Equal(micro(at.Add(5 * time.Minute))) {
		t.Fatalf("a push scheduled during another was lost when that one was done: %+v", got)
	}
	// A dead token is dropped whatever was scheduled: nothing can reach it.
	done(micro(at.Add(9*time.Minute)), at.Add(time.Hour), 3, &store.DeadToken{Token: c.PushToken, Since: at.Add(time.Hour)})
	if due := claim(at.Add(time.Hour)); len(due) != 0 {
		t.Fatalf("a done push is still due: %+v", due)
	}
	got, _ = st.Read().AppleChannels().Get(ctx, a.ID, c.DeviceID)
	if got.PushToken != nil {
		t.Fatal("a dead token was kept")
	}
	c.PushToken = []byte{1}
	tx(t, st, func(q store.Queries) error { return q.AppleChannels().Update(ctx, c) })
	tx(t, st, func(q store.Queries) error { return q.AppleChannels().CheckOut(ctx, a.ID, c.DeviceID, at) })
	if n := schedule(a.ID, at); n != 0 {
		t.Fatal("a checked-out device was scheduled")
	}
}

// testChannelTopics: OpenTopics counts one tenant's open channels per
// topic, following a TokenUpdate that names another topic and leaving out
// channels checked out.
func testChannelTopics(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	topics := func(tenantID string) map[string]int {
		t.Helper()
		got, err := st.Read().AppleChannels().OpenTopics(ctx, tenantID)
		must(t, err)
		return got
	}
	if got := topics(a.ID); len(got) != 0 {
		t.Fatalf("topics of a tenant without channels: %v", got)
	}
	const old, renewed = "com.apple.mgmt.External.old", "com.apple.mgmt.External.new"
	var ids []string
	for i, c := range []struct{ tenant, topic string }{{a.ID, old}, {a.ID, old}, {a.ID, renewed}, {a.ID, old}, {b.ID, renewed}} {
		ch := store.AppleChannel{DeviceID: store.NewID(), TenantID: c.tenant, CertFingerprint: fmt.Appendf(nil, "topic-fp-%d", i),
			CertNotAfter: micro(at.Add(24 * time.Hour)), EnrolmentID: fmt.Sprintf("topic-enr-%d", i), ChannelIndex: []byte("idx"),
			Topic: c.topic, CreatedAt: micro(at), UpdatedAt: micro(at)}
		tx(t, st, func(q store.Queries) error { return q.AppleChannels().Create(ctx, ch) })
		ids = append(ids, ch.DeviceID)
	}
	if got := topics(a.ID); !reflect.DeepEqual(got, map[string]int{old: 3, renewed: 1}) {
		t.Fatalf("topics: %v", got)
	}
	// One device moves to the new topic, another leaves.
	tx(t, st, func(q store.Queries) error {
		return q.AppleChannels().Change(ctx, a.ID, ids[0], store.ChannelChange{At: micro(at.Add(time.Hour)),
			Push: &store.PushRegistration{Token: []byte{1}, Magic: "m", Topic: renewed, At: micro(at.Add(time.Hour))}})
	})
	tx(t, st, func(q store.Queries) error { return q.AppleChannels().CheckOut(ctx, a.ID, ids[1], at.Add(time.Hour)) })
	if got := topics(a.ID); !reflect.DeepEqual(got, map[string]int{old: 1, renewed: 2}) {
		t.Fatalf("topics after a TokenUpdate and a check-out: %v", got)
	}
	if got := topics(b.ID); !reflect.DeepEqual(got, map[string]int{renewed: 1}) {
		t.Fatalf("the other tenant's topics: %v", got)
	}
}

func testChannelPresence(t *testing.T, st store.Store) {
	ctx := context.Background()
	a := newTenant(t, st, "")
	d := newDevice(t, st, a.ID, "", "corporate")
	c := store.AppleChannel{DeviceID: d.ID, TenantID: a.ID, CertFingerprint: []byte("fp-presence"), CertNotAfter: micro(at.Add(time.Hour)),
		EnrolmentID: "enr-p", ChannelIndex: []byte("idx-p"), CreatedAt: micro(at), UpdatedAt: micro(at)}
	orphan := c
	orphan.DeviceID, orphan.CertFingerprint, orphan.EnrolmentID = store.NewID(), []byte("fp-orphan"), "enr-o"
	tx(t, st, func(q store.Queries) error {
		return errors.Join(q.AppleChannels().Create(ctx, c), q.AppleChannels().Create(ctx, orphan))
	})
	presence := func(pending bool) {
		t.Helper()
		p, err := st.Read().AppleChannels().Presence(ctx, c.CertFingerprint)
		must(t, err)
		if !reflect.DeepEqual(p.Channel, c) || p.DeviceState != d.State || !p.LastSeenAt.Equal(d.LastSeenAt) || p.Pending != pending {
			t.Fatalf("Presence = %+v; want the channel, state %s, last seen %v, pending %v", p, d.State, d.LastSeenAt, pending)
		}
	}
	presence(false)
	gotCh, gotDev, err := st.Read().AppleChannels().GetByCertWithDevice(ctx, c.CertFingerprint)
	must(t, err)
	if stored, _ := st.Read().Devices().Get(ctx, a.ID, d.ID); !reflect.DeepEqual(gotCh, c) || !reflect.DeepEqual(gotDev, stored) {
		t.Fatalf("GetByCertWithDevice = %+v, %+v; want %+v, %+v", gotCh, gotDev, c, stored)
	}
	for _, fp := range [][]byte{[]byte("fp-unknown"), orphan.CertFingerprint} {
		_, err := st.Read().AppleChannels().Presence(ctx, fp)
		wantErr(t, err, store.ErrNotFound, "a certificate without a channel and device")
		_, _, err = st.Read().AppleChannels().GetByCertWithDevice(ctx, fp)
		wantErr(t, err, store.ErrNotFound, "a certificate without a channel and device")
	}
	cmd := store.Command{ID: store.NewID(), TenantID: a.ID, DeviceID: d.ID, RequestType: "DeviceInformation", Payload: []byte{1},
		State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: micro(at)}
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, []store.Command{cmd}, 10) })
	presence(true)
	for _, state := range []string{store.CommandSent, store.CommandNotNow, store.CommandAcknowledged} {
		cmd.State = state
		tx(t, st, func(q store.Queries) error { return q.Commands().Update(ctx, cmd) })
		presence(state != store.CommandAcknowledged)
	}
	d.State, d.LastSeenAt = store.DeviceRetired, micro(at.Add(time.Minute))
	tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, d) })
	presence(false)
}

func testCommandQueue(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	dev := store.NewID()
	var cmds []store.Command
	for i := 0; i < 3; i++ {
		cmds = append(cmds, store.Command{ID: store.NewID(), TenantID: a.ID, DeviceID: dev, RequestType: "DeviceInformation",
			Payload: []byte{byte(i)}, State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: micro(at)})
	}
	cmds[0].Queries = []string{"OSVersion", "SerialNumber"} // read back below with the rest
	cmds[0].Reason = "ticket 4711: inventory before the audit"
	comma := cmds[0]
	comma.ID, comma.Queries = store.NewID(), []string{"OSVersion,SerialNumber"}
	if err := st.Tx(ctx, func(q store.Queries) error { return q.Commands().Enqueue(ctx, []store.Command{comma}, 10) }); err == nil {
		t.Fatal("a query holding a comma was queued")
	}
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, cmds, 10) })
	// Read() sends it too: SQLite gives the statement a transaction of its own.
	next, err := st.Read().Commands().SendNext(ctx, a.ID, dev, "", false, at.Add(time.Minute))
	must(t, err)
	want := cmds[0]
	want.State, want.SentAt, want.Attempts = store.CommandSent, micro(at.Add(time.Minute)), 1
	if !reflect.DeepEqual(next, want) {
		t.Fatalf("next:\n got %+v\nwant %+v", next, want)
	}
	if stored, err := st.Read().Commands().Get(ctx, a.ID, want.ID); err != nil || !reflect.DeepEqual(stored, want) {
		t.Fatalf("stored after sending: %+v, %v", stored, err)
	}
	sendNext := func(tenantID string, includeNotNow bool) (store.Command, error) {
		var c store.Command
		err := st.Tx(ctx, func(q store.Queries) error {
			var err error
			c, err = q.Commands().SendNext(ctx, tenantID, dev, "", includeNotNow, at)
			return err
		})
		return c, err
	}
	_, err = sendNext(b.ID, true)
	wantErr(t, err, store.ErrNotFound, "other tenant's queue")
	// Sent but not answered: delivered again, and counted as unanswered.
	if next, err = sendNext(a.ID, false); err != nil || next.ID != cmds[0].ID || next.Attempts != 2 || next.Unanswered != 1 {
		t.Fatalf("an unanswered command's second delivery: %+v, %v", next, err)
	}
	// NotNow: not resent in the same exchange, retried once the device says
	// Idle; it is an answer, so the unanswered count starts again.
	tx(t, st, func(q store.Queries) error { return q.Commands().PutOff(ctx, a.ID, next.ID, next.Attempts) })
	if next, _ = sendNext(a.ID, false); next.ID != cmds[1].ID || next.Unanswered != 0 {
		t.Fatalf("a NotNow command came back in the same exchange, or the next one counts unanswered deliveries: %+v", next)
	}
	if next, _ = sendNext(a.ID, true); next.ID != cmds[0].ID || next.Attempts != 3 || next.Unanswered != 0 || next.State != store.CommandSent {
		t.Fatalf("a NotNow command was not retried after Idle, or counts as unanswered: %+v", next)
	}
	// Every command put off before is offered again in a new exchange, not
	// only the first: the oldest put off again keeps none behind it.
	tx(t, st, func(q store.Queries) error { return q.Commands().PutOff(ctx, a.ID, next.ID, next.Attempts) })
	second, _ := sendNext(a.ID, false)
	tx(t, st, func(q store.Queries) error { return q.Commands().PutOff(ctx, a.ID, second.ID, second.Attempts) })
	third, _ := sendNext(a.ID, false)
	tx(t, st, func(q store.Queries) error { return q.Commands().PutOff(ctx, a.ID, third.ID, third.Attempts) })
	if _, err := sendNext(a.ID, false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a command put off in this exchange came back in it: %v", err)
	}
	for _, want := range []string{cmds[0].ID, cmds[1].ID, cmds[2].ID} {
		next, err = sendNext(a.ID, want == cmds[0].ID)
		if err != nil || next.ID != want || next.Unanswered != 0 {
			t.Fatalf("after an Idle, the commands put off before: %+v, %v; want %s", next, err, want)
		}
		tx(t, st, func(q store.Queries) error { return q.Commands().PutOff(ctx, a.ID, next.ID, next.Attempts) })
	}
	for _, c := range cmds {
		c.State, c.CompletedAt = store.CommandAcknowledged, micro(at)
		tx(t, st, func(q store.Queries) error { return q.Commands().Update(ctx, c) })
	}
	_, err = sendNext(a.ID, true)
	wantErr(t, err, store.ErrNotFound, "empty queue")
	if done, _ := st.Read().Commands().Get(ctx, a.ID, cmds[0].ID); len(done.Payload) != 0 {
		t.Fatalf("a finished command kept its payload %x", done.Payload)
	}
	list, err := st.Read().Commands().List(ctx, a.ID, dev, store.Page{Limit: 2})
	must(t, err)
	if len(list) != 2 || list[0].ID != cmds[0].ID {
		t.Fatalf("list: %+v", list)
	}
	var counts []store.PurgeCount
	tx(t, st, func(q store.Queries) error {
		var err error
		counts, err = q.Commands().PurgeBefore(ctx, at.Add(time.Second), 2)
		return err
	})
	if len(counts) != 1 || counts[0].Rows != 2 || counts[0].TenantID != a.ID {
		t.Fatalf("purge: %+v", counts)
	}
	got, err := st.Read().Commands().Get(ctx, a.ID, cmds[2].ID)
	if err != nil || got.State != store.CommandAcknowledged {
		t.Fatalf("the batch limit was ignored: %+v %v", got, err)
	}
	// Retention runs from the answer: a command queued 40 days before its
	// offline device answered it is kept for the retention period after.
	late := store.Command{ID: store.NewID(), TenantID: a.ID, DeviceID: dev, RequestType: "DeviceInformation", Payload: []byte("p"),
		State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: micro(at.Add(-40 * 24 * time.Hour))}
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, []store.Command{late}, 10) })
	late.State, late.CompletedAt = store.CommandAcknowledged, micro(at)
	tx(t, st, func(q store.Queries) error { return q.Commands().Update(ctx, late) })
	tx(t, st, func(q store.Queries) error {
		_, err := q.Commands().PurgeBefore(ctx, at.Add(-30*24*time.Hour), 100)
		return err
	})
	if _, err := st.Read().Commands().Get(ctx, a.ID, late.ID); err != nil {
		t.Fatalf("a command answered now was purged for having been queued long ago: %v", err)
	}
}

func testCommandCancel(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	dev, other := store.NewID(), store.NewID()
	mk := func(device, state string) store.Command {
		return store.Command{ID: store.NewID(), TenantID: a.ID, DeviceID: device, RequestType: "DeviceLock",
			Payload: []byte("sealed pin"), State: state, RequestedBy: "admin:x", CreatedAt: micro(at)}
	}
	cmds := []store.Command{mk(dev, store.CommandQueued), mk(dev, store.CommandAcknowledged), mk(dev, store.CommandQueued), mk(other, store.CommandQueued)}
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, cmds, 10) })
	cmds[2].State = store.CommandNotNow
	tx(t, st, func(q store.Queries) error { return q.Commands().Update(ctx, cmds[2]) })
	cancel := func(tenantID string) []store.Command {
		var out []store.Command
		tx(t, st, func(q store.Queries) error {
			var err error
			out, err = q.Commands().CancelOpen(ctx, tenantID, dev, `[{"LocalizedDescription":"gone"}]`, at.Add(time.Hour))
			return err
		})
		return out
	}
	if got := cancel(b.ID); len(got) != 0 {
		t.Fatalf("another tenant cancelled %d commands", len(got))
	}
	got := cancel(a.ID)
	if len(got) != 2 || got[0].ID != cmds[0].ID || got[1].ID != cmds[2].ID {
		t.Fatalf("cancelled %+v, want the device's two open commands in order", got)
	}
	for _, c := range got {
		stored, err := st.Read().Commands().Get(ctx, a.ID, c.ID)
		must(t, err)
		if stored.State != store.CommandCancelled || len(stored.Payload) != 0 || !stored.CompletedAt.Equal(micro(at.Add(time.Hour))) ||
			stored.ErrorChain != `[{"LocalizedDescription":"gone"}]` || !reflect.DeepEqual(stored, c) {
			t.Fatalf("cancelled command stored as %+v, returned as %+v", stored, c)
		}
	}
	for _, c := range []store.Command{cmds[1], cmds[3]} {
		if stored, _ := st.Read().Commands().Get(ctx, a.ID, c.ID); stored.State != c.State || string(stored.Payload) != "sealed pin" {
			t.Fatalf("a command that was not open, or another device's, changed: %+v", stored)
		}
	}
	if got := cancel(a.ID); len(got) != 0 {
		t.Fatalf("cancelling twice cancelled %d more", len(got))
	}

	// CancelOpenExcept leaves the one command named open, and only it.
	kept, gone := mk(other, store.CommandQueued), mk(other, store.CommandQueued)
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, []store.Command{kept, gone}, 10) })
	var except []store.Command
	tx(t, st, func(q store.Queries) error {
		var err error
		except, err = q.Commands().CancelOpenExcept(ctx, a.ID, other, kept.ID, `[{"LocalizedDescription":"gone"}]`, at.Add(time.Hour))
		return err
	})
	if len(except) != 2 || except[0].ID != cmds[3].ID || except[1].ID != gone.ID {
		t.Fatalf("CancelOpenExcept cancelled %+v, want the device's other open commands", except)
	}
	if stored, _ := st.Read().Commands().Get(ctx, a.ID, kept.ID); stored.State != store.CommandQueued || string(stored.Payload) != "sealed pin" {
		t.Fatalf("the command CancelOpenExcept keeps changed: %+v", stored)
	}
}

func testCertificateExpiry(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	mk := func(tenant string, notAfter time.Time, checkedOut bool) store.AppleChannel {
		id := newDevice(t, st, tenant, "", "corporate").ID
		c := store.AppleChannel{DeviceID: id, TenantID: tenant, CertFingerprint: []byte(id), CertNotAfter: micro(notAfter),
			EnrolmentID: "enr-" + id, ChannelIndex: []byte(id), CreatedAt: micro(at), UpdatedAt: micro(at)}
		tx(t, st, func(q store.Queries) error { return q.AppleChannels().Create(ctx, c) })
		if checkedOut {
			tx(t, st, func(q store.Queries) error { return q.AppleChannels().CheckOut(ctx, tenant, id, at) })
		}
		return c
	}
	day := 24 * time.Hour
	expiring := mk(a.ID, at.Add(10*day), false)
	expired := mk(a.ID, at.Add(-day), false)
	mk(a.ID, at.Add(300*day), false) // far from expiry
	mk(a.ID, at.Add(5*day), true)    // checked out: never renewed
	other := mk(b.ID, at.Add(20*day), false)

	got, err := st.Read().AppleChannels().ExpiringCertificates(ctx, at.Add(-30*day), at.Add(30*day), at, 10)
	must(t, err)
	if len(got) != 3 || got[0].DeviceID != expired.DeviceID || got[1].DeviceID != expiring.DeviceID || got[2].DeviceID != other.DeviceID {
		t.Fatalf("expiring certificates: %+v", got)
	}
	if got, _ := st.Read().AppleChannels().ExpiringCertificates(ctx, at.Add(-30*day), at.Add(30*day), at, 1); len(got) != 1 || got[0].DeviceID != expired.DeviceID {
		t.Fatalf("the limit or the order was ignored: %+v", got)
	}
	if got, _ := st.Read().AppleChannels().ExpiringCertificates(ctx, at, at.Add(30*day), at, 10); len(got) != 2 || got[0].DeviceID != expiring.DeviceID {
		t.Fatalf("an expired certificate was listed for renewal: %+v", got)
	}
	pending := mk(b.ID, at.Add(day), false)
	tx(t, st, func(q store.Queries) error {
		d, err := q.Devices().Get(ctx, b.ID, pending.DeviceID)
		if err != nil {
			return err
		}
		d.State = store.DevicePending
		return q.Devices().Update(ctx, d)
	})
	if got, _ := st.Read().AppleChannels().ExpiringCertificates(ctx, at, at.Add(30*day), at, 10); len(got) != 2 {
		t.Fatalf("a device not enrolled was listed for renewal: %+v", got)
	}
	// A renewal queued recently holds the channel back until renewedBefore passes it.
	tx(t, st, func(q store.Queries) error {
		return q.AppleChannels().RenewalQueued(ctx, a.ID, expired.DeviceID, "cmd-1", at.Add(time.Hour))
	})
	if got, _ := st.Read().AppleChannels().ExpiringCertificates(ctx, at.Add(-30*day), at.Add(30*day), at, 10); len(got) != 2 || got[0].DeviceID != expiring.DeviceID {
		t.Fatalf("a channel with a renewal under way was listed again: %+v", got)
	}
	got, _ = st.Read().AppleChannels().ExpiringCertificates(ctx, at.Add(-30*day), at.Add(30*day), at.Add(2*time.Hour), 10)
	if len(got) != 3 || got[0].RenewalCommand != "cmd-1" || !got[0].RenewalAt.Equal(micro(at.Add(time.Hour))) {
		t.Fatalf("a renewal due again: %+v", got)
	}
	counts, err := st.Read().AppleChannels().CertificateExpiry(ctx, at, at.Add(30*day))
	must(t, err)
	want := map[string]store.CertificateExpiryCount{a.ID: {TenantID: a.ID, Expiring: 2, Expired: 1}, b.ID: {TenantID: b.ID, Expiring: 2}} // the pending device's too
	if len(counts) != 2 || counts[0] != want[counts[0].TenantID] || counts[1] != want[counts[1].TenantID] {
		t.Fatalf("expiry counts: %+v", counts)
	}
}

// testPurgedDeviceTakesItsChannel: a purged device's channel, commands and
// enrolment go with it (CheckPurgeDeprovisionedInRowBatches checks the
// batches, of at most the purge's limit in rows).
func testPurgedDeviceTakesItsChannel(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	devices := []store.Device{newDevice(t, st, tn.ID, "", "corporate"), newDevice(t, st, tn.ID, "", "corporate"), newDevice(t, st, tn.ID, "", "corporate")}
	for i, d := range devices {
		ch := store.AppleChannel{DeviceID: d.ID, TenantID: tn.ID, CertFingerprint: []byte{byte(i)}, CertNotAfter: micro(at),
			EnrolmentID: "enr-" + d.ID, ChannelIndex: []byte{byte(i)}, CreatedAt: micro(at), UpdatedAt: micro(at)}
		cmd := store.Command{ID: store.NewID(), TenantID: tn.ID, DeviceID: d.ID, RequestType: "ProfileList", Payload: []byte("p"),
			State: store.CommandCancelled, RequestedBy: "admin:x", CreatedAt: micro(at.Add(time.Hour))}
		enr := store.Enrolment{ID: ch.EnrolmentID, TenantID: tn.ID, Ownership: "corporate", NoticeVersion: 1, SecretHash: []byte(ch.EnrolmentID),
			State: store.EnrolmentUsed, CreatedBy: "admin:x", DeviceID: d.ID, CreatedAt: micro(at), ExpiresAt: micro(at), UsedAt: micro(at)}
		tx(t, st, func(q store.Queries) error {
			if err := q.Enrolments().Create(ctx, enr); err != nil {
				return err
			}
			if err := q.AppleChannels().Create(ctx, ch); err != nil {
				return err
			}
			if _, err := q.AppleUserChannels().Open(ctx, store.AppleUserChannel{ID: store.NewID(), TenantID: tn.ID, DeviceID: d.ID,
				UserIndex: []byte("user"), AccountIndex: []byte("account"), UpdatedAt: micro(at)}); err != nil {
				return err
			}
			return q.Commands().Enqueue(ctx, []store.Command{cmd}, 10)
		})
	}
	for _, d := range devices[:2] {
		d.State, d.DeprovisionedAt = store.DeviceDeprovisioned, micro(at)
		tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, d) })
	}
	purge := func(limit int) (rows, devices int) {
		var counts []store.PurgeCount
		tx(t, st, func(q store.Queries) error {
			var err error
			counts, err = q.Devices().PurgeDeprovisioned(ctx, at.Add(time.Minute), limit)
			return err
		})
		for _, c := range counts {
			rows += c.Rows
			if c.Category == "deprovisioned_devices" {
				devices += c.Rows
			}
		}
		if rows > limit {
			t.Fatalf("a purge limited to %d rows removed %d: %+v", limit, rows, counts)
		}
		return rows, devices
	}
	left := func(d store.Device) (channel bool, commands int) {
		_, err := st.Read().AppleChannels().Get(ctx, tn.ID, d.ID)
		users, _ := st.Read().AppleUserChannels().List(ctx, tn.ID, d.ID)
		_, enrErr := st.Read().Enrolments().Get(ctx, tn.ID, "enr-"+d.ID)
		cmds, _ := st.Read().Commands().List(ctx, tn.ID, d.ID, store.Page{})
		if _, devErr := st.Read().Devices().Get(ctx, tn.ID, d.ID); devErr != nil && (err == nil || len(users) > 0 || enrErr == nil || len(cmds) > 0) {
			t.Fatalf("device %s went before its channel (%v), user channels (%d), enrolment (%v) or commands (%d)",
				d.ID, err == nil, len(users), enrErr == nil, len(cmds))
		}
		return err == nil, len(cmds)
	}
	// Two devices, each with a channel, a user channel, a command and an
	// enrolment: ten rows, one at a time.
	purged := 0
	for calls := 0; ; calls++ {
		rows, n := purge(1)
		purged += n
		if rows == 0 {
			if calls != 10 {
				t.Fatalf("ten rows went in %d calls of one row", calls)
			}
			break
		}
		for _, d := range devices {
			left(d)
		}
	}
	if purged != 2 {
		t.Fatalf("the purge removed %d devices, want 2", purged)
	}
	for _, d := range devices[:2] {
		if ch, cmds := left(d); ch || cmds != 0 {
			t.Fatalf("a purged device kept its channel (%v) or %d commands", ch, cmds)
		}
	}
	if ch, cmds := left(devices[2]); !ch || cmds != 1 {
		t.Fatalf("a managed device's channel (%v) or commands (%d) went with the purge", ch, cmds)
	}
}

func testCommandQueueBound(t *testing.T, st store.Store) {
	ctx := context.Background()
	a := newTenant(t, st, "")
	dev := store.NewID()
	mk := func(n int) []store.Command {
		var out []store.Command
		for i := 0; i < n; i++ {
			out = append(out, store.Command{ID: store.NewID(), TenantID: a.ID, DeviceID: dev, RequestType: "ProfileList",
				Payload: []byte("p"), State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: micro(at)})
		}
		return out
	}
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, mk(4), 5) })
	err := st.Tx(ctx, func(q store.Queries) error { return q.Commands().Enqueue(ctx, mk(2), 5) })
	wantErr(t, err, store.ErrConflict, "a full queue")
	list, _ := st.Read().Commands().List(ctx, a.ID, dev, store.Page{})
	if len(list) != 4 {
		t.Fatalf("a refused enqueue wrote %d commands", len(list)-4)
	}
	counts, err := st.Read().Commands().OpenCounts(ctx, a.ID, []string{dev, "other-device"})
	if err != nil || counts[dev] != 4 || len(counts) != 1 {
		t.Fatalf("open counts: %v %v", counts, err)
	}
	other := newTenant(t, st, "")
	if counts, _ := st.Read().Commands().OpenCounts(ctx, other.ID, []string{dev}); len(counts) != 0 {
		t.Fatalf("another tenant counts %v", counts)
	}
	// A user channel's queue is bounded apart: the device channel's full
	// queue does not hold it up, nor do its commands count there.
	forUser := func(n int) []store.Command {
		cmds := mk(n)
		for i := range cmds {
			cmds[i].UserChannel = "user-channel-1"
		}
		return cmds
	}
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, forUser(5), 5) })
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Commands().Enqueue(ctx, forUser(1), 5) }), store.ErrConflict, "a full user-channel queue")
	if counts, _ := st.Read().Commands().OpenCounts(ctx, a.ID, []string{dev}); counts[dev] != 4 {
		t.Fatalf("the device channel's open count with user-channel commands queued: %v", counts)
	}
	// Many devices at once, concurrently.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cmds []store.Command
			for i := 0; i < 100; i++ {
				cmds = append(cmds, store.Command{ID: store.NewID(), TenantID: a.ID, DeviceID: store.NewID(), RequestType: "ProfileList",
					Payload: []byte("p"), State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: micro(at)})
			}
			errs <- st.Tx(ctx, func(q store.Queries) error { return q.Commands().Enqueue(ctx, cmds, 5) })
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
	}
}

// testCountedEnqueueKeepsTheBound: EnqueueCounted, for a caller that locked
// the queues and counted them itself, checks the bound against that count,
// device by device, and writes nothing when one queue would overflow.
func testCountedEnqueueKeepsTheBound(t *testing.T, st store.Store) {
	ctx := context.Background()
	a := newTenant(t, st, "")
	dev, other := store.NewID(), store.NewID()
	mk := func(n int, devices ...string) []store.Command { return queuedCommands(a.ID, n, devices...) }
	counted := func(cmds []store.Command, devices ...string) error {
		return st.Tx(ctx, func(q store.Queries) error {
			if err := q.Commands().LockQueues(ctx, a.ID, devices); err != nil {
				return err
			}
			open, err := q.Commands().OpenCounts(ctx, a.ID, devices)
			if err != nil {
				return err
			}
			return q.Commands().EnqueueCounted(ctx, cmds, 5, open)
		})
	}
	if err := counted(mk(4, dev), dev); err != nil {
		t.Fatal(err)
	}
	wantErr(t, counted(mk(2, dev, other), dev, other), store.ErrConflict, "a counted enqueue past the bound")
	if counts, _ := st.Read().Commands().OpenCounts(ctx, a.ID, []string{dev, other}); counts[dev] != 4 || counts[other] != 0 {
		t.Fatalf("a refused counted enqueue left %v", counts)
	}
	if err := counted(mk(1, dev, other), dev, other); err != nil {
		t.Fatalf("a counted enqueue up to the bound: %v", err)
	}
	if counts, _ := st.Read().Commands().OpenCounts(ctx, a.ID, []string{dev, other}); counts[dev] != 5 || counts[other] != 1 {
		t.Fatalf("after a counted enqueue: %v", counts)
	}
	// The count is the caller's: the store does not count again.
	err := st.Tx(ctx, func(q store.Queries) error {
		return q.Commands().EnqueueCounted(ctx, mk(1, other), 5, map[string]int{other: 5})
	})
	wantErr(t, err, store.ErrConflict, "a counted enqueue onto a queue counted full")
}

// testConcurrentEnqueuesKeepTheBound: an enqueue that runs while another
// one's commands are not yet committed cannot count room that the other is
// taking, whether either names one device or several. On PostgreSQL's read
// committed, the second would otherwise count the queue as it was before.
func testConcurrentEnqueuesKeepTheBound(t *testing.T, st store.Store) {
	ctx := context.Background()
	a := newTenant(t, st, "")
	dev, other := store.NewID(), store.NewID()
	mk := func(n int, devices ...string) []store.Command { return queuedCommands(a.ID, n, devices...) }
	for _, c := range []struct {
		name          string
		first, second []store.Command
	}{
		{"one device, then one device", mk(3, dev), mk(3, dev)},
		{"several devices, then one device", mk(3, dev, other), mk(3, dev)},
		{"one device, then several devices", mk(3, dev), mk(3, dev, other)},
	} {
		tx(t, st, func(q store.Queries) error {
			_, err := q.Commands().CancelOpen(ctx, a.ID, dev, "[]", at)
			if err == nil {
				_, err = q.Commands().CancelOpen(ctx, a.ID, other, "[]", at)
			}
			return err
		})
		holding, done := make(chan struct{}), make(chan error, 1)
		go func() {
			done <- st.Tx(ctx, func(q store.Queries) error {
				if err := q.Commands().Enqueue(ctx, c.first, 5); err != nil {
					return err
				}
				close(holding)
				time.Sleep(300 * time.Millisecond) // uncommitted, while the second one counts
				return nil
			})
		}()
		<-holding
		second := st.Tx(ctx, func(q store.Queries) error { return q.Commands().Enqueue(ctx, c.second, 5) })
		if err := <-done; err != nil {
			t.Fatalf("%s: the first enqueue: %v", c.name, err)
		}
		wantErr(t, second, store.ErrConflict, c.name+": the second enqueue past the bound")
		if counts, _ := st.Read().Commands().OpenCounts(ctx, a.ID, []string{dev}); counts[dev] != 3 {
			t.Errorf("%s: %d open commands; want 3", c.name, counts[dev])
		}
	}
}

// queuedCommands makes n queued ProfileList commands for each of devices.
func queuedCommands(tenantID string, n int, devices ...string) []store.Command {
	var out []store.Command
	for _, d := range devices {
		for i := 0; i < n; i++ {
			out = append(out, store.Command{ID: store.NewID(), TenantID: tenantID, DeviceID: d, RequestType: "ProfileList",
				Payload: []byte("p"), State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: micro(at)})
		}
	}
	return out
}
