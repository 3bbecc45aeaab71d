package mdm_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestManagedAppStatusesTellNothingOfTheEmployeesApps: on a personally
// owned device apps.managed keeps no status saying the employee has their
// own copy of an app (UserInstalledApp, ManagementRejected,
// PromptingForManagement): those, and UserRejected, which leaves no copy,
// are all kept as NotManaged, without IsValidated. A corporate device
// keeps the device's statuses.
func TestManagedAppStatusesTellNothingOfTheEmployeesApps(t *testing.T) {
	answer := map[string]any{"ManagedApplicationList": map[string]any{
		"com.acme.expenses": map[string]any{"Status": "Managed", "IsValidated": true},
		"com.acme.chat":     map[string]any{"Status": "Prompting", "IsValidated": false},
		"com.example.a":     map[string]any{"Status": "UserInstalledApp", "IsValidated": true},
		"com.example.b":     map[string]any{"Status": "ManagementRejected", "IsValidated": true},
		"com.example.c":     map[string]any{"Status": "PromptingForManagement", "IsValidated": true},
		"com.example.d":     map[string]any{"Status": "UserRejected", "IsValidated": false},
	}}
	for _, o := range []privacy.Ownership{privacy.Personal, privacy.UserEnrolled, privacy.Corporate} {
		t.Run(string(o), func(t *testing.T) {
			f := newFixture(t, storetest.OpenSQLite(t))
			f.publish(o)
			ts := f.serve()
			subject := f.ownerOf(o)
			d, dev := f.polled(ts, o, subject)
			if state := f.answer(t, d, dev.ID, mdmproto.ManagedApplicationList{}, answer); state != store.CommandAcknowledged {
				t.Fatalf("the managed app list ended %s", state)
			}
			var apps []privacy.ManagedApp
			if err := json.Unmarshal(f.fields(dev.ID)["apps.managed"].Value, &apps); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, a := range apps {
				got[a.ID] = a.Status
				if a.Status == "NotManaged" && a.Validated != nil {
					t.Errorf("%s kept as NotManaged with IsValidated %v", a.ID, *a.Validated)
				}
			}
			want := map[string]string{"com.acme.expenses": "Managed", "com.acme.chat": "Prompting", "com.example.a": "UserInstalledApp",
				"com.example.b": "ManagementRejected", "com.example.c": "PromptingForManagement", "com.example.d": "UserRejected"}
			if o.PersonallyOwned() {
				for _, id := range []string{"com.example.a", "com.example.b", "com.example.c", "com.example.d"} {
					want[id] = "NotManaged"
				}
			}
			for id, status := range want {
				if got[id] != status {
					t.Errorf("%s stored as %q, want %q", id, got[id], status)
				}
			}
		})
	}
}

// TestEmployeesCopyStaysOutOfTheAppList: a personally owned device that
// lists every app, whatever ManagedAppsOnly asked, still has the
// employee's own copy of a catalogue app left out of apps.installed once
// its managed-app list said so, though that list now keeps NotManaged
// rather than the device's status.
func TestEmployeesCopyStaysOutOfTheAppList(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Personal)
		f.addToCatalogue(store.CatalogueApp{Identifier: "com.example.app001", Kind: store.AppApproved, StoreID: 1001},
			store.CatalogueApp{Identifier: "com.example.app005", Kind: store.AppApproved, StoreID: 1005})
		ts := f.serve()
		d, dev := f.enrolled(ts, privacy.Personal, f.subject("erika@acme.test"))
		d.Apps, d.IgnoresManagedAppsOnly = 8, true
		d.AppStatuses = map[string]string{"com.example.app005": "PromptingForManagement", "com.example.app006": "UserInstalledApp"}
		if _, err := d.Poll(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.checkApps(dev.ID, "before a managed-app list", []string{"com.example.app001", "com.example.app005"}, true)
		for _, req := range []mdmproto.Request{mdmproto.ManagedApplicationList{}, mdmproto.InstalledApplicationList{}} {
			if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, req, "", admin); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.Poll(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.checkApps(dev.ID, "after it", []string{"com.example.app000", "com.example.app001", "com.example.app004"}, true)
		if raw := string(f.fields(dev.ID)["apps.managed"].Value); strings.Contains(raw, "PromptingForManagement") || strings.Contains(raw, "UserInstalledApp") {
			t.Errorf("apps.managed keeps the device's status: %s", raw)
		}
	})
}

// TestInstallRejectionKeepsNoOwnCopyReason: on a personally owned device an
// install the device refused because the employee has the app already
// (AppAlreadyInstalled, ManagementChangeNotSupported) keeps neither that
// reason nor the device's error codes, only that its reason is not kept;
// so does one refused for Other, so that these words do not name the
// first two. Other reasons, and every reason on a corporate device, stay.
func TestInstallRejectionKeepsNoOwnCopyReason(t *testing.T) {
	for _, o := range []privacy.Ownership{privacy.Personal, privacy.UserEnrolled, privacy.Corporate} {
		t.Run(string(o), func(t *testing.T) {
			f := newFixture(t, storetest.OpenSQLite(t))
			f.publish(o)
			f.addToCatalogue(store.CatalogueApp{Identifier: "com.acme.expenses", Kind: store.AppApproved, StoreID: 1001})
			ts := f.serve()
			subject := f.ownerOf(o)
			d, dev := f.polled(ts, o, subject)
			for _, c := range []struct {
				status, reason string
				withheld       bool
			}{
				{"Error", "AppAlreadyInstalled", true},
				{"Acknowledged", "AppAlreadyInstalled", true},
				{"Error", "ManagementChangeNotSupported", true},
				{"Error", "Erika's words", true}, // kept as Other
				{"Error", "AppAlreadyQueued", false},
			} {
				if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID},
					mdmproto.InstallApplication{ITunesStoreID: 1001}, "", admin); err != nil {
					t.Fatal(err)
				}
				sent := command(t, d, map[string]any{"Status": "Idle"})
				msg := map[string]any{"Status": c.status, "CommandUUID": sent.CommandUUID, "RequestType": sent.RequestType, "RejectionReason": c.reason}
				if c.status == "Error" {
					msg["ErrorChain"] = []any{map[string]any{"ErrorCode": 12064, "ErrorDomain": "MCMDMErrorDomain", "LocalizedDescription": "x"}}
				}
				if _, err := d.Send(f.ctx, msg); err != nil {
					t.Fatal(err)
				}
				cmd, err := f.st.Read().Commands().Get(f.ctx, f.tenant, sent.CommandUUID)
				if err != nil {
					t.Fatal(err)
				}
				withheld := c.withheld && o.PersonallyOwned()
				summary := mdm.ErrorSummary(cmd.ErrorChain)
				switch {
				case !strings.HasPrefix(summary, mdm.RejectionPrefix):
					t.Errorf("%s %s: the chain %s names no rejection", c.status, c.reason, cmd.ErrorChain)
				case withheld && (summary == mdm.RejectionPrefix+"Other" || slices.ContainsFunc(mdmproto.InstallRejectionReasons,
					func(r string) bool { return strings.Contains(cmd.ErrorChain, r) }) || strings.Contains(cmd.ErrorChain, "12064")):
					t.Errorf("%s %s on a %s device kept %s; want the reason withheld", c.status, c.reason, o, cmd.ErrorChain)
				case !withheld && c.reason != "Erika's words" && summary != mdm.RejectionPrefix+c.reason:
					t.Errorf("%s %s on a %s device kept %s; want the reason", c.status, c.reason, o, cmd.ErrorChain)
				}
			}
		})
	}
}

// TestCorporateMacKeepsAppsWithoutIdentifier: macOS may list an app
// without its identifier (application.installed.list.yaml). A corporate
// Mac keeps it by name and version; a personally owned Mac does not, as
// nothing shows it is the organisation's; an entry naming nothing is kept
// by neither.
func TestCorporateMacKeepsAppsWithoutIdentifier(t *testing.T) {
	answer := map[string]any{"InstalledApplicationList": []any{
		map[string]any{"Identifier": "com.acme.expenses", "Name": "Expenses", "ShortVersion": "3.0"},
		map[string]any{"Name": "Legacy Tool", "Version": "2.1"},
		map[string]any{"Version": "1.0"},
	}}
	for _, o := range []privacy.Ownership{privacy.Corporate, privacy.Personal} {
		t.Run(string(o), func(t *testing.T) {
			f := newFixture(t, storetest.OpenSQLite(t))
			f.publish(o)
			ts := f.serve()
			subject := f.ownerOf(o)
			d, dev := f.polled(ts, o, subject, mac)
			if state := f.answer(t, d, dev.ID, mdmproto.InstalledApplicationList{}, answer); state != store.CommandAcknowledged {
				t.Fatalf("the app list ended %s", state)
			}
			var apps []privacy.App
			if err := json.Unmarshal(f.fields(dev.ID)["apps.installed"].Value, &apps); err != nil {
				t.Fatal(err)
			}
			var want []privacy.App
			if !o.PersonallyOwned() {
				want = []privacy.App{{ID: "com.acme.expenses", Name: "Expenses", Version: "3.0"}, {Name: "Legacy Tool", Version: "2.1"}}
			}
			if !slices.Equal(apps, want) {
				t.Errorf("stored %+v, want %+v", apps, want)
			}
			// Rules and reports read bundle IDs: one kept by name is none.
			cur, err := f.st.Read().Inventory().CurrentOf(f.ctx, f.tenant, dev.ID, []string{"apps.installed"})
			if err != nil {
				t.Fatal(err)
			}
			if ids, _, err := f.priv.AppIdentifiers(f.ctx, f.st.Read(), f.tenant, dev.ID, cur); err != nil || slices.Contains(ids, "") {
				t.Errorf("app identifiers %q, %v", ids, err)
			}
		})
	}
}
