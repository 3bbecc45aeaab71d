package server

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPortalShowsWhatWasDoneToMyDevice: an employee sees, for their own
// enrolled iPhone, the lock an admin sent and why, the MDM commands as
// admins see them, and the device's compliance standings; not those of a
// colleague's device.
func TestPortalShowsWhatWasDoneToMyDevice(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		person := func(email string) string {
			s, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: email}, iam.SystemActor)
			if err != nil {
				t.Fatal(err)
			}
			return s.ID
		}
		erika, max := person("erika@fleet.test"), person("max@fleet.test")
		phone, phoneID := f.enrol("personal", erika, "", nil)
		_, colleaguesID := f.enrol("personal", max, "", nil)
		const reason = "reported lost on the night train"
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"), api.DeviceActionRequest{Action: actions.Lock, Reason: reason}, nil)
		f.poll(phone)

		var tok api.PortalTokenView
		f.must(201, f.owner, "POST", f.path("/subjects/"+erika+"/portal-tokens"), api.PortalTokenRequest{}, &tok)
		var acts api.List[api.ActionView]
		f.must(200, tok.Token, "GET", "/api/v1/portal/devices/"+phoneID+"/actions", nil, &acts)
		if len(acts.Items) != 1 || acts.Items[0].Action != string(actions.Lock) || acts.Items[0].Reason != reason || acts.Items[0].State != store.ActionDone {
			t.Errorf("the employee's view of the actions on their phone: %+v", acts.Items)
		}
		var own, admins api.List[api.CommandView]
		f.must(200, tok.Token, "GET", "/api/v1/portal/devices/"+phoneID+"/commands", nil, &own)
		f.must(200, f.owner, "GET", f.path("/devices/"+phoneID+"/commands"), nil, &admins)
		types := func(l api.List[api.CommandView]) string {
			var out []string
			for _, c := range l.Items {
				out = append(out, c.RequestType+"/"+c.State)
			}
			return strings.Join(out, ",")
		}
		if types(own) != types(admins) || !strings.Contains(types(own), "DeviceLock/") {
			t.Errorf("the employee sees commands %s; admins see %s", types(own), types(admins))
		}
		var standing api.DeviceComplianceView
		f.must(200, tok.Token, "GET", "/api/v1/portal/devices/"+phoneID+"/compliance", nil, &standing)
		if standing.Standings == nil {
			t.Errorf("the phone's compliance: %+v", standing)
		}
		for _, path := range []string{"/actions", "/commands", "/compliance"} {
			if r := f.do(tok.Token, "GET", "/api/v1/portal/devices/"+colleaguesID+path, nil); r.status != 404 {
				t.Errorf("a colleague's device %s: %d %s", path, r.status, r.body)
			}
			if r := f.do(f.owner, "GET", "/api/v1/portal/devices/"+phoneID+path, nil); r.status != 401 {
				t.Errorf("an admin session on the portal's %s: %d", path, r.status)
			}
		}
	})
}
