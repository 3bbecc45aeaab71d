package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/store"
)

// manageObjects are one of each device management object of a tenant.
type manageObjects struct {
	group, profile, policy, batch, app, schedule string
}

var sampleProfile = json.RawMessage(`{"name":"Sample Wi-Fi","identifier":"org.sample.wifi","payloads":[{"type":"wifi","wifi":{"ssid":"Sample","security":"wpa2_personal","password":"sample-password-1234"}}]}`)

func init() {
	for _, b := range []any{
		GroupRequest{Name: "Sample group", Kind: "static"},
		MembersRequest{Add: []string{"00000000-0000-0000-0000-000000000000"}},
		device.ProfileInput{Name: "Sample Wi-Fi", Definition: sampleProfile},
		DeviceActionRequest{Action: actions.Lock, Reason: "sample reason for the isolation test"},
		actions.Request{Action: actions.Lock, Reason: "sample reason for the isolation test", DeviceIDs: []string{"00000000-0000-0000-0000-000000000000"}},
		actions.Decision{Approve: true},
		compliance.PolicyInput{Name: "Sample policy", Rules: compliance.Rules{PasscodeRequired: true}},
		AccessTokenRequest{TTLHours: 1},
		device.DefaultSettings(),
		device.AppInput{Identifier: "com.sample.app", Name: "Sample", Kind: "approved", StoreID: 1},
		AppAssignmentRequest{Mode: "available"},
		compliance.ScheduleInput{Kind: "inventory", Format: "pdf", Every: "weekly", Recipients: []string{"00000000-0000-0000-0000-000000000000"}},
	} {
		sampleBodies[reflectType(b)] = b
	}
}

// manageFixtures creates one of each management object in tenant through
// the API; device is a device of the tenant.
func (e *env) manageFixtures(tenant, secret, deviceID string) manageObjects {
	e.t.Helper()
	var o manageObjects
	base := "/api/v1/tenants/" + tenant
	var g GroupView
	e.must(201, secret, "POST", base+"/groups", GroupRequest{Name: "Fixture group", Kind: "static"}, &g)
	o.group = g.ID
	e.must(200, secret, "POST", base+"/groups/"+g.ID+"/members", MembersRequest{Add: []string{deviceID}}, nil)
	var p ProfileView
	e.must(201, secret, "POST", base+"/profiles", device.ProfileInput{Name: "Fixture Wi-Fi", Definition: sampleProfile}, &p)
	o.profile = p.ID
	var pol PolicyView
	e.must(201, secret, "POST", base+"/compliance/policies", compliance.PolicyInput{Name: "Fixture policy", Rules: compliance.Rules{EncryptionRequired: true}}, &pol)
	o.policy = pol.ID
	var b actions.Batch
	e.must(201, secret, "POST", base+"/actions", actions.Request{Action: actions.Sync, Reason: "fixture: refresh the inventory", GroupID: g.ID}, &b)
	o.batch = b.ID
	var app AppView
	e.must(201, secret, "POST", base+"/apps", device.AppInput{Identifier: "com.fixture.app", Name: "Fixture", Kind: "approved", StoreID: 42}, &app)
	o.app = app.ID
	// Schedules need SMTP, which this environment lacks: stored directly.
	sched := store.ReportSchedule{ID: store.NewID(), TenantID: tenant, Kind: "inventory", Format: "pdf", Recipients: []string{"x"},
		Every: "weekly", LinkDays: 7, PasswordSealed: []byte("sealed"), NextRunAt: time.Now(), CreatedBy: "fixture", CreatedAt: time.Now()}
	if err := e.st.Tx(context.Background(), func(q store.Queries) error { return q.Reports().CreateSchedule(context.Background(), sched) }); err != nil {
		e.t.Fatal(err)
	}
	o.schedule = sched.ID
	return o
}
