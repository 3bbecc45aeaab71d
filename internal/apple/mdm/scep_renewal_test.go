package mdm_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
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
