package mdm_test

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// refusedCopiedCertificate has a thief present a copy of an enrolled
// device's certificate three times, refused each time; it returns the
// store, the fixture, the device, its record and the audit sequence
// before the refusals.
func refusedCopiedCertificate(t *testing.T) (store.Store, *fixture, *sim.Device, store.Device, int64) {
	t.Helper()
	st := storetest.OpenSQLite(t)
	f := newFixture(t, st)
	f.publish(privacy.Corporate)
	ts := f.serve()
	victim, dev := f.enrolled(ts, privacy.Corporate, "")
	head := auditSeq(t, st, f.tenant)
	thief, _ := sim.New(ts.Client(), false)
	thief.Forge(victim)
	for range 3 {
		if _, err := thief.Send(f.ctx, map[string]any{"Status": "Idle"}); status(t, err) != http.StatusForbidden {
			t.Fatalf("a connect with another device's certificate: %v, want 403", err)
		}
	}
	return st, f, victim, dev, head
}

// TestMisuseThatStopsIsStillCounted: refusals of a copied certificate
// counted within an interval reach the audit log when the interval ends,
// though none follows: the sweep writes the entry counting them.
func TestMisuseThatStopsIsStillCounted(t *testing.T) {
	st, f, _, dev, head := refusedCopiedCertificate(t)
	f.svc.AuditClosedMisuse(f.ctx)
	if got := auditSeq(t, st, f.tenant); got != head+1 {
		t.Fatalf("%d entries within the interval, want 1", got-head)
	}
	f.svc.SetClock(func() time.Time { return time.Now().Add(6 * time.Minute) })
	f.svc.AuditClosedMisuse(f.ctx)
	refused, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.identity_mismatch", AfterSeq: head})
	if err != nil || len(refused) != 2 || refused[1].TargetID != dev.ID {
		t.Fatalf("refusals audited: %+v (%v), want two against %s", refused, err, dev.ID)
	}
	var details struct {
		Since int `json:"refusals_since_last_entry"`
	}
	if err := json.Unmarshal(refused[1].Details, &details); err != nil || details.Since != 2 {
		t.Errorf("the closing entry counts %s, want 2", refused[1].Details)
	}
}

// TestMisuseClosedAfterRenewalNamesTheDevice: the device renews its
// identity while a copy of its old certificate is being refused; the entry
// closing the interval still names the device, through the enrolment the
// copied certificate names, and the sweep does not retry it every tick.
func TestMisuseClosedAfterRenewalNamesTheDevice(t *testing.T) {
	st, f, victim, dev, head := refusedCopiedCertificate(t)
	// The channel moves on to a new certificate (as a renewal does).
	old := victim.Certificate()
	sum := sha256.Sum256(old.Raw)
	if err := st.Tx(f.ctx, func(q store.Queries) error {
		return q.AppleChannels().MoveCertificate(f.ctx, f.tenant, dev.ID, sum[:], store.ChannelCertificate{
			Fingerprint: []byte("renewed-certificate-fingerprint-0"), Serial: "4711", NotAfter: time.Now().Add(90 * 24 * time.Hour)}, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	for minutes := 6; minutes <= 8; minutes++ {
		f.svc.SetClock(func() time.Time { return time.Now().Add(time.Duration(minutes) * time.Minute) })
		f.svc.AuditClosedMisuse(f.ctx)
	}
	refused, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.identity_mismatch", AfterSeq: head})
	if err != nil || len(refused) != 2 || refused[1].TargetID != dev.ID {
		t.Fatalf("refusals audited: %+v (%v), want two against %s", refused, err, dev.ID)
	}
}
