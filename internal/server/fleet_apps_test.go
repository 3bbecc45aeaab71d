package server

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestAppCatalogue: a blocklisted app makes devices that have it
// noncompliant under every policy; a required app is queued for the
// group's members; blocked apps cannot be assigned.
func TestAppCatalogue(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var g api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Field", Kind: "static"}, &g)
		ladder := compliance.Ladder{{Action: compliance.StepMarkNoncompliant}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Baseline",
			Rules: compliance.Rules{EncryptionRequired: true}, Ladder: &ladder}, nil)
		phone, id := f.enrol("corporate", "", g.ID, nil)
		if d := f.device(f.owner, id); d.Compliance != store.ComplianceCompliant {
			t.Fatalf("before the blocklist: %q", d.Compliance)
		}
		var blocked, crm api.AppView
		f.must(201, f.owner, "POST", f.path("/apps"), device.AppInput{Identifier: "com.example.app004", Name: "Game", Kind: "blocked"}, &blocked)
		if d := f.device(f.owner, id); d.Compliance != store.ComplianceNoncompliant {
			t.Errorf("a device with a blocklisted app: %q", d.Compliance)
		}
		var dc api.DeviceComplianceView
		f.must(200, f.owner, "GET", f.path("/devices/"+id+"/compliance"), nil, &dc)
		if len(dc.Standings) != 1 || len(dc.Standings[0].Violations) != 1 || dc.Standings[0].Violations[0].Rule != "forbidden_app" ||
			strings.Contains(dc.Standings[0].Violations[0].Reason, "com.example.app004") {
			t.Errorf("violation (never naming the app): %+v", dc.Standings)
		}
		if r := f.do(f.owner, "PUT", f.path("/apps/"+blocked.ID+"/groups/"+g.ID), api.AppAssignmentRequest{Mode: "required"}); r.status != 409 {
			t.Errorf("assigning a blocked app: %d", r.status)
		}
		if r := f.do(f.owner, "POST", f.path("/apps"), device.AppInput{Identifier: "bad id!", Name: "x", Kind: "approved"}); r.status != 400 {
			t.Errorf("a bad bundle ID: %d", r.status)
		}
		f.must(201, f.owner, "POST", f.path("/apps"), device.AppInput{Identifier: "com.example.crm", Name: "CRM", Kind: "approved", StoreID: 123456}, &crm)
		f.must(204, f.owner, "PUT", f.path("/apps/"+crm.ID+"/groups/"+g.ID), api.AppAssignmentRequest{Mode: "required"}, nil)
		var cmds api.List[api.CommandView]
		f.must(200, f.owner, "GET", f.path("/devices/"+id+"/commands?limit=100"), nil, &cmds)
		queued := 0
		for _, c := range cmds.Items {
			if c.RequestType == "InstallApplication" && c.State == store.CommandQueued {
				queued++
			}
		}
		if queued != 1 {
			t.Errorf("InstallApplication queued %d times, want 1", queued)
		}
		if n := f.poll(phone); n != 1 {
			t.Errorf("the device received %d commands, want the install", n)
		}
	})
}

// TestPolicyForAGroup: a policy targeted at a group covers its members
// only, and follows the group as members come and go.
func TestPolicyForAGroup(t *testing.T) {
	f := newFleet(t, storetest.OpenSQLite(t))
	var g api.GroupView
	f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Executives", Kind: "static"}, &g)
	noPasscode := func(d *sim.Device) { d.NoPasscode = true }
	_, inside := f.enrol("corporate", "", g.ID, noPasscode)
	_, outside := f.enrol("corporate", "", "", noPasscode)
	ladder := compliance.Ladder{{Action: compliance.StepMarkNoncompliant}}
	if r := f.do(f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Executives", GroupID: "00000000-0000-0000-0000-000000000000",
		Rules: compliance.Rules{PasscodeRequired: true}, Ladder: &ladder}); r.status != 404 {
		t.Errorf("a policy for an unknown group: %d", r.status)
	}
	f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Executives", GroupID: g.ID,
		Rules: compliance.Rules{PasscodeRequired: true}, Ladder: &ladder}, nil)
	if d := f.device(f.owner, inside); d.Compliance != store.ComplianceNoncompliant {
		t.Errorf("member: %q", d.Compliance)
	}
	if d := f.device(f.owner, outside); d.Compliance != store.ComplianceCompliant {
		t.Errorf("non-member, covered by no policy: %q", d.Compliance)
	}
	f.must(200, f.owner, "POST", f.path("/groups/"+g.ID+"/members"), api.MembersRequest{Add: []string{outside}}, nil)
	if d := f.device(f.owner, outside); d.Compliance != store.ComplianceNoncompliant {
		t.Errorf("new member, evaluated when it joined: %q", d.Compliance)
	}
}
