package mdm_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestUnusedCertificateCannotRenewIntoTheChannel: while an enrolment is
// accepted, every download of its profile yields a certificate. Once the
// device authenticated with one, another certificate of the enrolment
// cannot be renewed, which would move the device's channel to whoever holds
// its key; the device's own certificate still renews.
func TestUnusedCertificateCannotRenewIntoTheChannel(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, link, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: string(privacy.Corporate)}, admin)
	if err != nil {
		t.Fatal(err)
	}
	device, err := sim.New(ts.Client(), false)
	if err != nil {
		t.Fatal(err)
	}
	spare, err := sim.New(ts.Client(), false)
	if err != nil {
		t.Fatal(err)
	}
	// Whoever holds the spare certificate can also name the device.
	spare.UDID, spare.Serial = device.UDID, device.Serial
	if err := device.Prepare(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	if err := spare.Prepare(f.ctx, link, false); err != nil {
		t.Fatalf("a second download of the profile: %v", err)
	}
	if err := device.Complete(f.ctx); err != nil {
		t.Fatal(err)
	}

	var refused *sim.RefusedError
	if err := spare.RenewIdentity(f.ctx); !errors.As(err, &refused) {
		t.Fatalf("a certificate the device never used was renewed: %v", err)
	}
	if _, err := device.Poll(f.ctx); err != nil {
		t.Fatalf("the device lost its channel: %v", err)
	}

	if err := device.RenewIdentity(f.ctx); err != nil {
		t.Fatalf("the device could not renew its own certificate: %v", err)
	}
	if _, err := device.Poll(f.ctx); err != nil {
		t.Fatalf("the device's first request with its renewed certificate: %v", err)
	}
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(device.Certificate()))
	if err != nil || !bytes.Equal(ch.CertFingerprint, mdm.Fingerprint(device.Certificate())) {
		t.Fatalf("the channel did not move to the renewed certificate: %v", err)
	}
}

// TestStaleRenewalCannotTakeTheChannelBack: whoever holds the key of the
// device's certificate A renews it by SCEP into B and keeps B unused. The
// device is then renewed the usual way (the renewal profile) into C. B was
// issued to renew A, which the channel no longer holds, so B cannot take
// the channel from C.
func TestStaleRenewalCannotTakeTheChannelBack(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		d, dev := f.enrolled(ts, privacy.Corporate, "")
		if _, err := d.Poll(f.ctx); err != nil {
			t.Fatal(err)
		}
		thief := *d // a copy of the device, A's key with it
		if err := thief.RenewIdentity(f.ctx); err != nil {
			t.Fatalf("renewing A: %v", err)
		}
		f.dueForRenewal(dev.ID)
		if n, err := f.svc.RenewIdentities(f.ctx, 10); err != nil || n != 1 {
			t.Fatalf("renewals queued: %d, %v", n, err)
		}
		if n, err := d.Poll(f.ctx); err != nil || n != 1 {
			t.Fatalf("the device installing its renewal: %d, %v", n, err)
		}
		if ch, _ := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID); !bytes.Equal(ch.CertFingerprint, mdm.Fingerprint(d.Certificate())) {
			t.Fatal("the channel did not move to the device's renewed certificate")
		}
		if _, err := thief.Poll(f.ctx); status(t, err) != http.StatusForbidden {
			t.Errorf("B, renewed from the replaced A: %v; want 403", err)
		}
		if ch, _ := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID); !bytes.Equal(ch.CertFingerprint, mdm.Fingerprint(d.Certificate())) {
			t.Error("B took the channel back")
		}
		if _, err := d.Poll(f.ctx); err != nil {
			t.Errorf("the device after B's attempt: %v", err)
		}
	})
}
