package mdm_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestIdentityRenewedBeforeExpiry: a month before a device's identity
// certificate expires, Steward sends it its enrolment profile again; the
// device gets a new certificate by SCEP and carries on managed under it.
// A device that stays away gets a new renewal a week later, replacing the
// first.
func TestIdentityRenewedBeforeExpiry(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	away, awayDev := f.enrolled(ts, privacy.Corporate, "")
	for _, x := range []*sim.Device{d, away} {
		if _, err := x.Poll(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	renew := func() int {
		t.Helper()
		n, err := f.svc.RenewIdentities(f.ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := renew(); n != 0 {
		t.Fatalf("%d renewals of fresh certificates", n)
	}

	// Both certificates expire in 20 days. (The clock stays: the profile's
	// signature is checked against the real time.)
	for _, id := range []string{dev.ID, awayDev.ID} {
		err := f.st.Tx(f.ctx, func(q store.Queries) error {
			ch, err := q.AppleChannels().Get(f.ctx, f.tenant, id)
			if err != nil {
				return err
			}
			// No serial, as channels from before it was kept: the device's
			// next full check-in records it.
			ch.CertNotAfter, ch.CertSerial = f.now.Add(20*24*time.Hour), ""
			return q.AppleChannels().Update(f.ctx, ch)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	old := d.Certificate()
	if n := renew(); n != 2 {
		t.Fatalf("%d renewals queued, want 2", n)
	}
	if n := renew(); n != 0 {
		t.Fatalf("a renewal under way was queued again (%d)", n)
	}
	queued, _ := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, awayDev.ID)
	if _, err := f.svc.Cancel(f.ctx, f.tenant, awayDev.ID, queued.RenewalCommand, "", admin); !apperr.IsKind(err, apperr.KindConflict) {
		t.Errorf("an admin cancelled an identity renewal: %v", err)
	}
	before := *d
	if n, err := d.Poll(f.ctx); err != nil || n != 1 {
		t.Fatalf("the device answered %d commands (%v), want the renewal", n, err)
	}
	renewed := d.Certificate()
	if renewed.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("the device kept its old certificate")
	}
	ch, err := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ch.CertFingerprint, mdm.Fingerprint(renewed)) || ch.CheckedOut {
		t.Fatalf("the channel did not move to the new certificate: %+v", ch)
	}
	if got, _ := f.st.Read().Devices().Get(f.ctx, f.tenant, dev.ID); got.State != store.DeviceEnrolled {
		t.Errorf("after the renewal the device is %s", got.State)
	}
	var se *sim.StatusError
	if _, err := before.Poll(f.ctx); !errors.As(err, &se) || se.Status != http.StatusForbidden {
		t.Errorf("the replaced certificate still works: %v", err)
	}
	// Nor can it be renewed, which would give its key's holder a
	// certificate the channel moves to.
	var refused *sim.RefusedError
	if err := before.RenewIdentity(f.ctx); !errors.As(err, &refused) {
		t.Errorf("the replaced certificate could still be renewed: %v", err)
	}

	// The other device never came back: a week on, its renewal is replaced.
	first, _ := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, awayDev.ID)
	if err := f.st.Tx(f.ctx, func(q store.Queries) error {
		return q.AppleChannels().RenewalQueued(f.ctx, f.tenant, awayDev.ID, first.RenewalCommand, f.now.Add(-8*24*time.Hour))
	}); err != nil {
		t.Fatal(err)
	}
	if n := renew(); n != 1 {
		t.Fatalf("%d renewals a week on, want the absent device's", n)
	}
	if c, _ := f.st.Read().Commands().Get(f.ctx, f.tenant, first.RenewalCommand); c.State != store.CommandCancelled {
		t.Errorf("the unused renewal is %s, want cancelled", c.State)
	}
	if n, err := away.Poll(f.ctx); err != nil || n != 1 {
		t.Fatalf("the returning device answered %d commands (%v), want the one current renewal", n, err)
	}
	if ch, _ := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, awayDev.ID); !bytes.Equal(ch.CertFingerprint, mdm.Fingerprint(away.Certificate())) {
		t.Error("the returning device's channel did not move to its new certificate")
	}
}

// TestRenewalKeepsTheGrantedRights: a device refuses a management profile
// whose MDM payload changed, so the profile that renews its identity grants
// the rights the installed one did, even after the policy changed: here a
// personal phone enrolled while full wipes were allowed, and allowed no
// more since.
func TestRenewalKeepsTheGrantedRights(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	fullWipe := f.allowFullWipe
	fullWipe(true)
	erika := f.subject("erika@acme.test")
	link := f.inviteByMail(privacy.Personal, erika)
	d, err := sim.New(ts.Client(), false)
	if err != nil {
		t.Fatal(err)
	}
	d.Personal = true
	if err := d.Enrol(f.ctx, link, true); err != nil { // Erika allows full wipes
		t.Fatal(err)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	fullWipe(false)

	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(d.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	f.dueForRenewal(ch.DeviceID)
	if n, err := f.svc.RenewIdentities(f.ctx, 10); err != nil || n != 1 {
		t.Fatalf("%d renewals (%v), want 1", n, err)
	}
	old := d.Certificate()
	if n, err := d.Poll(f.ctx); err != nil || n != 1 {
		t.Fatalf("the device answered %d commands (%v), want the renewal", n, err)
	}
	renewal, err := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, ch.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if cmd, _ := f.st.Read().Commands().Get(f.ctx, f.tenant, renewal.RenewalCommand); cmd.State != store.CommandAcknowledged {
		t.Fatalf("the renewal is %s: %s", cmd.State, mdm.ErrorSummary(cmd.ErrorChain))
	}
	if d.Certificate().SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("the device kept its old certificate")
	}
}

// allowFullWipe changes whether the policy allows a full wipe of personal
// devices.
func (f *fixture) allowFullWipe(allowed bool) {
	f.t.Helper()
	f.changePolicy(privacy.Change{Ownership: privacy.Personal, FullWipe: &allowed})
}

// changePolicy applies changes, approved by a second admin when the
// policy requires it.
func (f *fixture) changePolicy(changes ...privacy.Change) {
	f.t.Helper()
	res, err := f.priv.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Reason: "the works council agreed to this change",
		Changes: changes}, "admin-a", admin)
	if err == nil && !res.Applied {
		res, err = f.priv.DecidePolicyChange(f.ctx, f.tenant, res.Approval.ID, privacy.DecideInput{Approve: true}, "admin-b", admin)
	}
	if err != nil || !res.Applied {
		f.t.Fatalf("policy change %+v: %+v, %v", changes, res, err)
	}
}

// TestOverlappingRenewalPassesQueueOne: two renewal passes (one outlived
// its lease) that listed the same device before either queued its renewal
// queue one between them. The second, let through the device's lock after
// the first committed, had cancelled the renewal it had listed (none) and
// queued another, leaving two open, each with a live challenge.
// PostgreSQL only: SQLite's single writer runs the two one after the other.
func TestOverlappingRenewalPassesQueueOne(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f := newFixture(t, st)
	f.publish(privacy.Corporate)
	d, dev := f.enrolled(f.serve(), privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.dueForRenewal(dev.ID)

	release := f.hold(func(q store.Queries) error {
		_, err := q.Devices().Lock(f.ctx, f.tenant, dev.ID)
		return err
	})
	type pass struct {
		queued int
		err    error
	}
	passes := make(chan pass, 2)
	for range 2 {
		go func() {
			n, err := f.svc.RenewIdentities(f.ctx, 10)
			passes <- pass{n, err}
		}()
	}
	storetest.AwaitLockWaiters(t, st, 2) // both listed the device and wait for it
	release()
	queued := 0
	for range 2 {
		p := <-passes
		if p.err != nil {
			t.Fatal(p.err)
		}
		queued += p.queued
	}
	open, err := f.st.Read().Commands().OpenCounts(f.ctx, f.tenant, []string{dev.ID})
	if err != nil || queued != 1 || open[dev.ID] != 1 {
		t.Errorf("the passes queued %d renewals, %d open (%v); want one", queued, open[dev.ID], err)
	}
}
