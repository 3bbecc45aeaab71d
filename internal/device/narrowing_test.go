package device_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/fleet"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

var admin = iam.Actor{Type: store.ActorAdmin, ID: "admin-1"}

// managed is device management wired onto the privacy gate as the server
// wires it, with one tenant and one enrolled corporate iPhone that reported
// its model, OS version and passcode state, matched by two dynamic groups
// and a compliance policy.
type managed struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	priv   *privacy.Service
	fleet  fleet.Services
	tenant string
	phone  string
	groups map[string]string // rule attribute -> group ID
	now    time.Time
}

func newManaged(t *testing.T, st store.Store) *managed {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := secrets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.LoadOrCreateSigner(ctx, st, sealer)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	m := &managed{t: t, ctx: ctx, st: st, now: time.Now().UTC().Truncate(time.Microsecond), groups: map[string]string{}}
	clock := func() time.Time { return m.now }
	m.priv = privacy.NewService(st, keys.New(sealer), signer, log)
	m.priv.SetClock(clock)
	protocol := mdm.New(st, m.priv, sealer, mdm.Config{PublicURL: "https://steward.test"}, log)
	protocol.SetClock(clock)
	m.fleet = fleet.Wire(st, m.priv, protocol, sealer, log)
	m.fleet.Devices.SetClock(clock)
	m.fleet.Compliance.SetClock(clock)

	m.tenant = store.NewID()
	m.tx(func(q store.Queries) error {
		return q.Tenants().Create(ctx, store.Tenant{ID: m.tenant, Kind: store.TenantProvider, Name: "ACME", Slug: "acme-" + m.tenant[len(m.tenant)-6:],
			CreatedAt: m.now, UpdatedAt: m.now})
	})
	for attr, rule := range map[string]string{
		"hardware.model": `{"attr":"hardware.model","op":"eq","value":"iPhone 15"}`,
		"os.version":     `{"attr":"os.version","op":"gte","value":"18"}`,
	} {
		g, err := m.fleet.Devices.CreateGroup(ctx, m.tenant, device.GroupInput{Name: attr, Kind: store.GroupDynamic, Rule: json.RawMessage(rule)}, admin)
		if err != nil {
			t.Fatal(err)
		}
		m.groups[attr] = g.ID
	}
	if _, err := m.fleet.Compliance.CreatePolicy(ctx, m.tenant, compliance.PolicyInput{Platform: "ios", Name: "Current iOS",
		Rules: compliance.Rules{MinOSVersion: "17.0"}}, admin.ID, admin); err != nil {
		t.Fatal(err)
	}
	phone, err := m.priv.RegisterDevice(ctx, m.tenant, privacy.DeviceInput{Ownership: string(privacy.Corporate), Platform: "ios"}, admin)
	if err != nil {
		t.Fatal(err)
	}
	m.phone = phone.ID
	phone.State, phone.EnrolledAt = store.DeviceEnrolled, m.now
	m.tx(func(q store.Queries) error { return q.Devices().Update(ctx, phone) })
	if _, err := m.priv.Ingest(ctx, privacy.Report{TenantID: m.tenant, DeviceID: m.phone, Source: "test/DeviceInformation", At: m.now,
		Values: []privacy.Observation{
			{Field: "hardware.model", Value: "iPhone 15"},
			{Field: "os.version", Value: "18.1"},
			{Field: "security.passcode_present", Value: true},
		}}); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *managed) tx(fn func(q store.Queries) error) {
	m.t.Helper()
	if err := m.st.Tx(m.ctx, fn); err != nil {
		m.t.Fatal(err)
	}
}

// listed is the phone as the device list shows it, with its projection's
// facts, the groups it is in, and its compliance.
func (m *managed) listed() (store.Device, map[string]json.RawMessage, map[string]bool) {
	m.t.Helper()
	page, err := m.st.Read().ManagedDevices().Search(m.ctx, m.tenant, store.DeviceQuery{Ownership: string(privacy.Corporate)})
	if err != nil || len(page.Devices) != 1 {
		m.t.Fatalf("device list: %+v, %v; want the phone", page, err)
	}
	ps, err := m.st.Read().ManagedDevices().Projections(m.ctx, m.tenant, "")
	if err != nil || len(ps) != 1 {
		m.t.Fatalf("projections: %+v, %v", ps, err)
	}
	var facts map[string]json.RawMessage
	if err := json.Unmarshal(ps[0].Facts, &facts); err != nil {
		m.t.Fatalf("projection facts %s: %v", ps[0].Facts, err)
	}
	ids, err := m.st.Read().Groups().GroupsOf(m.ctx, m.tenant, m.phone)
	if err != nil {
		m.t.Fatal(err)
	}
	in := map[string]bool{}
	for attr, id := range m.groups {
		for _, g := range ids {
			in[attr] = in[attr] || g == id
		}
	}
	return page.Devices[0], facts, in
}

// TestNarrowingTakesFactsOutOfTheDeviceList: once the policy stops
// collecting a class's hardware and hides its OS, neither is in its
// devices' list entries or projections any more, and groups and
// compliance no longer decide by them, without waiting for a report.
func TestNarrowingTakesFactsOutOfTheDeviceList(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		m := newManaged(t, st)
		d, facts, in := m.listed()
		if d.Model != "iPhone 15" || d.OSVersion != "18.1" || len(facts) != 3 || !in["hardware.model"] || !in["os.version"] ||
			d.Compliance != store.ComplianceCompliant {
			t.Fatalf("before the narrowing: model %q, OS %q, facts %v, groups %v, compliance %s", d.Model, d.OSVersion, facts, in, d.Compliance)
		}

		res, err := m.priv.RequestPolicyChange(m.ctx, m.tenant, privacy.PolicyChangeInput{Reason: "the works council asked", Changes: []privacy.Change{
			{Ownership: privacy.Corporate, Category: privacy.Hardware, Mode: privacy.Drop},
			{Ownership: privacy.Corporate, Category: privacy.OS, Mode: privacy.Hide},
		}}, "admin-1", admin)
		if err != nil || !res.Applied {
			t.Fatalf("narrowing: %+v, %v", res, err)
		}
		d, facts, in = m.listed()
		if d.Model != "" || d.OSVersion != "" {
			t.Errorf("the device list still shows model %q and OS version %q", d.Model, d.OSVersion)
		}
		if _, ok := facts["hardware.model"]; ok {
			t.Errorf("the projection keeps the model the policy no longer collects: %v", facts)
		}
		if _, ok := facts["os.version"]; ok {
			t.Errorf("the projection keeps the OS version the policy now hides: %v", facts)
		}
		if string(facts["security.passcode_present"]) != "true" {
			t.Errorf("the projection lost the passcode state the policy still shows: %v", facts)
		}
		if in["hardware.model"] || in["os.version"] {
			t.Errorf("groups still decided by the dropped and hidden facts: %v", in)
		}
		if d.Compliance != store.ComplianceUnknown {
			t.Errorf("compliance %s; the minimum OS version cannot be told from a hidden OS version", d.Compliance)
		}
	})
}

// TestExpiredValuesLeaveTheDeviceList: a value purged at the end of its
// retention leaves the device list, projection and groups with it.
func TestExpiredValuesLeaveTheDeviceList(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		m := newManaged(t, st)
		if _, err := m.priv.SetRetention(m.ctx, m.tenant, map[privacy.Category]int{privacy.OS: 1}, "OS versions go stale", "admin-1", admin); err != nil {
			t.Fatal(err)
		}
		m.now = m.now.Add(25 * time.Hour)
		res, err := (&privacy.Purger{Service: m.priv, Batch: 100}).RunOnce(m.ctx)
		if err != nil || res.ByKey[m.tenant+"/os"] != 1 {
			t.Fatalf("purge: %+v, %v; want the OS version", res, err)
		}
		d, facts, in := m.listed()
		if d.OSVersion != "" || facts["os.version"] != nil {
			t.Errorf("the expired OS version is still listed: %q, facts %v", d.OSVersion, facts)
		}
		if d.Model != "iPhone 15" || !in["hardware.model"] {
			t.Errorf("the model, which has not expired, is gone: %q, groups %v", d.Model, in)
		}
		if in["os.version"] {
			t.Error("the device stays in a group chosen by its expired OS version")
		}
	})
}
