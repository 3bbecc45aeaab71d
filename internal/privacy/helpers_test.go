package privacy_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// fixture is a privacy service on a real store with one tenant.
type fixture struct {
	t      testing.TB
	ctx    context.Context
	st     store.Store
	svc    *privacy.Service
	signer *audit.Signer
	sealer secrets.Sealer
	tenant string
	now    time.Time
}

var admin = iam.Actor{Type: store.ActorAdmin, ID: "admin-1"}

func newFixture(t testing.TB, st store.Store) *fixture {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := secrets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureWithSealer(t, st, sealer)
}

func newFixtureWithSealer(t testing.TB, st store.Store, sealer secrets.Sealer) *fixture {
	t.Helper()
	ctx := context.Background()
	signer, err := audit.LoadOrCreateSigner(ctx, st, sealer)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, st: st, signer: signer, sealer: sealer, now: time.Now().UTC().Truncate(time.Microsecond)}
	f.svc = privacy.NewService(st, keys.New(sealer), signer, nil)
	f.svc.SetClock(func() time.Time { return f.now })
	f.tenant = f.makeTenant("acme")
	return f
}

func (f *fixture) makeTenant(slug string) string {
	f.t.Helper()
	id := store.NewID()
	err := f.st.Tx(f.ctx, func(q store.Queries) error {
		return q.Tenants().Create(f.ctx, store.Tenant{ID: id, Kind: store.TenantProvider, Name: strings.ToUpper(slug), Slug: slug + "-" + id[len(id)-6:],
			CreatedAt: f.now, UpdatedAt: f.now})
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) person(email string) store.Subject {
	f.t.Helper()
	s, err := f.svc.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: email, Name: "Erika Mustermann", Department: "Sales"}, admin)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) device(subjectID string, o privacy.Ownership) store.Device {
	f.t.Helper()
	d, err := f.svc.RegisterDevice(f.ctx, f.tenant, privacy.DeviceInput{SubjectID: subjectID, Ownership: string(o), Platform: "ios"}, admin)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// Markers: values a test looks for in the raw database.
const (
	markerSerial   = "C02MARKERSERIAL7"
	markerPhone    = "+49-1575-MARKER-4711"
	markerIMEI     = "35693803MARKER09"
	markerPersonal = "com.example.MARKER.personal-banking"
	markerManaged  = "com.acme.MARKER.managed-mail"
	markerLat      = 52.520008
)

func deviceInformation(f *fixture, deviceID string) privacy.Report {
	return privacy.Report{TenantID: f.tenant, DeviceID: deviceID, Source: "test/DeviceInformation", At: f.now, Values: []privacy.Observation{
		{Field: "device.serial_number", Value: markerSerial},
		{Field: "device.name", Value: "Erika's iPhone"},
		{Field: "hardware.model", Value: "iPhone 15"},
		{Field: "os.version", Value: "18.1"},
		{Field: "telephony.phone_number", Value: markerPhone},
		{Field: "telephony.imei", Value: markerIMEI},
		{Field: "location.coordinates", Value: map[string]float64{"lat": markerLat, "lon": 13.404954}},
		{Field: "security.passcode_present", Value: true},
		{Field: "apps.installed", Value: []privacy.App{
			{ID: markerManaged, Name: "Mail", Version: "1.0", Managed: true},
			{ID: markerPersonal, Name: "My Bank", Version: "9.9", Managed: false},
		}},
	}}
}

func (f *fixture) ingest(r privacy.Report) privacy.Admitted {
	f.t.Helper()
	a, err := f.svc.Ingest(f.ctx, r)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *fixture) view(deviceID string) map[string]privacy.FieldView {
	f.t.Helper()
	v, err := f.svc.ViewDevice(f.ctx, f.tenant, deviceID, privacy.Viewer{Actor: admin, AdminID: admin.ID})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]privacy.FieldView{}
	for _, fv := range v.Fields {
		out[fv.Field] = fv
	}
	return out
}
