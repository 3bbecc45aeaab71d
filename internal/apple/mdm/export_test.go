package mdm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/exporttest"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestExportSaysWhatTheProtocolHolds: a person's data export lists what
// the MDM protocol holds about their devices besides the inventory: the
// channel, the tokens escrowed (none on a personal device), and the user
// accounts that had a channel. Steward knows those by keyed index only and
// cannot tell whose each is: on a personal Mac they are listed, on the
// organisation's Mac, whose other users are colleagues, only counted. The
// commands sent to the devices are listed too, those to a colleague's
// account excepted, and none with its payload.
func TestExportSaysWhatTheProtocolHolds(t *testing.T) {
	storetest.ForEachEngine(t, testExportSaysWhatTheProtocolHolds)
}

func testExportSaysWhatTheProtocolHolds(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Personal)
	f.publish(privacy.Corporate)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	own, ownDev := f.enrolledWith(ts, privacy.Personal, erika, mac)
	work, workDev := f.enrolledWith(ts, privacy.Corporate, erika, mac)
	// A Mac escrows its Bootstrap Token; the organisation keeps only its own
	// Mac's. (A Mac has no unlock token: iPhones and iPads send one.)
	for _, d := range []*sim.Device{own, work} {
		if _, err := d.Checkin(f.ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": d.UDID,
			"BootstrapToken": []byte("bootstrap-secret")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []*sim.User{own.NewUser("erika", "Erika Mustermann"),
		work.NewUser("erika", "Erika Mustermann"), work.NewUser("jonas", "Jonas Schmidt")} {
		if err := u.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A command for an account on each Mac: Erika's own, and Jonas's on the
	// organisation's.
	userCommands := map[string]string{}
	for ownership, at := range map[string]struct{ device, account string }{
		string(privacy.Personal): {ownDev.ID, "erika"}, string(privacy.Corporate): {workDev.ID, "jonas"}} {
		var ucs []store.AppleUserChannel
		var err error
		if ownership == string(privacy.Personal) {
			// Her own Mac's only channel: Steward keeps no account names there.
			ucs, err = f.svc.UserChannels(f.ctx, f.tenant, at.device)
		} else {
			ucs, err = f.svc.LookupUserChannel(f.ctx, f.tenant, at.device, at.account, lookupReason, admin)
		}
		if err != nil || len(ucs) != 1 {
			t.Fatalf("%s's channel: %+v, %v", at.account, ucs, err)
		}
		cmd, err := f.svc.EnqueueForUser(f.ctx, f.tenant, at.device, ucs[0].ID, mdmproto.ProfileList{}, "", admin)
		if err != nil {
			t.Fatal(err)
		}
		userCommands[ownership] = cmd.ID
	}
	// A link made for Erika that no device used yet, and one for a colleague.
	f.invite(privacy.Personal, erika)
	f.invite(privacy.Corporate, f.subject("jonas@acme.test"))
	arc, err := f.priv.ExportSubject(f.ctx, f.tenant, erika, "subject access request of 2026-12-01", admin)
	if err != nil {
		t.Fatal(err)
	}
	exp, dir, _ := exporttest.Open(t, arc)
	checkEnrolmentsExported(t, exp, map[string]string{ownDev.ID: "personal device, used", workDev.ID: "corporate device, used", "": "personal device, open"})
	if len(exp.Devices) != 2 {
		t.Fatalf("%d devices exported; want 2", len(exp.Devices))
	}
	for _, d := range exp.Devices {
		// By name: serve's Service registers its hook next to the fixture's.
		got := map[string]string{}
		for _, r := range d.Management {
			got[r.Name] = r.Value
			if strings.Contains(r.Value, "Mustermann") || strings.Contains(r.Value, "Schmidt") {
				t.Errorf("%s device: a record names a user: %+v", d.Ownership, r)
			}
		}
		listed := 0
		for name, value := range got {
			if strings.HasPrefix(name, "Channel of a user account") {
				listed++
				if !strings.HasPrefix(value, "open;") {
					t.Errorf("%s device: user channel exported as %q", d.Ownership, value)
				}
			}
		}
		want := map[string]string{"Apple MDM channel": "open", "Push registration held": "yes",
			"Unlock token held (lets the organisation clear the device's passcode)":                 "no",
			"Bootstrap token held (lets the organisation authorise macOS updates and new accounts)": "no"}
		wantListed := 1
		if d.Ownership == string(privacy.Corporate) {
			want["Bootstrap token held (lets the organisation authorise macOS updates and new accounts)"] = "yes"
			want["User account channels on the device (its users' accounts, yours perhaps among them)"] = "2"
			wantListed = 0
		}
		for name, value := range want {
			if got[name] != value {
				t.Errorf("%s device: %s: %q; want %q (all: %v)", d.Ownership, name, got[name], value, got)
			}
		}
		if listed != wantListed {
			t.Errorf("%s device: %d user channels listed; want %d", d.Ownership, listed, wantListed)
		}
		inventory := 0
		for name, value := range got {
			if strings.HasPrefix(name, "Command DeviceInformation (") && strings.HasPrefix(value, "queued; queued 20") {
				inventory++
			}
		}
		if inventory != 1 {
			t.Errorf("%s device: the initial inventory's DeviceInformation is not exported as queued (all: %v)", d.Ownership, got)
		}
		_, userCommandListed := got["Command ProfileList ("+userCommands[d.Ownership]+")"]
		if want := d.Ownership == string(privacy.Personal); userCommandListed != want {
			t.Errorf("%s device: the command to an account on it exported %v; want %v", d.Ownership, userCommandListed, want)
		}
	}
	// The enrolment that set up her own Mac says what its profile lets the
	// organisation do; a command says who asked for it.
	rightsSaid, requesterSaid := false, false
	for _, r := range exp.Management {
		rightsSaid = rightsSaid || strings.Contains(r.Value, "what its profile lets the organisation do: list profiles")
	}
	for _, d := range exp.Devices {
		for _, r := range d.Management {
			requesterSaid = requesterSaid || (strings.HasPrefix(r.Name, "Command ProfileList") && strings.Contains(r.Value, " by admin:"))
		}
	}
	if !rightsSaid || !requesterSaid {
		t.Errorf("the export says the enrolment's rights %v, a command's requester %v; want both", rightsSaid, requesterSaid)
	}
	// The audit entries about user channels: on her own Mac, all; on the
	// organisation's, none, where they would tell her a colleague's logins.
	userEntries := map[string]int{}
	for _, e := range exp.AuditEntries {
		if strings.HasPrefix(e.Action, "mdm.user_channel.") || strings.Contains(string(e.Details), `"user_channel"`) {
			userEntries[strings.TrimPrefix(e.Target, "device:")]++
		}
	}
	if userEntries[ownDev.ID] < 2 || userEntries[workDev.ID] != 0 {
		t.Errorf("user channel audit entries exported: %d of her own Mac's (want its opening and its command), %d of the organisation's (want none)",
			userEntries[ownDev.ID], userEntries[workDev.ID])
	}
	page, err := os.ReadFile(filepath.Join(dir, "summary.html"))
	if err != nil || !strings.Contains(string(page), "Held for managing the device") || !strings.Contains(string(page), "Held for managing your devices") {
		t.Errorf("summary.html does not show what the protocol holds (%v)", err)
	}
}

// checkEnrolmentsExported checks the export lists exactly the person's
// enrolment links, by the device that used each ("" for the unused one) and
// how its record begins, with the audit entries of their creation.
func checkEnrolmentsExported(t *testing.T, exp privacy.SubjectExport, want map[string]string) {
	t.Helper()
	created := map[string]bool{}
	for _, e := range exp.AuditEntries {
		if e.Action == "enrolment.create" {
			created[strings.TrimPrefix(e.Target, "enrolment:")] = true
		}
	}
	// By name: serve's Service registers its hook next to the fixture's.
	got := map[string]string{}
	for _, r := range exp.Management {
		got[r.Name] = r.Value
	}
	if len(got) != len(want) {
		t.Fatalf("%d enrolments exported, want %d: %+v", len(got), len(want), got)
	}
	for name, value := range got {
		id, ok := strings.CutPrefix(name, "Enrolment ")
		if !ok || !created[id] {
			t.Errorf("record %q: not an enrolment, or its creation's audit entry is not exported", name)
		}
		device := ""
		if _, after, found := strings.Cut(value, "; device "); found {
			device = after
		}
		if !strings.HasPrefix(value, want[device]+";") || !strings.Contains(value, "full wipe allowed: ") {
			t.Errorf("enrolment of device %q exported as %q, want it to begin %q", device, value, want[device])
		}
	}
}

// TestExportFindsTheAccountsChannels: the person's channels on devices not
// theirs (a Shared iPad, a colleague's Mac) are found by their account
// name, as erasure finds them, and listed in their export; a classmate's
// are not.
func TestExportFindsTheAccountsChannels(t *testing.T) {
	f, s := newSchool(t, storetest.OpenSQLite(t))
	anna, sharedIPad, bobsMac := s.anna, s.sharedIPad, s.bobsMac
	for _, u := range []*sim.User{sharedIPadUser(s.ipad, "Anna@School.example"), sharedIPadUser(s.ipad, "ben@school.example"),
		s.mac.NewUser("anna@school.example", "Anna")} {
		if err := u.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	arc, err := f.priv.ExportSubject(f.ctx, f.tenant, anna, "subject access request", admin)
	if err != nil {
		t.Fatal(err)
	}
	exp, _, _ := exporttest.Open(t, arc)
	found := map[string]string{}
	for _, r := range exp.Management {
		if strings.HasPrefix(r.Name, "Your account's channel on device ") {
			found[strings.Fields(strings.TrimPrefix(r.Name, "Your account's channel on device "))[0]] = r.Value
		}
	}
	if len(found) != 2 || !strings.Contains(found[sharedIPad.ID], "Shared iPad") || !strings.Contains(found[bobsMac.ID], "found by your account name") {
		t.Errorf("anna's channels in her export: %v; want the Shared iPad's and the one on bob's Mac", found)
	}
}
