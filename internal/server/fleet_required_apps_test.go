package server

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// commandsOf lists a device's commands, oldest first.
func (f *testFleet) commandsOf(id string) []api.CommandView {
	f.t.Helper()
	var cmds api.List[api.CommandView]
	f.must(200, f.owner, "GET", f.path("/devices/"+id+"/commands?limit=500"), nil, &cmds)
	return cmds.Items
}

// TestRequiredAppsAtEnrolment: a corporate Mac enrolling into a group
// with two required apps, and joining another group before it first
// checks in, gets each app once, however many reconciliations its
// enrolment, its first reports and the change run; once it acknowledged
// them, a later change queues nothing more until an app list shows an
// app missing.
func TestRequiredAppsAtEnrolment(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var g, lobby, hall api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Sales", Kind: "static"}, &g)
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Lobby", Kind: "static"}, &lobby)
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Hall", Kind: "static"}, &hall)
		for _, in := range []device.AppInput{
			{Identifier: "com.example.crm", Name: "CRM", Kind: "approved", StoreID: 123456},
			{Identifier: "com.example.notes", Name: "Notes", Kind: "approved", StoreID: 654321},
		} {
			var a api.AppView
			f.must(201, f.owner, "POST", f.path("/apps"), in, &a)
			f.must(204, f.owner, "PUT", f.path("/apps/"+a.ID+"/groups/"+g.ID), api.AppAssignmentRequest{Mode: "required"}, nil)
		}
		laptop, id := f.enrolUnpolled("corporate", "", g.ID, mac)
		f.must(200, f.owner, "POST", f.path("/groups/"+lobby.ID+"/members"), api.MembersRequest{Add: []string{id}}, nil)
		f.poll(laptop)
		f.must(200, f.owner, "POST", f.path("/groups/"+hall.ID+"/members"), api.MembersRequest{Add: []string{id}}, nil)

		installs := 0
		for _, c := range f.commandsOf(id) {
			if c.RequestType == "InstallApplication" {
				installs++
				if c.State != store.CommandAcknowledged {
					t.Errorf("install %s ended %s", c.ID, c.State)
				}
			}
		}
		if installs != 2 {
			t.Errorf("%d InstallApplication, want one per required app", installs)
		}
	})
}

// TestOSUpdateRefusedWhereAppleRemovedIt: an OS update for a supervised
// device on a system that no longer has ScheduleOSUpdate is refused up
// front, saying so: 409 for the device alone, a refused action
// (unsupported) in a group request, while a device on 26 gets it.
func TestOSUpdateRefusedWhereAppleRemovedIt(t *testing.T) {
	f := newFleet(t, storetest.OpenSQLite(t))
	var g api.GroupView
	f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Kiosks", Kind: "static"}, &g)
	on := func(version string) func(*sim.Device) {
		return func(d *sim.Device) { d.Supervised, d.OSVersion = true, version }
	}
	_, newer := f.enrol("corporate", "", g.ID, on("27.0"))
	_, current := f.enrol("corporate", "", g.ID, on("26.2"))
	update := api.DeviceActionRequest{Action: actions.OSUpdate, Reason: "critical security update"}
	if r := f.do(f.owner, "POST", f.path("/devices/"+newer+"/actions"), update); r.status != 409 || !strings.Contains(string(r.body), "removed") {
		t.Errorf("an OS update for a device on iOS 27: %d %s", r.status, r.body)
	}
	var b actions.Batch
	f.must(201, f.owner, "POST", f.path("/actions"), actions.Request{Action: actions.OSUpdate, Reason: "critical security update", GroupID: g.ID}, &b)
	var status api.BatchView
	f.must(200, f.owner, "GET", f.path("/actions/"+b.ID), nil, &status)
	for _, a := range status.Actions.Items {
		switch a.DeviceID {
		case newer:
			if a.State != store.ActionRefused || a.RefusalCode != mdm.SkipUnsupported || !strings.Contains(a.Error, "removed") {
				t.Errorf("the device on 27: %+v", a)
			}
		case current:
			if a.State != store.ActionQueued {
				t.Errorf("the device on 26: %+v", a)
			}
		}
	}
}
