package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func TestAppleAPI(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		base := "/api/v1/tenants/" + e.rootID
		if r := e.do(e.owner, "POST", base+"/enrolments", EnrolmentRequest{Ownership: "corporate"}); r.status != 409 {
			t.Fatalf("enrolment before a notice: %d %s", r.status, r.body)
		}
		e.must(201, e.owner, "POST", base+"/privacy/notices", NoticeRequest{Ownership: "corporate",
			Translations: []privacy.Translation{{Language: "en", Title: "Company devices", Body: "We manage company devices."}}}, nil)
		var enr NewEnrolmentView
		e.must(201, e.owner, "POST", base+"/enrolments", EnrolmentRequest{Ownership: "corporate"}, &enr)
		if enr.Enrolment.State != "open" || len(enr.Link) < 40 {
			t.Fatalf("enrolment: %+v", enr)
		}
		var list List[EnrolmentView]
		e.must(200, e.owner, "GET", base+"/enrolments", nil, &list)
		if len(list.Items) != 1 {
			t.Fatalf("enrolments: %+v", list)
		}
		if r := e.do(e.owner, "PUT", base+"/apple/push-certificate", PushCertificateRequest{Certificate: "bm90IGEgY2VydGlmaWNhdGU="}); r.status != 400 {
			t.Errorf("a bad push certificate: %d %s", r.status, r.body)
		}
		if r := e.do(e.owner, "GET", base+"/apple/push-certificate", nil); r.status != 409 {
			t.Errorf("no push certificate yet: %d", r.status)
		}
		var dev DeviceView
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{Ownership: "corporate", Platform: "macos"}, &dev)
		vpp, two := 1, 2
		for _, c := range []struct {
			body CommandRequest
			want int
		}{
			{CommandRequest{RequestType: "MakeCoffee"}, 400},
			{CommandRequest{RequestType: "SecurityInfo"}, 409},                   // not enrolled yet
			{CommandRequest{RequestType: "EraseDevice", Reason: "short"}, 400},   // a wipe needs a reason
			{CommandRequest{RequestType: "InstallProfile", Payload: "%%%"}, 400}, // not base64
			{CommandRequest{RequestType: "InstallApplication", ITunesStoreID: 361309726, PurchaseMethod: &vpp}, 409},
			{CommandRequest{RequestType: "InstallApplication", ITunesStoreID: 361309726, PurchaseMethod: &two}, 400},
			{CommandRequest{RequestType: "ScheduleOSUpdate", InstallAction: "InstallASAP"}, 400}, // an action for no named update
			{CommandRequest{RequestType: "ScheduleOSUpdate", Reason: "security fixes due"}, 409}, // the device's default behaviour
			{CommandRequest{RequestType: "ScheduleOSUpdate", ProductVersion: "17.5.1", InstallAction: "InstallASAP", Reason: "security fixes due"}, 409},
		} {
			if r := e.do(e.owner, "POST", base+"/devices/"+dev.ID+"/commands", c.body); r.status != c.want {
				t.Errorf("%s: %d %s, want %d", c.body.RequestType, r.status, r.body, c.want)
			}
		}
		// Wipes, retires and bulk changes go through remote actions (two-person rule).
		if r := e.do(e.owner, "POST", base+"/commands", BulkCommandRequest{CommandRequest: CommandRequest{RequestType: "EraseDevice", Reason: "a long enough reason"}, AllEnrolled: true}); r.status != 400 {
			t.Errorf("a bulk wipe: %d %s", r.status, r.body)
		}
		if r := e.do(e.owner, "POST", base+"/commands", BulkCommandRequest{CommandRequest: CommandRequest{RequestType: "DeviceLock", Reason: "a long enough reason"}, AllEnrolled: true}); r.status != 403 {
			t.Errorf("a bulk lock outside remote actions: %d %s", r.status, r.body)
		}
		// The management profile's identifiers are reserved whatever their
		// case, as they are for an uploaded profile.
		for _, id := range []string{"org.steward.enrolment.x", "ORG.STEWARD.ENROLMENT.x", "Org.Steward.Enrolment", mdmproto.EnrolmentIdentifier(store.NewID())} {
			if r := e.do(e.owner, "POST", base+"/devices/"+dev.ID+"/commands", CommandRequest{RequestType: "RemoveProfile", Identifier: id}); r.status != 400 {
				t.Errorf("removing the management profile %q by command: %d %s", id, r.status, r.body)
			}
		}
		var bulk BulkCommandView
		e.must(201, e.owner, "POST", base+"/commands", BulkCommandRequest{CommandRequest: CommandRequest{RequestType: "SecurityInfo"}, AllEnrolled: true}, &bulk)
		if bulk.Queued != 0 {
			t.Errorf("queued for %d devices, none is enrolled", bulk.Queued)
		}
		if r := e.do(e.owner, "POST", base+"/commands", BulkCommandRequest{CommandRequest: CommandRequest{RequestType: "SecurityInfo"},
			AllEnrolled: true, DeviceIDs: []string{dev.ID}}); r.status != 400 {
			t.Errorf("device_ids with all_enrolled: %d %s", r.status, r.body)
		}
		// Help Desk may lock but not query inventory.
		_, help := e.admin(e.rootID, "help@steward.test", "helpdesk")
		if r := e.do(help, "POST", base+"/devices/"+dev.ID+"/commands", CommandRequest{RequestType: "SecurityInfo"}); r.status != 403 {
			t.Errorf("help desk ran SecurityInfo: %d", r.status)
		}
		if r := e.do(help, "POST", base+"/devices/"+dev.ID+"/commands", CommandRequest{RequestType: "DeviceLock", Reason: "reported stolen"}); r.status != 409 {
			t.Errorf("help desk lock (device not enrolled yet): %d %s", r.status, r.body)
		}

		// Cancelling needs what sending needs: help desk may withdraw a lock,
		// not an inventory query.
		queued := func(requestType string) string {
			c := store.Command{ID: store.NewID(), TenantID: e.rootID, DeviceID: dev.ID, RequestType: requestType, Payload: []byte("sealed"),
				State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: time.Now()}
			if err := st.Tx(context.Background(), func(q store.Queries) error { return q.Commands().Enqueue(context.Background(), []store.Command{c}, 10) }); err != nil {
				t.Fatal(err)
			}
			return c.ID
		}
		cancel := func(deviceID, commandID string) string {
			return base + "/devices/" + deviceID + "/commands/" + commandID + "/cancel"
		}
		lock, query := queued("DeviceLock"), queued("SecurityInfo")
		if r := e.do(help, "POST", cancel(dev.ID, query), CancelCommandRequest{}); r.status != 403 {
			t.Errorf("help desk cancelled an inventory query: %d %s", r.status, r.body)
		}
		var cancelled CommandView
		e.must(200, help, "POST", cancel(dev.ID, lock), CancelCommandRequest{Reason: "found the phone"}, &cancelled)
		if cancelled.State != store.CommandCancelled {
			t.Errorf("cancelled lock: %+v", cancelled)
		}
		if r := e.do(help, "POST", cancel(dev.ID, lock), CancelCommandRequest{Reason: "found the phone"}); r.status != 409 {
			t.Errorf("cancelling twice: %d %s", r.status, r.body)
		}
		// Stopping an action's command says why, as sending it did.
		another := queued("DeviceLock")
		for _, why := range []string{"", "ok", "found it\x1b[2J on the desk"} {
			if r := e.do(help, "POST", cancel(dev.ID, another), CancelCommandRequest{Reason: why}); r.status != 400 {
				t.Errorf("cancelling a lock with the reason %q: %d %s", why, r.status, r.body)
			}
		}
		if r := e.do(e.owner, "POST", cancel(store.NewID(), query), CancelCommandRequest{}); r.status != 404 {
			t.Errorf("cancelling through another device: %d %s", r.status, r.body)
		}
		// A retire is a RemoveProfile, but stopping one needs what the retire
		// needed, not device.manage.
		retire := queued("RemoveProfile")
		if err := st.Tx(context.Background(), func(q store.Queries) error {
			return q.Actions().Create(context.Background(), []store.DeviceAction{{ID: store.NewID(), TenantID: e.rootID, DeviceID: dev.ID,
				Action: "retire", Reason: "left the company", RequestedBy: "admin:x", State: "sent", CommandID: retire, CreatedAt: time.Now(), UpdatedAt: time.Now()}})
		}); err != nil {
			t.Fatal(err)
		}
		var manager RoleView
		e.must(201, e.owner, "POST", base+"/roles", RoleRequest{Name: "Device manager", Permissions: []string{"device.read", "device.manage"}}, &manager)
		_, mgr := e.admin(e.rootID, "manager@steward.test", manager.ID)
		if r := e.do(mgr, "POST", cancel(dev.ID, retire), CancelCommandRequest{}); r.status != 403 {
			t.Errorf("device.manage alone cancelled an approved retire: %d %s", r.status, r.body)
		}
		e.must(200, mgr, "POST", cancel(dev.ID, query), CancelCommandRequest{}, nil)
		e.must(200, e.owner, "POST", cancel(dev.ID, retire), CancelCommandRequest{Reason: "the employee stays"}, nil)

		// User channels: listed per device, named by ID when queuing.
		var users List[UserChannelView]
		e.must(200, e.owner, "GET", base+"/devices/"+dev.ID+"/user-channels", nil, &users)
		if len(users.Items) != 0 {
			t.Fatalf("user channels of a Mac nobody logged in on: %+v", users)
		}
		if r := e.do(e.owner, "GET", base+"/devices/"+store.NewID()+"/user-channels", nil); r.status != 404 {
			t.Errorf("user channels of an unknown device: %d %s", r.status, r.body)
		}
		uc := store.AppleUserChannel{ID: store.NewID(), TenantID: e.rootID, DeviceID: dev.ID, UserIndex: []byte("u"), AccountIndex: []byte("a"),
			PushToken: []byte("t"), UpdatedAt: time.Now()}
		if err := st.Tx(context.Background(), func(q store.Queries) error {
			_, err := q.AppleUserChannels().Open(context.Background(), uc)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		e.must(200, e.owner, "GET", base+"/devices/"+dev.ID+"/user-channels", nil, &users)
		if len(users.Items) != 1 || users.Items[0].ID != uc.ID || !users.Items[0].Open || !users.Items[0].Pushable {
			t.Fatalf("user channels: %+v", users)
		}
		for _, c := range []struct {
			who  string
			body CommandRequest
			want int
		}{
			{"owner", CommandRequest{RequestType: "ProfileList", UserChannel: store.NewID()}, 404},
			{"owner", CommandRequest{RequestType: "SecurityInfo", UserChannel: uc.ID}, 400},
			{"owner", CommandRequest{RequestType: "ProfileList", UserChannel: uc.ID}, 409}, // the Mac is not enrolled
			{"help desk", CommandRequest{RequestType: "RemoveProfile", Identifier: "com.example.wifi", UserChannel: uc.ID}, 403},
		} {
			who := e.owner
			if c.who == "help desk" {
				who = help
			}
			if r := e.do(who, "POST", base+"/devices/"+dev.ID+"/commands", c.body); r.status != c.want {
				t.Errorf("%s: %s on a user channel: %d %s, want %d", c.who, c.body.RequestType, r.status, r.body, c.want)
			}
		}
		if r := e.do(e.owner, "POST", base+"/commands", BulkCommandRequest{CommandRequest: CommandRequest{RequestType: "ProfileList", UserChannel: uc.ID},
			DeviceIDs: []string{dev.ID}}); r.status != 400 {
			t.Errorf("a bulk command on a user channel: %d %s", r.status, r.body)
		}
		closeURL := base + "/devices/" + dev.ID + "/user-channels/" + uc.ID + "/close"
		if r := e.do(help, "POST", closeURL, CancelCommandRequest{}); r.status != 403 {
			t.Errorf("help desk closed a user channel: %d %s", r.status, r.body)
		}
		if r := e.do(e.owner, "POST", closeURL, CancelCommandRequest{Reason: "left the\x1b[2J company"}); r.status != 400 {
			t.Errorf("closing a user channel with an escape sequence in the reason: %d %s", r.status, r.body)
		}
		var closed UserChannelView
		e.must(200, e.owner, "POST", closeURL, CancelCommandRequest{Reason: "left the company"}, &closed)
		if closed.Open || closed.Pushable {
			t.Errorf("closed user channel: %+v", closed)
		}
		if r := e.do(e.owner, "POST", closeURL, CancelCommandRequest{}); r.status != 409 {
			t.Errorf("closing a user channel twice: %d %s", r.status, r.body)
		}
	})
}

// TestUserChannelLookupAPI: finding an account's user channel asks whether
// a person used the device, so it needs a reason: without a valid one it is
// 400 and nothing is audited or recorded. With one it is audited with the
// reason, and the person the account names sees it in their access record
// on the portal; an account that is nobody's leaves no record. Listing
// every channel needs no reason.
func TestUserChannelLookupAPI(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := context.Background()
		base := "/api/v1/tenants/" + e.rootID
		var anna SubjectView
		e.must(201, e.owner, "POST", base+"/subjects", SubjectRequest{Email: "anna@acme.test", Name: "Anna"}, &anna)
		var dev DeviceView
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{Ownership: "corporate", Platform: "macos"}, &dev)
		m, err := e.srv.mdmSvc()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Tx(ctx, func(q store.Queries) error {
			idx, err := m.AccountIndex(ctx, q, e.rootID, dev.ID, "anna@acme.test")
			if err != nil {
				return err
			}
			_, err = q.AppleUserChannels().Open(ctx, store.AppleUserChannel{ID: store.NewID(), TenantID: e.rootID, DeviceID: dev.ID,
				UserIndex: []byte("u"), AccountIndex: idx, PushToken: []byte("t"), UpdatedAt: time.Now()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var tok PortalTokenView
		e.must(201, e.owner, "POST", base+"/subjects/"+anna.ID+"/portal-tokens", PortalTokenRequest{}, &tok)
		portalRecord := func() []AccessRecordView {
			t.Helper()
			var recs List[AccessRecordView]
			e.must(200, tok.Token, "GET", "/api/v1/portal/access-record", nil, &recs)
			return recs.Items
		}
		lookups := func() []store.AuditEntry {
			t.Helper()
			es, err := st.Read().Audit().List(ctx, e.rootID, store.AuditFilter{Action: "mdm.user_channel.lookup"})
			if err != nil {
				t.Fatal(err)
			}
			return es
		}
		channels := base + "/devices/" + dev.ID + "/user-channels"
		lookup := func(account, reason string) UserChannelLookupRequest {
			return UserChannelLookupRequest{Account: account, Reason: reason}
		}

		for _, reason := range []string{"", "   ", "too short", "checking\x1b[2J the account"} {
			r := e.do(e.owner, "POST", channels+"/lookup", lookup("anna@acme.test", reason))
			if r.status != 400 || r.errorCode() != "invalid_request" || !strings.Contains(string(r.body), "reason") {
				t.Errorf("a lookup with the reason %q: %d %s; want 400 asking for a reason", reason, r.status, r.body)
			}
		}
		if es, recs := lookups(), portalRecord(); len(es) != 0 || len(recs) != 0 {
			t.Fatalf("lookups without a valid reason left audit entries %+v and access records %+v", es, recs)
		}

		const why = "ticket 4711: the VPN profile is missing"
		var found List[UserChannelView]
		e.must(200, e.owner, "POST", channels+"/lookup", lookup("Anna@acme.test", why), &found)
		if len(found.Items) != 1 {
			t.Fatalf("anna's channel: %+v", found)
		}
		if es := lookups(); len(es) != 1 || es[0].Reason != why || string(es[0].Details) != `{"found":true}` {
			t.Errorf("the lookup audited as %+v; want its reason and that it found a channel", es)
		}
		recs := portalRecord()
		if len(recs) != 1 || recs[0].Action != mdm.AccountLookupAccess || recs[0].DeviceID != dev.ID || recs[0].Reason != why ||
			!strings.HasPrefix(recs[0].Actor, "admin:") {
			t.Fatalf("anna's access record on the portal: %+v; want the lookup on %s", recs, dev.ID)
		}

		// A Mac's short name is nobody Steward knows: the same answer, no
		// record; nor is an address in a form no device sends.
		e.must(200, e.owner, "POST", channels+"/lookup", lookup("<anna@acme.test>", why), &found)
		if len(found.Items) != 0 || len(portalRecord()) != 1 {
			t.Errorf("looking up a quoted address: %+v, %d records of anna's; want nothing found and no record", found, len(portalRecord()))
		}
		e.must(200, e.owner, "POST", channels+"/lookup", lookup("jdoe", why), &found)
		if len(found.Items) != 0 || len(lookups()) != 3 || len(portalRecord()) != 1 {
			t.Errorf("looking up an unknown account: %+v, %d lookups audited, %d records of anna's", found, len(lookups()), len(portalRecord()))
		}
		e.must(200, e.owner, "GET", channels, nil, &found)
		if len(found.Items) != 1 || len(lookups()) != 3 {
			t.Errorf("listing every channel: %+v, %d lookups audited", found, len(lookups()))
		}
		// Naming a person who used the device is what a reveal does: the
		// roles that see devices without revealing anything may not ask.
		for _, role := range []string{"auditor", "readonly"} {
			_, secret := e.admin(e.rootID, role+"@acme.test", role)
			if r := e.do(secret, "POST", channels+"/lookup", lookup("anna@acme.test", why)); r.status != 403 || len(lookups()) != 3 {
				t.Errorf("a lookup by the %s role: %d %s; want 403 and nothing audited", role, r.status, r.body)
			}
		}
		if r := e.do(e.owner, "POST", channels+"/lookup", lookup("", why)); r.status != 400 || len(lookups()) != 3 {
			t.Errorf("a lookup without an account: %d %s, %d lookups audited; want 400", r.status, r.body, len(lookups()))
		}
		// The account and the reason stay out of URLs, and so of proxies' logs.
		if r := e.do(e.owner, "GET", channels+"?account=anna%40acme.test", nil); r.status != 400 || len(lookups()) != 3 {
			t.Errorf("a lookup in the query string: %d %s, %d lookups audited; want 400 pointing to the body", r.status, r.body, len(lookups()))
		}
	})
}

// TestRevokeEnrolmentAPI: DELETE on an enrolment revokes its link for
// whoever holds device.manage, is audited, and answers the revoked
// enrolment again when repeated; a link a device used is refused, an
// unknown one is not found, and a role without device.manage changes nothing.
func TestRevokeEnrolmentAPI(t *testing.T) {
	st := storetest.OpenSQLite(t)
	e := newEnv(t, st)
	base := "/api/v1/tenants/" + e.rootID
	e.must(201, e.owner, "POST", base+"/privacy/notices", NoticeRequest{Ownership: "corporate",
		Translations: []privacy.Translation{{Language: "en", Title: "Company devices", Body: "We manage company devices."}}}, nil)
	var enr NewEnrolmentView
	e.must(201, e.owner, "POST", base+"/enrolments", EnrolmentRequest{Ownership: "corporate"}, &enr)
	revoke := base + "/enrolments/" + enr.Enrolment.ID
	stored := func(id string) store.Enrolment {
		t.Helper()
		got, err := st.Read().Enrolments().Get(context.Background(), e.rootID, id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	_, help := e.admin(e.rootID, "help@steward.test", "helpdesk")
	if r := e.do(help, "DELETE", revoke, nil); r.status != 403 {
		t.Errorf("help desk revoked an enrolment: %d %s", r.status, r.body)
	}
	if got := stored(enr.Enrolment.ID); got.State != store.EnrolmentOpen {
		t.Fatalf("a refused revocation left the enrolment %s", got.State)
	}
	if r := e.do(e.owner, "DELETE", base+"/enrolments/"+store.NewID(), nil); r.status != 404 {
		t.Errorf("revoking an unknown enrolment: %d %s", r.status, r.body)
	}

	var revoked EnrolmentView
	e.must(200, e.owner, "DELETE", revoke, nil, &revoked)
	if revoked.ID != enr.Enrolment.ID || revoked.State != store.EnrolmentRevoked || stored(enr.Enrolment.ID).State != store.EnrolmentRevoked {
		t.Fatalf("revoked: %+v", revoked)
	}
	var again EnrolmentView
	e.must(200, e.owner, "DELETE", revoke, nil, &again)
	if again.State != store.EnrolmentRevoked {
		t.Errorf("revoking again: %+v", again)
	}
	var list List[EnrolmentView]
	e.must(200, e.owner, "GET", base+"/enrolments", nil, &list)
	if len(list.Items) != 1 || list.Items[0].State != store.EnrolmentRevoked {
		t.Errorf("enrolments after revoking: %+v", list.Items)
	}
	entries, err := st.Read().Audit().List(context.Background(), e.rootID, store.AuditFilter{Action: "enrolment.revoke", TargetID: enr.Enrolment.ID})
	if err != nil || len(entries) != 1 || entries[0].ActorType != store.ActorAdmin {
		t.Errorf("revocations audited: %+v, %v; want one, by an admin", entries, err)
	}

	// A link a device enrolled with: the device is what to act on.
	used := store.Enrolment{ID: store.NewID(), TenantID: e.rootID, Ownership: "corporate", NoticeVersion: 1, SecretHash: []byte("used link"),
		State: store.EnrolmentUsed, CreatedBy: "admin:x", DeviceID: store.NewID(), CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
		UsedAt: time.Now()}
	if err := st.Tx(context.Background(), func(q store.Queries) error { return q.Enrolments().Create(context.Background(), used) }); err != nil {
		t.Fatal(err)
	}
	if r := e.do(e.owner, "DELETE", base+"/enrolments/"+used.ID, nil); r.status != 409 || !strings.Contains(string(r.body), "retire") {
		t.Errorf("revoking a used enrolment: %d %s; want 409 saying to retire the device", r.status, r.body)
	}
	if got := stored(used.ID); got.State != store.EnrolmentUsed {
		t.Errorf("a refused revocation left the used enrolment %s", got.State)
	}
}

// TestAppCommandRequests: purchase_method reaches the command as Options'
// PurchaseMethod, and only Apple's two values, for the right kind of app,
// are taken.
func TestAppCommandRequests(t *testing.T) {
	method := func(m int) *int { return &m }
	for _, c := range []struct {
		in   CommandRequest
		want mdmproto.PurchaseMethod
		ok   bool
	}{
		{CommandRequest{ITunesStoreID: 361309726}, mdmproto.PurchaseFree, true},
		{CommandRequest{ITunesStoreID: 361309726, PurchaseMethod: method(0)}, mdmproto.PurchaseFree, true},
		{CommandRequest{Identifier: "com.example.expenses", PurchaseMethod: method(1)}, mdmproto.PurchaseVPP, true},
		{CommandRequest{ITunesStoreID: 361309726, PurchaseMethod: method(2)}, 0, false},
		{CommandRequest{ITunesStoreID: 361309726, PurchaseMethod: method(-1)}, 0, false},
		{CommandRequest{ManifestURL: "https://apps.example.com/m.plist", PurchaseMethod: method(1)}, 0, false},
	} {
		c.in.RequestType = "InstallApplication"
		req, err := requestFor(c.in)
		if !c.ok {
			if !apperr.IsKind(err, apperr.KindInvalid) {
				t.Errorf("%+v: %v, want invalid", c.in, err)
			}
			continue
		}
		if err != nil || req.(mdmproto.InstallApplication).PurchaseMethod != c.want {
			t.Errorf("%+v: %+v, %v; want PurchaseMethod %d", c.in, req, err, c.want)
		}
	}
}

// TestDirectRestartAsksTheUser: a restart queued as a command asks a Mac's
// user first, as the restart action does, which the same permission sends.
func TestDirectRestartAsksTheUser(t *testing.T) {
	req, err := requestFor(CommandRequest{RequestType: "RestartDevice", Reason: "the employee asked for it"})
	if err != nil || req != (mdmproto.RestartDevice{NotifyUser: true}) {
		t.Errorf("a direct restart: %+v, %v; want NotifyUser", req, err)
	}
}

// profile is a configuration profile with identifier holding one payload
// of payloadType.
func profile(identifier, payloadType string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>` + identifier + `</string>
<key>PayloadUUID</key><string>6B1E2C5A-0000-4000-8000-000000000001</string>
<key>PayloadContent</key><array><dict>
<key>PayloadType</key><string>` + payloadType + `</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>` + identifier + `.payload</string>
<key>PayloadUUID</key><string>6B1E2C5A-0000-4000-8000-000000000002</string>
<key>ServerURL</key><string>https://other.example/mdm</string>
</dict></array></dict></plist>`
}

// TestInstallProfileCommandIsCheckedLikeAnUpload: a profile sent by
// command passes the profile library's checks; before, any bytes went, an
// MDM payload or an identifier that replaces the enrolment profile too.
func TestInstallProfileCommandIsCheckedLikeAnUpload(t *testing.T) {
	for _, c := range []struct {
		name, profile string
		ok            bool
	}{
		{"a Wi-Fi profile", profile("com.example.wifi", "com.apple.wifi.managed"), true},
		{"another MDM server", profile("com.example.mdm", "com.apple.mdm"), false},
		{"the enrolment profile's identifier", profile("org.steward.enrolment.01HZZZZZZZZZZZZZZZZZZZZZZZ", "com.apple.wifi.managed"), false},
		{"not a profile", "not a profile at all", false},
	} {
		_, err := requestFor(CommandRequest{RequestType: "InstallProfile", Payload: base64.StdEncoding.EncodeToString([]byte(c.profile))})
		if c.ok != (err == nil) {
			t.Errorf("%s: %v", c.name, err)
		}
		if ae := apperr.As(err); err != nil && (ae.Kind != apperr.KindInvalid || ae.Details["field"] != "payload") {
			t.Errorf("%s: %+v, want an invalid payload", c.name, ae)
		}
	}
}

// TestDirectCommandsFollowTheActionRules: a command a remote action also
// sends needs, sent directly, what the action needs: its permission, a
// reason and the action's checks of its options. Before, restart, shut
// down and OS updates needed device.manage alone, and messages, phone
// numbers, versions and reasons went unchecked.
func TestDirectCommandsFollowTheActionRules(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	base := "/api/v1/tenants/" + e.rootID
	e.must(201, e.owner, "POST", base+"/privacy/notices", NoticeRequest{Ownership: "corporate",
		Translations: []privacy.Translation{{Language: "en", Title: "Company devices", Body: "We manage company devices."}}}, nil)
	var dev DeviceView
	e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{Ownership: "corporate", Platform: "macos"}, &dev)
	commands := base + "/devices/" + dev.ID + "/commands"
	var manager RoleView
	e.must(201, e.owner, "POST", base+"/roles", RoleRequest{Name: "Device manager", Permissions: []string{"device.read", "device.manage"}}, &manager)
	_, mgr := e.admin(e.rootID, "manager@steward.test", manager.ID)
	reason := "the employee asked for it"
	for _, rt := range []string{"RestartDevice", "ShutDownDevice", "ScheduleOSUpdate"} {
		if r := e.do(mgr, "POST", commands, CommandRequest{RequestType: rt, Reason: reason}); r.status != 403 {
			t.Errorf("%s with device.manage only: %d %s, want 403 like the restart and os_update actions", rt, r.status, r.body)
		}
	}
	long, unbounded := strings.Repeat("x", 201), strings.Repeat("x", 501)
	// 409 = every check passed, refused only because the device is not enrolled.
	for _, c := range []struct {
		what string
		body CommandRequest
		want int
	}{
		{"restart without a reason", CommandRequest{RequestType: "RestartDevice"}, 400},
		{"shut down with a short reason", CommandRequest{RequestType: "ShutDownDevice", Reason: "short"}, 400},
		{"update with a padded short reason", CommandRequest{RequestType: "ScheduleOSUpdate", Reason: "   too short   "}, 400},
		{"lock with a 501-character reason", CommandRequest{RequestType: "DeviceLock", Reason: unbounded}, 400},
		{"restart with a reason", CommandRequest{RequestType: "RestartDevice", Reason: reason}, 409},
		{"query with a 501-character reason", CommandRequest{RequestType: "SecurityInfo", Reason: unbounded}, 400}, // optional, but audited
		{"query with a short reason", CommandRequest{RequestType: "SecurityInfo", Reason: "short"}, 400},
		{"query without a reason", CommandRequest{RequestType: "SecurityInfo"}, 409},
		{"lock with a 201-character message", CommandRequest{RequestType: "DeviceLock", Reason: reason, Message: long}, 400},
		{"lock with a 201-character phone number", CommandRequest{RequestType: "DeviceLock", Reason: reason, PhoneNumber: long}, 400},
		{"lock with a five-digit PIN", CommandRequest{RequestType: "DeviceLock", Reason: reason, PIN: "12345"}, 400},
		{"lock with a message and a PIN", CommandRequest{RequestType: "DeviceLock", Reason: reason, Message: "Call IT", PIN: "123456"}, 409},
		{"lost mode with a 201-character message", CommandRequest{RequestType: "EnableLostMode", Reason: reason, Message: long}, 400},
		{"lost mode with a blank message", CommandRequest{RequestType: "EnableLostMode", Reason: reason, Message: " \t "}, 400},
		{"lost mode with a message", CommandRequest{RequestType: "EnableLostMode", Reason: reason, Message: "Please return to reception"}, 409},
		{"restart with a message", CommandRequest{RequestType: "RestartDevice", Reason: reason, Message: "Restarting"}, 400},
		{"update to a version that is none", CommandRequest{RequestType: "ScheduleOSUpdate", Reason: reason, ProductVersion: "latest; rm -rf", InstallAction: "InstallASAP"}, 400},
		{"update to a version", CommandRequest{RequestType: "ScheduleOSUpdate", Reason: reason, ProductVersion: "17.5.1", InstallAction: "InstallASAP"}, 409},
	} {
		if r := e.do(e.owner, "POST", commands, c.body); r.status != c.want {
			t.Errorf("%s: %d %s, want %d", c.what, r.status, r.body, c.want)
		}
	}
	if r := e.do(e.owner, "POST", base+"/commands", BulkCommandRequest{CommandRequest: CommandRequest{RequestType: "SecurityInfo",
		Reason: unbounded}, AllEnrolled: true}); r.status != 400 {
		t.Errorf("a bulk query with an unbounded reason: %d %s", r.status, r.body)
	}
}

// TestPushCertificateViewShowsARefusal: APNs' standing refusal of the
// certificate shows in its view, with its health, last error and since when.
func TestPushCertificateViewShowsARefusal(t *testing.T) {
	since := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	st := apns.CertStatus{Topic: "com.apple.mgmt.External.x", NotAfter: since.AddDate(1, 0, 0), DaysLeft: 300,
		Refused: &apns.Refusal{Status: 403, Reason: "BadCertificate", ID: "apns-1", Since: since, At: since.Add(time.Hour)}}
	v := pushCertificateView(st)
	if !v.Refused || v.Health != "refused" || v.FailingSince == nil || !v.FailingSince.Equal(since) || v.LastError == nil ||
		*v.LastError != (PushCertificateError{Status: 403, Reason: "BadCertificate", APNsID: "apns-1", At: since.Add(time.Hour)}) {
		t.Fatalf("a refused certificate's view: %+v", v)
	}
	// Refused in the TLS handshake, APNs sent no status: none is shown.
	st.Refused = &apns.Refusal{Reason: "TLSCertificateRefused", Since: since, At: since}
	if body, _ := json.Marshal(pushCertificateView(st)); bytes.Contains(body, []byte(`"status"`)) {
		t.Errorf("a refusal in the TLS handshake shows an HTTP status: %s", body)
	}
	st.Refused = nil
	if v := pushCertificateView(st); v.Refused || v.Health != "ok" || v.LastError != nil || v.FailingSince != nil {
		t.Fatalf("a certificate APNs accepts: %+v", v)
	}
}

// The push certificate's expiry is judged on the server's clock.
func TestPushCertificateStatusOnTheServerClock(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	base := "/api/v1/tenants/" + e.rootID
	now := e.clock.now()
	pem, err := sim.PushCertificatePEMValid("com.apple.mgmt.External."+uuid.NewString(), now.Add(-time.Hour), now.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var set, got PushCertificateView
	e.must(200, e.owner, "PUT", base+"/apple/push-certificate", PushCertificateRequest{Certificate: base64.StdEncoding.EncodeToString(pem)}, &set)
	if set.Expired || !set.Warning {
		t.Fatalf("push certificate as uploaded: %+v, want it valid with a warning", set)
	}
	e.clock.advance(time.Hour)
	e.must(200, e.owner, "GET", base+"/apple/push-certificate", nil, &got)
	if !got.Expired {
		t.Fatalf("push certificate half an hour past its end: %+v, want it expired", got)
	}
}

// TestBulkCommandSkipsIneligibleDevices: POST /commands queues the command
// for the devices that can take it and lists the others, each with a
// reason; a request none can take answers as the one-device route does, and
// a device of no tenant or of another one is not found, alike.
func TestBulkCommandSkipsIneligibleDevices(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := context.Background()
		base := "/api/v1/tenants/" + e.rootID
		e.must(201, e.owner, "POST", base+"/privacy/notices", NoticeRequest{Ownership: "corporate",
			Translations: []privacy.Translation{{Language: "en", Title: "Company devices", Body: "We manage company devices."}}}, nil)
		var enrolled, pending, pending2 DeviceView
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{Ownership: "corporate", Platform: "ios"}, &enrolled)
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{Ownership: "corporate", Platform: "ios"}, &pending)
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{Ownership: "corporate", Platform: "macos"}, &pending2)
		if err := st.Tx(ctx, func(q store.Queries) error {
			d, err := q.Devices().Get(ctx, e.rootID, enrolled.ID)
			if err != nil {
				return err
			}
			d.State, d.EnrolledAt = store.DeviceEnrolled, time.Now().UTC()
			return q.Devices().Update(ctx, d)
		}); err != nil {
			t.Fatal(err)
		}
		bulk := func(ids ...string) response {
			return e.do(e.owner, "POST", base+"/commands", BulkCommandRequest{CommandRequest: CommandRequest{RequestType: "SecurityInfo"}, DeviceIDs: ids})
		}

		r := bulk(pending.ID, enrolled.ID)
		var v BulkCommandView
		r.decode(t, &v)
		if r.status != 201 || v.Queued != 1 || len(v.Skipped) != 0 || len(v.Ineligible) != 1 {
			t.Fatalf("a bulk query naming a device still enrolling: %d %s", r.status, r.body)
		}
		if got := v.Ineligible[0]; got.DeviceID != pending.ID || got.Reason != "not_enrolled" || !strings.Contains(got.Message, "not enrolled") {
			t.Errorf("the device left out: %+v", got)
		}
		if !strings.Contains(string(r.body), `"reason":"not_enrolled"`) {
			t.Errorf("the reason's wire form: %s", r.body)
		}
		if got := openAPIEnum(t, e.srv, "SkippedDeviceView", "reason"); !slices.Equal(got, mdm.IneligibleReasons()) {
			t.Errorf("the OpenAPI document lists the reasons %v, want %v", got, mdm.IneligibleReasons())
		}

		// None can take it: what the one-device route answers.
		one := e.do(e.owner, "POST", base+"/devices/"+pending.ID+"/commands", CommandRequest{RequestType: "SecurityInfo"})
		if one.status != 409 {
			t.Fatalf("a query to a device still enrolling: %d %s", one.status, one.body)
		}
		for _, ids := range [][]string{{pending.ID}, {pending.ID, pending2.ID}} {
			if r := bulk(ids...); r.status != one.status || r.errorCode() != one.errorCode() {
				t.Errorf("a bulk query none of %d devices can take: %d %s; want %d as for one", len(ids), r.status, r.body, one.status)
			}
		}

		// Another tenant's device reads as one that does not exist.
		c := e.customer("Elsewhere")
		e.must(201, e.owner, "POST", "/api/v1/tenants/"+c.ID+"/privacy/notices", NoticeRequest{Ownership: "corporate",
			Translations: []privacy.Translation{{Language: "en", Title: "Company devices", Body: "We manage company devices."}}}, nil)
		var foreign DeviceView
		e.must(201, e.owner, "POST", "/api/v1/tenants/"+c.ID+"/devices", DeviceRequest{Ownership: "corporate", Platform: "ios"}, &foreign)
		missing := bulk(enrolled.ID, store.NewID())
		if missing.status != 404 {
			t.Fatalf("a bulk query naming a device that does not exist: %d %s", missing.status, missing.body)
		}
		for _, ids := range [][]string{{foreign.ID}, {enrolled.ID, foreign.ID}, {pending.ID, foreign.ID}} {
			if r := bulk(ids...); r.status != 404 || r.errorCode() != missing.errorCode() || string(r.body) != string(missing.body) {
				t.Errorf("a bulk query naming another tenant's device: %d %s; want %s", r.status, r.body, missing.body)
			}
		}
	})
}

// TestCommandsDevicesRefuseAreRefusedUpFront: a command the device's system
// or supervision makes it refuse (Apple's schema) is not queued, whether
// sent as a command or by a remote action: one device answers 409 (or 403
// when only supervision is missing) saying what the device is and why; in
// a bulk action the device is refused and the others go ahead.
func TestCommandsDevicesRefuseAreRefusedUpFront(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := context.Background()
		base := "/api/v1/tenants/" + e.rootID
		e.must(201, e.owner, "POST", base+"/privacy/notices", NoticeRequest{Ownership: "corporate",
			Translations: []privacy.Translation{{Language: "en", Title: "Company devices", Body: "We manage company devices."}}}, nil)
		var phone, mac DeviceView
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{Ownership: "corporate", Platform: "ios"}, &phone)
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{Ownership: "corporate", Platform: "macos"}, &mac)
		for id, version := range map[string]string{phone.ID: "17.4", mac.ID: "14.4"} {
			if err := st.Tx(ctx, func(q store.Queries) error {
				d, err := q.Devices().Get(ctx, e.rootID, id)
				if err != nil {
					return err
				}
				d.State, d.EnrolledAt = store.DeviceEnrolled, time.Now().UTC()
				return q.Devices().Update(ctx, d)
			}); err != nil {
				t.Fatal(err)
			}
			// As its Authenticate would have: only what its system and
			// supervision refuse is refused, not what an unknown version might.
			if _, err := e.priv.Ingest(ctx, privacy.Report{TenantID: e.rootID, DeviceID: id, At: time.Now().UTC(),
				Values: []privacy.Observation{{Field: "os.version", Value: version}}}); err != nil {
				t.Fatal(err)
			}
		}
		reason := "reported lost by its user"
		lostMode := CommandRequest{RequestType: "EnableLostMode", Reason: reason, Message: "Please call IT"}

		one := e.do(e.owner, "POST", base+"/devices/"+mac.ID+"/commands", lostMode)
		var eb ErrorBody
		one.decode(t, &eb)
		if one.status != 409 || !strings.Contains(eb.Error.Message, "not supported on macOS") || !strings.Contains(eb.Error.Message, "a Mac") {
			t.Errorf("lost mode on a Mac: %d %s", one.status, one.body)
		}
		if r := e.do(e.owner, "POST", base+"/devices/"+phone.ID+"/commands", CommandRequest{RequestType: "RestartDevice", Reason: reason}); r.status != 403 ||
			!strings.Contains(string(r.body), "supervised") {
			t.Errorf("a restart of an iPhone not known to be supervised: %d %s", r.status, r.body)
		}

		// Remote actions: refused the same way, one device or many.
		if r := e.do(e.owner, "POST", base+"/devices/"+mac.ID+"/actions", DeviceActionRequest{Action: actions.LostMode, Reason: reason,
			Options: actions.Options{Message: "Please call IT"}}); r.status != 409 || !strings.Contains(string(r.body), "a Mac") {
			t.Errorf("the lost_mode action on a Mac: %d %s", r.status, r.body)
		}
		var b actions.Batch
		e.must(201, e.owner, "POST", base+"/actions", actions.Request{Action: actions.Restart, Reason: reason, DeviceIDs: []string{phone.ID, mac.ID}}, &b)
		if b.States[store.ActionRefused] != 1 || b.States[store.ActionQueued] != 1 {
			t.Errorf("a restart action on an unsupervised iPhone and a Mac: %+v", b)
		}
	})
}
