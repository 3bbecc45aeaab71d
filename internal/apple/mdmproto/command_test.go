package mdmproto

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"howett.net/plist"
)

// normalise turns the integers the generic plist decoder yields (int64 or
// uint64) into int so expectations can be written as literals.
func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
	case uint64:
		return int(x)
	case int64:
		return int(x)
	}
	return v
}

func decodeCommand(t *testing.T, c Command) map[string]any {
	t.Helper()
	var envelope map[string]any
	format, err := plist.Unmarshal(c.Plist(), &envelope)
	if err != nil {
		t.Fatalf("command plist does not decode: %v", err)
	}
	if format != plist.XMLFormat {
		t.Errorf("command plist format = %d, want XML", format)
	}
	if len(envelope) != 2 || envelope["CommandUUID"] != c.UUID {
		t.Fatalf("envelope = %v, want CommandUUID and Command only", envelope)
	}
	cmd, ok := envelope["Command"].(map[string]any)
	if !ok {
		t.Fatalf("Command is %T, want dictionary", envelope["Command"])
	}
	return normalise(cmd).(map[string]any)
}

func TestBuildCommands(t *testing.T) {
	tests := []struct {
		req  Request
		want map[string]any
	}{
		{DeviceInformation{Queries: []string{"DeviceName", "OSVersion"}},
			map[string]any{"Queries": []any{"DeviceName", "OSVersion"}}},
		{SecurityInfo{}, map[string]any{}},
		{InstalledApplicationList{ManagedAppsOnly: true}, map[string]any{"ManagedAppsOnly": true}},
		{InstalledApplicationList{}, map[string]any{}},
		{ManagedApplicationList{Identifiers: []string{"com.example.expenses"}},
			map[string]any{"Identifiers": []any{"com.example.expenses"}}},
		{ProfileList{ManagedOnly: true}, map[string]any{"ManagedOnly": true}},
		{CertificateList{}, map[string]any{}},
		{InstallProfile{Payload: []byte("<plist/>")}, map[string]any{"Payload": []byte("<plist/>")}},
		{RemoveProfile{Identifier: "com.example.wifi"}, map[string]any{"Identifier": "com.example.wifi"}},
		{DeviceLock{Message: "Return to IT", PhoneNumber: "+49 30 1234567", PIN: "428613"},
			map[string]any{"Message": "Return to IT", "PhoneNumber": "+49 30 1234567", "PIN": "428613"}},
		{DeviceLock{}, map[string]any{}},
		{EraseDevice{PIN: "428613", PreserveDataPlan: true, DisallowProximitySetup: true, ObliterationBehavior: "DoNotObliterate"},
			map[string]any{"PIN": "428613", "PreserveDataPlan": true, "DisallowProximitySetup": true, "ObliterationBehavior": "DoNotObliterate"}},
		{RestartDevice{NotifyUser: true}, map[string]any{"NotifyUser": true}},
		{ShutDownDevice{}, map[string]any{}},
		{EnableLostMode{Message: "Lost", PhoneNumber: "+49 30 1234567", Footnote: "Example GmbH"},
			map[string]any{"Message": "Lost", "PhoneNumber": "+49 30 1234567", "Footnote": "Example GmbH"}},
		{DisableLostMode{}, map[string]any{}},
		{DeviceLocation{}, map[string]any{}},
		{ClearPasscode{UnlockToken: SecretBytes("unlock-token-secret")},
			map[string]any{"UnlockToken": []byte("unlock-token-secret")}},
		{ScheduleOSUpdate{Updates: []OSUpdate{{ProductVersion: "17.5.1", InstallAction: "InstallASAP", Priority: "High"},
			{ProductKey: "MSU_UPDATE_23F79_patch_14.5", InstallAction: "InstallLater", MaxUserDeferrals: 3}}},
			map[string]any{"Updates": []any{
				map[string]any{"ProductVersion": "17.5.1", "InstallAction": "InstallASAP", "Priority": "High"},
				map[string]any{"ProductKey": "MSU_UPDATE_23F79_patch_14.5", "InstallAction": "InstallLater", "MaxUserDeferrals": 3},
			}}},
		{ScheduleOSUpdate{}, map[string]any{}}, // the device's default behaviour
		{InstallApplication{ITunesStoreID: 361309726, ManagementFlags: ManagementFlagRemoveWithMDM | ManagementFlagPreventBackup},
			map[string]any{"iTunesStoreID": 361309726, "ManagementFlags": 5}},
		{InstallApplication{ManifestURL: "https://apps.example.com/expenses/manifest.plist"},
			map[string]any{"ManifestURL": "https://apps.example.com/expenses/manifest.plist"}},
		{InstallApplication{ITunesStoreID: 361309726, ManagementFlags: ManagementFlagRemoveWithMDM, PurchaseMethod: PurchaseVPP, InstallAsManaged: true},
			map[string]any{"iTunesStoreID": 361309726, "ManagementFlags": 1, "InstallAsManaged": true, "Options": map[string]any{"PurchaseMethod": 1}}},
		{InstallApplication{ITunesStoreID: 361309726, PurchaseMethod: PurchaseVPP},
			map[string]any{"iTunesStoreID": 361309726, "Options": map[string]any{"PurchaseMethod": 1}}},
		{InstallApplication{Identifier: "com.example.expenses", PurchaseMethod: PurchaseFree},
			map[string]any{"Identifier": "com.example.expenses"}},
		{RemoveApplication{Identifier: "com.example.expenses"}, map[string]any{"Identifier": "com.example.expenses"}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%02d_%s", i, tt.req.RequestType()), func(t *testing.T) {
			c, err := Build(fixtureCommandUUID, tt.req)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if c.UUID != fixtureCommandUUID || c.RequestType != tt.req.RequestType() {
				t.Errorf("Command = %v", c)
			}
			tt.want["RequestType"] = string(tt.req.RequestType())
			if got := decodeCommand(t, c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Command dictionary\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name string
		uuid string
		req  Request
	}{
		{"nil request", fixtureCommandUUID, nil},
		{"empty uuid", "", SecurityInfo{}},
		{"uuid with markup", "<x>", SecurityInfo{}},
		{"no queries", fixtureCommandUUID, DeviceInformation{}},
		{"empty query", fixtureCommandUUID, DeviceInformation{Queries: []string{"OSVersion", ""}}},
		{"empty profile", fixtureCommandUUID, InstallProfile{}},
		{"remove profile without identifier", fixtureCommandUUID, RemoveProfile{}},
		{"short pin", fixtureCommandUUID, DeviceLock{PIN: "1234"}},
		{"letters in pin", fixtureCommandUUID, EraseDevice{PIN: "12a456"}},
		{"unknown obliteration", fixtureCommandUUID, EraseDevice{ObliterationBehavior: "Sometimes"}},
		{"lost mode without contact", fixtureCommandUUID, EnableLostMode{Footnote: "x"}},
		{"lost mode with blank contact", fixtureCommandUUID, EnableLostMode{Message: " \t\n", PhoneNumber: " "}},
		{"clear passcode without token", fixtureCommandUUID, ClearPasscode{}},
		{"unknown install action", fixtureCommandUUID, ScheduleOSUpdate{Updates: []OSUpdate{{ProductVersion: "17.5.1", InstallAction: "Now"}}}},
		{"update naming no update", fixtureCommandUUID, ScheduleOSUpdate{Updates: []OSUpdate{{ProductVersion: "17.5.1", InstallAction: "Default"},
			{InstallAction: "InstallASAP"}}}},
		{"app with two sources", fixtureCommandUUID, InstallApplication{ITunesStoreID: 1, ManifestURL: "https://x.example/m.plist"}},
		{"app without source", fixtureCommandUUID, InstallApplication{}},
		{"http manifest", fixtureCommandUUID, InstallApplication{ManifestURL: "http://x.example/m.plist"}},
		{"unknown purchase method", fixtureCommandUUID, InstallApplication{ITunesStoreID: 1, PurchaseMethod: 2}},
		{"negative purchase method", fixtureCommandUUID, InstallApplication{ITunesStoreID: 1, PurchaseMethod: -1}},
		{"Apps and Books for a manifest app", fixtureCommandUUID, InstallApplication{ManifestURL: "https://x.example/m.plist", PurchaseMethod: PurchaseVPP}},
		{"remove app without identifier", fixtureCommandUUID, RemoveApplication{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(tt.uuid, tt.req); !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("Build error = %v, want ErrInvalidCommand", err)
			}
		})
	}
}

func TestCommandSecretsOnlyInPlist(t *testing.T) {
	const pin = "428613"
	req := DeviceLock{Message: "Return to IT", PIN: pin}
	c, err := Build(fixtureCommandUUID, req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(c.Plist(), []byte("<string>"+pin+"</string>")) {
		t.Fatal("the encoded command must carry the PIN")
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("queued", "command", c, "request", req, "pin", req.PIN)
	outputs := []string{logged.String(), c.String(), c.GoString()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outputs = append(outputs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, req), fmt.Sprintf(verb, req.PIN))
	}
	for _, out := range outputs {
		if strings.Contains(out, pin) || strings.Contains(out, fmt.Sprintf("%x", pin)) {
			t.Errorf("PIN leaked: %s", out)
		}
	}
	// A PIN the builder rejects must not be echoed in the error either.
	if _, err := Build(fixtureCommandUUID, DeviceLock{PIN: "98765x"}); err == nil || strings.Contains(err.Error(), "98765x") {
		t.Errorf("bad PIN error = %v", err)
	}
	// Plist hands out a copy: callers cannot alter the queued command.
	p := c.Plist()
	p[0] = 'X'
	if c.Plist()[0] == 'X' {
		t.Error("Plist returned the internal buffer")
	}
}
