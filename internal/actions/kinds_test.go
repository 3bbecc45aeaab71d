package actions

import (
	"os"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

func TestOptionsFitTheAction(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		o    Options
		want string // "" for valid
	}{
		{Lock, Options{Message: "Call IT", PhoneNumber: "+49 30 1234", PIN: "123456"}, ""},
		{Lock, Options{PIN: "12345"}, "exactly six digits"},
		{Lock, Options{PIN: "12a456"}, "exactly six digits"},
		{Restart, Options{PIN: "123456"}, "only used by lock and wipe"},
		{LostMode, Options{}, "needs a message or a phone number"},
		{LostMode, Options{PhoneNumber: "+49 30 1234"}, ""},
		{Wipe, Options{Message: "bye"}, "only shown by lock and lost mode"},
		{Lock, Options{Message: strings.Repeat("x", 201)}, "limited to 200 characters"},
		{OSUpdate, Options{ProductVersion: "18.1.1"}, ""},
		{OSUpdate, Options{ProductVersion: "latest"}, "an OS version"},
		{Restart, Options{ProductVersion: "18.1"}, "only used by an OS update"},
	} {
		err := c.o.Validate(c.kind)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s %+v: %v, want %q", c.kind, c.o, err, c.want)
		}
	}
}

func TestEveryActionHasAPermissionAndCommands(t *testing.T) {
	for _, name := range Kinds() {
		k := Kind(name)
		if _, ok := Permission(k); !ok {
			t.Errorf("%s has no permission", k)
		}
		reqs := requests(k, Options{}, "org.steward.enrolment.x", "ios")
		if k == Delete {
			if len(reqs) != 0 {
				t.Errorf("delete sends commands: %v", reqs)
			}
			continue
		}
		if len(reqs) == 0 {
			t.Errorf("%s sends no command", k)
		}
	}
	// Apple requires every update entry to name its update; without a
	// version the command leaves the entries out (the device's default).
	for _, o := range []Options{{}, {ProductVersion: "18.1.1"}} {
		for _, r := range requests(OSUpdate, o, "", "ios") {
			if _, err := mdmproto.Build("3D3E4F5A-0000-4000-8000-000000000001", r); err != nil {
				t.Errorf("os_update %+v sends a command Apple would refuse: %v", o, err)
			}
		}
	}
	if r := requests(OSUpdate, Options{ProductVersion: "18.1.1"}, "", "ios"); r[0].(mdmproto.ScheduleOSUpdate).Updates[0].ProductVersion != "18.1.1" {
		t.Errorf("an OS update to 18.1.1 sends %+v", r)
	}
	if r := requests(Retire, Options{}, "org.steward.enrolment.x", "ios"); r[0].(mdmproto.RemoveProfile).Identifier != "org.steward.enrolment.x" {
		t.Errorf("retire removes %+v", r)
	}
	for _, k := range []Kind{Wipe, Retire, Delete} {
		if !kinds[k].twoPerson {
			t.Errorf("%s does not need a second admin", k)
		}
	}
}

// TestOSUpdateInstallsSoonestOnEachPlatform: InstallASAP on an iPhone or
// iPad installs only an update already downloaded, so they are sent
// Default; a Mac downloads and installs on InstallASAP
// (system.update.schedule.yaml).
func TestOSUpdateInstallsSoonestOnEachPlatform(t *testing.T) {
	for platform, want := range map[string]string{"ios": "Default", "ipados": "Default", "macos": "InstallASAP"} {
		r := requests(OSUpdate, Options{ProductVersion: "18.1.1"}, "", platform)
		if got := r[0].(mdmproto.ScheduleOSUpdate).Updates[0].InstallAction; got != want {
			t.Errorf("an OS update of a %s device sends install action %s, want %s", platform, got, want)
		}
	}
}

// TestEveryActionIsDocumented: the table names each action once, and the
// guide lists every one of them (the API's summaries are built from it).
func TestEveryActionIsDocumented(t *testing.T) {
	if len(kinds) != len(table) {
		t.Fatalf("the table names %d actions, %d of them distinct", len(table), len(kinds))
	}
	guide, err := os.ReadFile("../../docs/device-management.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds() {
		if !strings.Contains(string(guide), "`"+k+"`") {
			t.Errorf("docs/device-management.md does not list the action %s", k)
		}
	}
}

// A Mac's erase says what to do when Erase All Content and Settings cannot
// run (macObliteration); an iPhone's carries no such key.
func TestWipeTellsAMacToObliterateWithWarning(t *testing.T) {
	for platform, want := range map[string]string{"macos": "ObliterateWithWarning", "ios": "", "ipados": ""} {
		reqs := requests(Wipe, Options{}, "", platform)
		if e, ok := reqs[0].(mdmproto.EraseDevice); !ok || e.ObliterationBehavior != want {
			t.Errorf("the wipe of a %s device: %+v, want ObliterationBehavior %q", platform, reqs[0], want)
		}
	}
}
