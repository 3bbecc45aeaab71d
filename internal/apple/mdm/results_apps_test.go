package mdm

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// TestInstalledAppListBounded: an app list stores at most maxInstalledApps
// entries, each identifier, name and version cut to length (valid UTF-8),
// as the managed-app and certificate lists are bounded.
func TestInstalledAppListBounded(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes
	apps := make([]mdmproto.InstalledApplication, maxInstalledApps+10)
	for i := range apps {
		apps[i] = mdmproto.InstalledApplication{Identifier: fmt.Sprintf("com.example.app%05d", i), Name: "App", ShortVersion: "1.0"}
	}
	apps[0] = mdmproto.InstalledApplication{Identifier: "com.example." + long, Name: long, ShortVersion: long}
	obs := appObservations(apps, false)
	kept := obs[0].Value.([]privacy.App)
	if len(kept) != maxInstalledApps {
		t.Errorf("%d apps kept of %d, want %d", len(kept), len(apps), maxInstalledApps)
	}
	a := kept[0]
	if len(a.ID) > 256 || len(a.Name) > 256 || len(a.Version) > 64 || !utf8.ValidString(a.ID+a.Name+a.Version) {
		t.Errorf("a long entry was kept as %d, %d and %d bytes (valid UTF-8: %v)", len(a.ID), len(a.Name), len(a.Version), utf8.ValidString(a.ID+a.Name+a.Version))
	}
}

// installAnswer is an InstallApplication answer with status and extra keys.
func installAnswer(t *testing.T, status, extra string) mdmproto.Result {
	t.Helper()
	res, err := mdmproto.DecodeResult([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>CommandUUID</key><string>0F4C1A5E-2D3B-4C5D-8E9F-0A1B2C3D4E5F</string>
<key>Status</key><string>` + status + `</string><key>UDID</key><string>0000FE00-0A1B2C3D4E5F6071</string>` + extra + `</dict></plist>`))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestInstallRejectionReasonKept: an InstallApplication answer's
// RejectionReason is kept first in the command's error chain, as
// Steward's words and only as one of Apple's values ("Other" for any
// other text), so that an admin tells an app already queued from one the
// App Store could not verify. The device's own entries stay after it.
func TestInstallRejectionReasonKept(t *testing.T) {
	install := store.Command{RequestType: string(mdmproto.RequestInstallApplication)}
	s := &Service{}
	for _, c := range []struct {
		name, extra, want string
	}{
		{"queued already", `<key>RejectionReason</key><string>AppAlreadyQueued</string>`, RejectionPrefix + "AppAlreadyQueued"},
		{"unverified", `<key>RejectionReason</key><string>CouldNotVerifyAppID</string>`, RejectionPrefix + "CouldNotVerifyAppID"},
		{"free text", `<key>RejectionReason</key><string>Erika's own words</string>`, RejectionPrefix + "Other"},
		{"not a string", `<key>RejectionReason</key><integer>7</integer>`, RejectionPrefix + "Other"},
		{"none", `<key>State</key><string>Installing</string>`, ""},
	} {
		note, err := s.acknowledgedNote(context.Background(), nil, store.Device{}, install, installAnswer(t, "Acknowledged", c.extra), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got := ErrorSummary(note); (c.want == "" && note != "") || (c.want != "" && got != c.want) {
			t.Errorf("%s: acknowledged answer kept %q; want %q", c.name, note, c.want)
		}
	}

	deviceChain := []byte(`[{"ErrorCode":12021,"ErrorDomain":"MCMDMErrorDomain"}]`)
	res := installAnswer(t, "Error", `<key>RejectionReason</key><string>PurchaseMethodNotSupportedInMultiUser</string>`)
	var entries []mdmproto.ErrorChainItem
	if err := json.Unmarshal(rejectionChain(install, res, deviceChain, false), &entries); err != nil || len(entries) != 2 ||
		entries[0].LocalizedDescription != RejectionPrefix+"PurchaseMethodNotSupportedInMultiUser" || entries[0].ErrorDomain != "" ||
		entries[1].ErrorCode != 12021 {
		t.Errorf("failed answer's chain: %+v, %v; want the reason, then the device's entry", entries, err)
	}
	if got := ErrorRecord(string(rejectionChain(install, res, deviceChain, false))); got != RejectionPrefix+"PurchaseMethodNotSupportedInMultiUser" {
		t.Errorf("its record: %q", got)
	}
	other := store.Command{RequestType: string(mdmproto.RequestInstallProfile)}
	if got := rejectionChain(other, res, deviceChain, false); string(got) != string(deviceChain) {
		t.Errorf("another command's chain changed: %s", got)
	}
}
