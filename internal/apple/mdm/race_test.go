package mdm_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/fleet"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestEnqueueRacingDeparture: commands queued for a device, on its channel or
// a user's, while the device is deprovisioned are either refused or
// cancelled by the departure; none stays open on a device that left, where
// nothing would ever answer or settle it. On PostgreSQL this needs the row
// lock both sides take on the device; SQLite's single writer serialises them.
func TestEnqueueRacingDeparture(t *testing.T) {
	storetest.ForEachEngine(t, testEnqueueRacingDeparture)
}

func testEnqueueRacingDeparture(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Corporate)
	ts := f.serve()
	const devices, enqueuers = 4, 6
	for range devices {
		mac, dev := f.enrolledWith(ts, privacy.Corporate, "", mac)
		user := mac.NewUser("jdoe", "Jane Doe")
		if err := user.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
		channels, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
		if err != nil || len(channels) != 1 {
			t.Fatalf("user channels: %v, %v", channels, err)
		}

		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var queued []store.Command
		for i := range enqueuers {
			wg.Go(func() {
				<-start
				var cmds []store.Command
				var err error
				if i%2 == 0 {
					cmds, err = f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.RestartDevice{}, "", admin)
				} else {
					var c store.Command
					c, err = f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, channels[0].ID, mdmproto.ProfileList{}, "", admin)
					cmds = []store.Command{c}
				}
				if err != nil {
					return // refused: the device had left
				}
				mu.Lock()
				queued = append(queued, cmds...)
				mu.Unlock()
			})
		}
		var departure error
		wg.Go(func() {
			<-start
			_, departure = f.priv.DeprovisionDevice(f.ctx, f.tenant, dev.ID, "the laptop was returned", admin)
		})
		close(start)
		wg.Wait()
		if departure != nil {
			t.Fatalf("deprovisioning: %v", departure)
		}

		for _, c := range queued {
			got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != store.CommandCancelled {
				t.Errorf("a %s queued while its device left is %s, want cancelled", got.RequestType, got.State)
			}
		}
		open, err := f.st.Read().Commands().OpenCounts(f.ctx, f.tenant, []string{dev.ID})
		if err != nil || open[dev.ID] != 0 {
			t.Errorf("a departed device has %d open commands (%v)", open[dev.ID], err)
		}
	}
}

// TestConcurrentMessagesKeepTheirWrites: a Mac's TokenUpdate, its bootstrap
// token escrow and its user's TokenUpdate (all sent around a login) run at
// once; each keeps what it wrote. On PostgreSQL, writing back a channel row
// read before the others committed used to lose a push token or a
// bootstrap token in about a quarter of the rounds.
func TestConcurrentMessagesKeepTheirWrites(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		mac, dev := f.enrolledWith(ts, privacy.Corporate, "", mac)
		user := mac.NewUser("jdoe", "Jane Doe")
		if err := user.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			token, magic, bootstrap := fmt.Sprintf("device-token-%03d", i), fmt.Sprintf("MAGIC-%03d", i), fmt.Sprintf("bootstrap-%03d", i)
			messages := []func() error{
				func() error {
					_, err := mac.Checkin(f.ctx, map[string]any{"MessageType": "TokenUpdate", "UDID": mac.UDID, "Topic": mac.Topic(),
						"Token": []byte(token), "PushMagic": magic})
					return err
				},
				func() error {
					_, err := mac.Checkin(f.ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": mac.UDID,
						"BootstrapToken": []byte(bootstrap)})
					return err
				},
				func() error { _, err := user.Checkin(f.ctx, user.TokenUpdate()); return err },
			}
			var wg sync.WaitGroup
			errs := make([]error, len(messages))
			for j, send := range messages {
				wg.Go(func() { errs[j] = send() })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
			}
			ch, err := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
			if err != nil {
				t.Fatal(err)
			}
			if string(ch.PushToken) != token || ch.PushMagic != magic {
				t.Fatalf("round %d: the device sent %s/%s, the channel holds %s/%s", i, token, magic, ch.PushToken, ch.PushMagic)
			}
			out, err := mac.Checkin(f.ctx, map[string]any{"MessageType": "GetBootstrapToken", "UDID": mac.UDID})
			var escrowed struct{ BootstrapToken []byte }
			if _, perr := plist.Unmarshal(out, &escrowed); err != nil || perr != nil || string(escrowed.BootstrapToken) != bootstrap {
				t.Fatalf("round %d: escrowed %s, GetBootstrapToken gives %q (%v)", i, bootstrap, escrowed.BootstrapToken, err)
			}
		}
	})
}

// TestReenrolmentRacingDeparture: a phone's earlier record is deprovisioned
// while a new enrolment naming its UDID completes. The question the new
// enrolment asks the earlier record is then either never queued (the
// departure came first) or cancelled by it, never left open on a device
// that left. PostgreSQL only: SQLite's single writer runs the two
// transactions one after the other.
func TestReenrolmentRacingDeparture(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f := newFixture(t, st)
	earlier, again := f.enrollingAgain()

	// The departure commits only once the TokenUpdate waits for the
	// earlier record it holds.
	release := f.hold(func(q store.Queries) error {
		_, err := f.priv.DeprovisionIn(f.ctx, q, f.tenant, earlier.ID, "the phone was erased", admin)
		return err
	})
	tokenSent := make(chan error, 1)
	go func() { _, err := again.Checkin(f.ctx, again.TokenUpdate()); tokenSent <- err }()
	storetest.AwaitLockWaiters(t, st, 1)
	release()
	if err := <-tokenSent; err != nil {
		t.Fatalf("the new enrolment's TokenUpdate: %v", err)
	}
	open, err := f.st.Read().Commands().OpenCounts(f.ctx, f.tenant, []string{earlier.ID})
	if err != nil || open[earlier.ID] != 0 {
		t.Errorf("the departed record has %d open commands (%v)", open[earlier.ID], err)
	}
}

// TestReenrolmentLocksInIDOrder: a new enrolment completing locks its own
// record and the earlier ones of its UDID in ID order, as a person's
// erasure locks their devices. A transaction holding the earlier record
// (as an erasure does on its way to the new one) must find the new record
// free while the TokenUpdate waits; locked the other way round, the two
// deadlock until PostgreSQL aborts one after its deadlock_timeout (1 s).
// PostgreSQL only: SQLite's single writer runs them one after the other.
func TestReenrolmentLocksInIDOrder(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f := newFixture(t, st)
	earlier, again := f.enrollingAgain()
	ch, err := st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(again.Certificate()))
	if err != nil {
		t.Fatal(err)
	}

	holding, tokenWaits, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- st.Tx(f.ctx, func(q store.Queries) error {
			if _, err := q.Devices().Lock(f.ctx, f.tenant, earlier.ID); err != nil {
				return err
			}
			close(holding)
			<-tokenWaits
			// Half of deadlock_timeout tells a row held across a wait from a
			// free one, which takes a millisecond to lock.
			ctx, cancel := context.WithTimeout(f.ctx, 500*time.Millisecond)
			defer cancel()
			if _, err := q.Devices().Lock(ctx, f.tenant, ch.DeviceID); err != nil {
				return fmt.Errorf("the new record was held while its TokenUpdate waited for the earlier one: %w", err)
			}
			return nil
		})
	}()
	<-holding
	tokenSent := make(chan error, 1)
	go func() { _, err := again.Checkin(f.ctx, again.TokenUpdate()); tokenSent <- err }()
	storetest.AwaitLockWaiters(t, st, 1)
	close(tokenWaits)
	if err := <-tokenSent; err != nil {
		t.Fatalf("the new enrolment's TokenUpdate: %v", err)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestReplacementRacingACheckin: the hourly sweep judging an earlier record
// silent while that device checks in on another node waits for the
// check-in and keeps the record; judged on what it read before the
// check-in committed, it deprovisioned a live device, erasing its data.
// PostgreSQL only: SQLite's single writer runs the two one after the other.
func TestReplacementRacingACheckin(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f := newFixture(t, st)
	f.publish(privacy.Personal)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	phone, earlier := f.enrolledAs(ts, "", privacy.Personal, erika)
	if _, err := phone.Poll(f.ctx); err != nil { // the initial inventory
		t.Fatal(err)
	}
	f.enrolledAs(ts, phone.UDID, privacy.Personal, erika) // a claim on its UDID
	f.pushDelivered(earlier.ID)
	later := time.Now().Add(73 * time.Hour)
	f.svc.SetClock(func() time.Time { return later })

	// The check-in has touched the device, as its first write does, and
	// not committed yet when the sweep starts.
	release := f.hold(func(q store.Queries) error { return q.Devices().Touch(f.ctx, f.tenant, earlier.ID, later) })
	swept := make(chan error, 1)
	var replaced int
	go func() {
		var err error
		replaced, err = f.svc.ReplaceSilentRecords(f.ctx, 100)
		swept <- err
	}()
	storetest.AwaitLockWaiters(t, st, 1)
	release()
	if err := <-swept; err != nil {
		t.Fatal(err)
	}
	if state := f.deviceState(earlier.ID); replaced != 0 || state != store.DeviceEnrolled {
		t.Errorf("the sweep replaced %d records, the device that checked in is %s; want it kept, enrolled", replaced, state)
	}
}

// TestUserTokenUpdateRacingWithdrawal: a user logging in on a personal Mac
// while its owner's consent is withdrawn on another node gets no channel
// that outlives the erasure. The withdrawal closes the device's user
// channels and forgets their accounts with statements that cannot see one
// inserted and not committed yet; the TokenUpdate waits for the device's
// lock, which every departure takes first, and then finds it leaving.
// PostgreSQL only: SQLite's single writer runs the two one after the other.
func TestUserTokenUpdateRacingWithdrawal(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f := newFixture(t, st)
	fleet.Wire(f.st, f.priv, f.svc, f.sealer, nil) // a withdrawal tells the device to leave, as in the server
	f.publish(privacy.Personal)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	laptop, dev := f.enrolledWith(ts, privacy.Personal, erika, mac)
	if _, err := laptop.Poll(f.ctx); err != nil { // the initial inventory
		t.Fatal(err)
	}
	user := laptop.NewUser("erika", "Erika Mustermann")

	// The withdrawal's erasure, as WithdrawConsent runs it, holds until the
	// TokenUpdate waits.
	release := f.hold(func(q store.Queries) error {
		_, err := f.priv.TellToLeaveIn(f.ctx, q, f.tenant, dev.ID, "the employee withdrew consent for this personal device", admin, "")
		return err
	})
	tokenSent := make(chan error, 1)
	go func() { _, err := user.Checkin(f.ctx, user.TokenUpdate()); tokenSent <- err }()
	storetest.AwaitLockWaiters(t, st, 1)
	release()
	if err := <-tokenSent; err == nil {
		t.Error("a user channel opened on a device whose consent was withdrawn meanwhile")
	}
	if state := f.deviceState(dev.ID); state != store.DeviceLeaving {
		t.Fatalf("the device is %s after the withdrawal; want it leaving, told to remove its management profile", state)
	}
	ucs, err := st.Read().AppleUserChannels().List(f.ctx, f.tenant, dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, uc := range ucs {
		if !uc.CheckedOut || uc.UserIndex != nil || uc.AccountIndex != nil {
			t.Errorf("a user channel outlived the withdrawal: open %v, user index kept %v, account index kept %v",
				!uc.CheckedOut, uc.UserIndex != nil, uc.AccountIndex != nil)
		}
	}
}

// enrollingAgain enrols a personal phone, then takes a second enrolment of
// the same person naming its UDID (the phone erased from its settings) up
// to its first TokenUpdate, which the caller sends.
func (f *fixture) enrollingAgain() (store.Device, *sim.Device) {
	f.t.Helper()
	f.publish(privacy.Personal)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	erased, earlier := f.enrolledAs(ts, "", privacy.Personal, erika)
	again, err := sim.New(ts.Client(), false)
	if err != nil {
		f.t.Fatal(err)
	}
	again.UDID, again.Personal = erased.UDID, true
	if err := again.Prepare(f.ctx, f.invite(privacy.Personal, erika), false); err != nil {
		f.t.Fatal(err)
	}
	if err := again.Authenticate(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return earlier, again
}

// TestStaleCheckOutRacingARetry: a first installation attempt went quiet
// and a retry takes its pending record over while the first identity's
// CheckOut is under way. On PostgreSQL the CheckOut read the channel by its
// certificate before the takeover and wrote after it, deprovisioning the
// retry's record. A message changes its channel only while the channel
// holds the certificate it was signed with. PostgreSQL only.
func TestStaleCheckOutRacingARetry(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f := newFixture(t, st)
	first, retry, ch := f.retrying()

	// The channel row is held, so the retry's takeover and the CheckOut
	// both queue on it: the CheckOut has read the channel by then.
	release := f.hold(func(q store.Queries) error {
		return q.AppleChannels().RenewalQueued(f.ctx, f.tenant, ch.DeviceID, ch.RenewalCommand, ch.RenewalAt)
	})
	authenticated, checkedOut := make(chan error, 1), make(chan error, 1)
	go func() { authenticated <- retry.Authenticate(f.ctx) }()
	storetest.AwaitLockWaiters(t, st, 1) // the takeover queues first
	go func() { _, err := first.Checkin(f.ctx, first.CheckOut()); checkedOut <- err }()
	storetest.AwaitLockWaiters(t, st, 2)
	release()
	if err := <-authenticated; err != nil {
		t.Fatalf("the retry's Authenticate: %v", err)
	}
	<-checkedOut // refused, or first: either way the retry's record must stand
	after, err := st.Read().AppleChannels().Get(f.ctx, f.tenant, ch.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(after.CertFingerprint, mdm.Fingerprint(retry.Certificate())) &&
		(after.CheckedOut || f.deviceState(ch.DeviceID) != store.DevicePending) {
		t.Errorf("the first identity's CheckOut took out the retry's record: %s, checked out %v", f.deviceState(ch.DeviceID), after.CheckedOut)
	}
}

// TestStaleNotNowLeavesTheRedelivery: a device's NotNow and an Idle on the
// same channel that delivers the command again overlap: the NotNow's
// transaction reads the command at its first delivery, the Idle's delivers
// it a second time and commits, then the NotNow writes. The NotNow answers
// the first delivery and changes nothing: the command stays sent with the
// second delivery's counters (before, it went back to notnow with the
// first's, as if the second had never been). The NotNow's exchange then
// offers the still unanswered command once more, as any exchange does.
// PostgreSQL only: SQLite's single writer runs a transaction's read and
// write with no other between them (the store test StaleNotNow interleaves
// the steps on both engines).
func TestStaleNotNowLeavesTheRedelivery(t *testing.T) {
	f, id, again := answerAmidRedelivery(t, mdmproto.SecurityInfo{},
		map[string]any{"Status": "NotNow", "RequestType": "SecurityInfo"})
	got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	// Three deliveries (the first, the Idle's, the NotNow exchange's), the
	// last two unanswered.
	if again.CommandUUID != id || got.State != store.CommandSent || got.Attempts != 3 || got.Unanswered != 2 {
		t.Fatalf("after a NotNow to the first delivery: %s, %d deliveries, %d unanswered, the exchange sent %+v; want it sent 3 times, twice unanswered",
			got.State, got.Attempts, got.Unanswered, again)
	}
}

// An Acknowledged to the first delivery of a command, whose transaction
// read the command before an Idle on the same channel delivered it again,
// finishes it and keeps the second delivery's counters (before, it wrote
// back those it read, as if the second had never been). PostgreSQL only, as
// above.
func TestStaleAnswerKeepsTheRedeliveryCounted(t *testing.T) {
	f, id, _ := answerAmidRedelivery(t, mdmproto.ProfileList{},
		map[string]any{"Status": "Acknowledged", "RequestType": "ProfileList", "ProfileList": []any{}})
	got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.CommandAcknowledged || got.Attempts != 2 || got.Unanswered != 1 {
		t.Fatalf("after an answer to the first delivery: %s, %d deliveries, %d unanswered; want acknowledged after 2, 1 unanswered",
			got.State, got.Attempts, got.Unanswered)
	}
}

// answerAmidRedelivery queues req for a corporate device on PostgreSQL,
// delivers it, and sends answer to that first delivery while, inside the
// answer's transaction just after it read the command, an Idle on the same
// channel has it delivered again. It returns the command's ID and what the
// answer's exchange sent next.
func answerAmidRedelivery(t *testing.T, req mdmproto.Request, answer map[string]any) (*fixture, string, sentCommand) {
	t.Helper()
	rs := &racingStore{Store: storetest.OpenPostgres(t)}
	f := newFixture(t, rs)
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, req, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	id := cmds[0].ID
	if sent := command(t, d, map[string]any{"Status": "Idle"}); sent.CommandUUID != id {
		t.Fatalf("first delivery: %+v", sent)
	}
	// The hook runs on the server's goroutine, amid the answer's transaction.
	var idle []byte
	var idleErr error
	rs.afterGet(id, func() { idle, idleErr = d.Send(f.ctx, map[string]any{"Status": "Idle"}) })
	answer["CommandUUID"] = id
	next := command(t, d, answer)
	if idleErr != nil || !bytes.Contains(idle, []byte(id)) {
		t.Fatalf("the Idle amid the answer got %q, %v; want the command again", idle, idleErr)
	}
	return f, id, next
}

// racingStore runs a hook inside the transaction that reads a command, just
// after the read, once.
type racingStore struct {
	store.Store
	mu   sync.Mutex
	id   string
	hook func()
}

func (s *racingStore) afterGet(id string, hook func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.id, s.hook = id, hook
}

func (s *racingStore) take(id string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.id {
		return nil
	}
	hook := s.hook
	s.id, s.hook = "", nil
	return hook
}

func (s *racingStore) Tx(ctx context.Context, fn func(q store.Queries) error) error {
	return s.Store.Tx(ctx, func(q store.Queries) error { return fn(racingQueries{q, s}) })
}

type racingQueries struct {
	store.Queries
	s *racingStore
}

func (q racingQueries) Commands() store.CommandStore {
	return racingCommands{q.Queries.Commands(), q.s}
}

type racingCommands struct {
	store.CommandStore
	s *racingStore
}

func (c racingCommands) Get(ctx context.Context, tenantID, id string) (store.Command, error) {
	cmd, err := c.CommandStore.Get(ctx, tenantID, id)
	if hook := c.s.take(id); hook != nil {
		hook()
	}
	return cmd, err
}
