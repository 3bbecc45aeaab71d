package mdm_test

import (
	"slices"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestEnrolmentProfileIdentityAndBootstrap: a Mac's enrolment profile, and
// the one that renews its identity, keep the identity's private key from
// being exported (Apple's default allows it), and ask for a Bootstrap Token
// only where Steward keeps it: never of an employee's own Mac, whose token
// would be thrown away.
func TestEnrolmentProfileIdentityAndBootstrap(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	for _, o := range privacy.Ownerships {
		t.Run(string(o), func(t *testing.T) {
			f.publish(o)
			subject := ""
			if o.PersonallyOwned() {
				subject = erika
			}
			d, dev := f.enrolledWith(ts, o, subject, mac)
			if _, err := d.Poll(f.ctx); err != nil {
				t.Fatal(err)
			}
			wantToken := o == privacy.Corporate || o == privacy.Shared
			check := func(which string) {
				t.Helper()
				if d.IdentityKeyExtractable() {
					t.Errorf("the %s profile lets the Mac export its identity key", which)
				}
				if asked := slices.Contains(d.ServerCapabilities(), "com.apple.mdm.bootstraptoken"); asked != wantToken {
					t.Errorf("the %s profile asks for a bootstrap token: %t, want %t (capabilities %v)", which, asked, wantToken, d.ServerCapabilities())
				}
			}
			check("enrolment")

			f.dueForRenewal(dev.ID)
			if n, err := f.svc.RenewIdentities(f.ctx, 10); err != nil || n != 1 {
				t.Fatalf("%d renewals (%v), want 1", n, err)
			}
			old := d.Certificate()
			if n, err := d.Poll(f.ctx); err != nil || n != 1 {
				t.Fatalf("the Mac answered %d commands (%v), want the renewal", n, err)
			}
			if d.Certificate().SerialNumber.Cmp(old.SerialNumber) == 0 {
				t.Fatal("the Mac did not install its renewal")
			}
			check("renewal")
		})
	}
}
