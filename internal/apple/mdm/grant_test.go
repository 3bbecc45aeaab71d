package mdm_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestDownloadedProfileNeedsConsentWhenInstalled: a downloaded profile
// stays installable for its challenge's hour. If the employee withdraws
// their consent in that hour, or accepts again without the full wipe they
// had allowed, the device installing the earlier download gets no
// certificate, and no device is registered; a new download installs.
func TestDownloadedProfileNeedsConsentWhenInstalled(t *testing.T) {
	f, ts, erika, link := personalInvitation(t)
	d := personalPhone(t, ts)
	if err := d.Install(f.ctx, link, true); err != nil {
		t.Fatal(err)
	}
	if mdmproto.AccessRights(d.AccessRights())&mdmproto.AccessDeviceErase == 0 {
		t.Fatal("the first download does not grant the erase right the employee allowed")
	}
	withdrawConsents(t, f, erika)
	if err := d.ObtainIdentity(f.ctx); err == nil {
		t.Fatal("SCEP issued a certificate for a profile whose consent was withdrawn")
	}
	acceptAgainOnPage(t, f, ts, link, false)
	if err := d.ObtainIdentity(f.ctx); err == nil {
		t.Fatal("SCEP issued a certificate for a profile granting the erase right the employee took back")
	}
	if n := len(f.devices()); n != 0 {
		t.Fatalf("%d devices registered from refused profiles", n)
	}

	if err := d.Install(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	if err := d.ObtainIdentity(f.ctx); err != nil {
		t.Fatalf("the download after accepting again: %v", err)
	}
	if err := d.Complete(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := enrolmentRights(t, f, link); got != mdmproto.AccessRights(d.AccessRights()) || got&mdmproto.AccessDeviceErase != 0 {
		t.Errorf("rights recorded %d, want the installed profile's %d, without erase", got, d.AccessRights())
	}
}

// TestConsentWithdrawnBeforeAuthenticate: SCEP checks the consent seconds
// before the device's Authenticate; one withdrawn in between still keeps
// the device out, with a refusal that is not a 401.
func TestConsentWithdrawnBeforeAuthenticate(t *testing.T) {
	f, ts, erika, link := personalInvitation(t)
	d := personalPhone(t, ts)
	if err := d.Prepare(f.ctx, link, true); err != nil {
		t.Fatal(err)
	}
	withdrawConsents(t, f, erika)
	err := d.Authenticate(f.ctx)
	if err == nil {
		t.Fatal("a device authenticated after its person withdrew consent")
	}
	if n := len(f.devices()); n != 0 {
		t.Fatalf("%d devices registered: %v", n, err)
	}
}

// TestRecordedRightsAreTheInstalledProfiles: the rights a renewal may
// grant are those of the profile the device installed, not of a later
// download. A device that installs a profile downloaded before the policy
// collected network fields is recorded without the network right, and its
// identity renews (a profile adding a right would be refused).
func TestRecordedRightsAreTheInstalledProfiles(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	ts := f.serve()
	f.publish(privacy.Personal)
	usual := privacy.DefaultPolicy()[privacy.Personal].Modes
	f.changePolicy(privacy.Change{Ownership: privacy.Personal, Category: privacy.Network, Mode: privacy.Drop},
		privacy.Change{Ownership: privacy.Personal, Category: privacy.Telephony, Mode: privacy.Drop})
	link := f.invite(privacy.Personal, f.subject("erika@acme.test"))
	d := personalPhone(t, ts)
	if err := d.Install(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	installed := mdmproto.AccessRights(d.AccessRights())
	if installed&mdmproto.AccessNetworkInformation != 0 {
		t.Fatal("the network right granted while no network field is collected")
	}
	f.changePolicy(privacy.Change{Ownership: privacy.Personal, Category: privacy.Network, Mode: usual[privacy.Network]},
		privacy.Change{Ownership: privacy.Personal, Category: privacy.Telephony, Mode: usual[privacy.Telephony]})
	later := personalPhone(t, ts) // the same link downloaded again, on another tab
	if err := later.Install(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	if mdmproto.AccessRights(later.AccessRights())&mdmproto.AccessNetworkInformation == 0 {
		t.Fatal("the later download does not grant the network right; the test needs it to")
	}
	if err := d.ObtainIdentity(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Complete(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := enrolmentRights(t, f, link); got != installed {
		t.Fatalf("rights recorded %d, want the installed profile's %d", got, installed)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.renewIdentity(d)
}

// TestRenewalTakesTheEraseRightBack: a personal phone enrolled with a
// full wipe allowed, whose employee then accepted the notice again without
// it, gets a renewed profile without the erase right (Apple lets an update
// take rights away), and the enrolment records what it holds now.
func TestRenewalTakesTheEraseRightBack(t *testing.T) {
	f, d, _, erika := wipeableDevice(t, storetest.OpenSQLite(t))
	if mdmproto.AccessRights(d.AccessRights())&mdmproto.AccessDeviceErase == 0 {
		t.Fatal("the device was not granted the erase right to begin with")
	}
	f.acceptAgain(erika, false)
	f.renewIdentity(d)
	held := mdmproto.AccessRights(d.AccessRights())
	if held&mdmproto.AccessDeviceErase != 0 {
		t.Errorf("after the renewal the device still grants erase: %d", held)
	}
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(d.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.st.Read().Enrolments().Get(f.ctx, f.tenant, ch.EnrolmentID)
	if err != nil || mdmproto.AccessRights(e.AccessRights) != held {
		t.Errorf("rights recorded %d (%v), want the renewed profile's %d", e.AccessRights, err, held)
	}
}

// TestProfileDownloadedBeforeChallengesCarriedRights: a profile downloaded
// before an upgrade, whose challenge carries no rights, is checked against
// the rights recorded at its download, as the earlier release did: it
// installs while those may still be granted, and not once its person took
// the full wipe back.
func TestProfileDownloadedBeforeChallengesCarriedRights(t *testing.T) {
	for _, takenBack := range []bool{false, true} {
		t.Run("wipe taken back "+strconv.FormatBool(takenBack), func(t *testing.T) {
			f, ts, erika, link := personalInvitation(t)
			d := personalPhone(t, ts)
			if err := d.Install(f.ctx, link, true); err != nil {
				t.Fatal(err)
			}
			f.asDownloadedBeforeGrants(link, int(d.AccessRights()))
			if takenBack {
				f.acceptAgain(erika, false)
			}
			err := d.ObtainIdentity(f.ctx)
			if takenBack {
				if err == nil || len(f.devices()) != 0 {
					t.Fatalf("a profile granting the erase right taken back installed (%v)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Complete(f.ctx); err != nil {
				t.Fatal(err)
			}
			if got := enrolmentRights(t, f, link); got != mdmproto.AccessRights(d.AccessRights()) {
				t.Errorf("rights recorded %d, want the installed profile's %d", got, d.AccessRights())
			}
		})
	}
}

// asDownloadedBeforeGrants rewrites the stored challenges as the earlier
// release wrote them, without the rights their profile grants, and records
// rights on the enrolment, as that release did at each download.
func (f *fixture) asDownloadedBeforeGrants(link string, rights int) {
	f.t.Helper()
	_, hash, err := credential.Parse(path.Base(link))
	if err != nil {
		f.t.Fatal(err)
	}
	err = f.st.Tx(f.ctx, func(q store.Queries) error {
		e, err := q.Enrolments().GetBySecretHash(f.ctx, hash)
		if err != nil {
			return err
		}
		if err := q.Enrolments().SetAccessRights(f.ctx, f.tenant, e.ID, rights); err != nil {
			return err
		}
		challenges, err := q.Settings().ListPrefix(f.ctx, "scep-challenge:", "", 100)
		if err != nil {
			return err
		}
		for _, c := range challenges {
			var rec map[string]any
			if err := json.Unmarshal(c.Value, &rec); err != nil {
				return err
			}
			if _, ok := rec["grant"]; !ok {
				return fmt.Errorf("challenge %s carries no grant to remove: %s", c.Key, c.Value)
			}
			delete(rec, "grant")
			old, _ := json.Marshal(rec)
			if err := q.Settings().Put(f.ctx, c.Key, old); err != nil {
				return err
			}
		}
		if len(challenges) == 0 {
			return errors.New("no challenge stored")
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func personalPhone(t *testing.T, ts *httptest.Server) *sim.Device {
	t.Helper()
	d, err := sim.New(ts.Client(), false)
	if err != nil {
		t.Fatal(err)
	}
	d.Personal = true
	return d
}

func withdrawConsents(t *testing.T, f *fixture, subjectID string) {
	t.Helper()
	cs, err := f.priv.Consents(f.ctx, f.tenant, subjectID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Consents {
		if c.WithdrawnAt.IsZero() {
			if _, err := f.priv.WithdrawConsent(f.ctx, f.tenant, subjectID, c.ID, admin); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// acceptAgainOnPage accepts the current notice on the invitation page again.
func acceptAgainOnPage(t *testing.T, f *fixture, ts *httptest.Server, link string, wipe bool) {
	t.Helper()
	inv, err := f.svc.Invitation(f.ctx, path.Base(link), "en")
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"language": {"en"}, "notice_version": {strconv.FormatInt(inv.Notice.Version, 10)}}
	if wipe {
		form.Set("allow_full_wipe", "yes")
	}
	resp, err := ts.Client().PostForm(link, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func enrolmentRights(t *testing.T, f *fixture, link string) mdmproto.AccessRights {
	t.Helper()
	_, hash, err := credential.Parse(path.Base(link))
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.st.Read().Enrolments().GetBySecretHash(f.ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	return mdmproto.AccessRights(e.AccessRights)
}

func (f *fixture) devices() []store.Device {
	f.t.Helper()
	list, err := f.st.Read().Devices().List(f.ctx, f.tenant, store.DeviceFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	return list
}

// dueForRenewal brings device deviceID's identity certificate into the
// renewal window.
func (f *fixture) dueForRenewal(deviceID string) {
	f.t.Helper()
	if err := f.st.Tx(f.ctx, func(q store.Queries) error {
		ch, err := q.AppleChannels().Get(f.ctx, f.tenant, deviceID)
		if err != nil {
			return err
		}
		ch.CertNotAfter = f.now.Add(20 * 24 * time.Hour)
		return q.AppleChannels().Update(f.ctx, ch)
	}); err != nil {
		f.t.Fatal(err)
	}
}

// renewIdentity brings d's certificate into the renewal window, queues its
// renewal and has d install it.
func (f *fixture) renewIdentity(d *sim.Device) {
	f.t.Helper()
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(d.Certificate()))
	if err != nil {
		f.t.Fatal(err)
	}
	f.dueForRenewal(ch.DeviceID)
	if n, err := f.svc.RenewIdentities(f.ctx, 10); err != nil || n != 1 {
		f.t.Fatalf("%d renewals (%v), want 1", n, err)
	}
	old := d.Certificate()
	if n, err := d.Poll(f.ctx); err != nil || n != 1 {
		f.t.Fatalf("the device answered %d commands (%v), want the renewal", n, err)
	}
	if ch, err = f.st.Read().AppleChannels().Get(f.ctx, f.tenant, ch.DeviceID); err != nil {
		f.t.Fatal(err)
	}
	if cmd, _ := f.st.Read().Commands().Get(f.ctx, f.tenant, ch.RenewalCommand); cmd.State != store.CommandAcknowledged {
		f.t.Fatalf("the renewal is %s: %s", cmd.State, mdm.ErrorSummary(cmd.ErrorChain))
	}
	if d.Certificate().SerialNumber.Cmp(old.SerialNumber) == 0 {
		f.t.Fatal("the device kept its old certificate")
	}
}

// TestWithdrawalRacingAnAuthenticate: on PostgreSQL a withdrawal under way
// on another node when the device authenticates is waited for, and the
// device refused; it is not let in on the consent as it was before the
// withdrawal committed, which would retire nothing it could not see.
func TestWithdrawalRacingAnAuthenticate(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f := newFixture(t, st)
	ts := f.serve()
	f.publish(privacy.Personal)
	erika := f.subject("erika@acme.test")
	d := personalPhone(t, ts)
	if err := d.Prepare(f.ctx, f.invite(privacy.Personal, erika), false); err != nil {
		t.Fatal(err)
	}
	cs, err := f.priv.Consents(f.ctx, f.tenant, erika)
	if err != nil || len(cs.Consents) != 1 {
		t.Fatalf("consents: %+v, %v", cs, err)
	}
	release := f.hold(func(q store.Queries) error { return q.Consents().Withdraw(f.ctx, f.tenant, cs.Consents[0].ID, f.now) })
	authenticated := make(chan error, 1)
	go func() { authenticated <- d.Authenticate(f.ctx) }()
	storetest.AwaitLockWaiters(t, st, 1) // the Authenticate waits for the withdrawal
	release()
	if err := <-authenticated; err == nil {
		t.Fatal("a device authenticated on a consent withdrawn while it did")
	}
	if n := len(f.devices()); n != 0 {
		t.Fatalf("%d devices registered", n)
	}
}
