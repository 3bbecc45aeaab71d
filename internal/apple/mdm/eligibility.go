package mdm

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// Apple's names for the systems its schema describes; iPadOS answers as iOS.
const (
	osIOS   = "iOS"
	osMacOS = "macOS"
)

// schemaOS is the system of Apple's schema a device platform follows, ""
// when Steward does not know it (then no platform rule applies).
func schemaOS(platform string) string {
	switch platform {
	case "ios", "ipados":
		return osIOS
	case "macos":
		return osMacOS
	}
	return ""
}

// support is how a command's supportedOS in Apple's device-management
// schema (mdm/commands) limits it on one system.
type support struct {
	none             bool // introduced: n/a
	supervised       bool // supervised: true
	noUserEnrollment bool // userenrollment mode: forbidden
}

// commandSupport holds every command Steward builds, each checked against
// its schema file; a system left out takes the command on any enrolment,
// supervised or not. User channels take only profile commands
// (UserChannelRequest), which every system allows there.
var commandSupport = map[mdmproto.RequestType]map[string]support{
	mdmproto.RequestDeviceInformation: {}, // information.device.yaml
	mdmproto.RequestSecurityInfo:      {}, // information.security.yaml
	// application.installed.list.yaml; RequestFor asks a user-enrolled Mac
	// for ManagedApplicationList instead.
	mdmproto.RequestInstalledApplicationList: {osMacOS: {noUserEnrollment: true}},
	mdmproto.RequestManagedApplicationList:   {},                                  // application.managed.list.yaml
	mdmproto.RequestProfileList:              {},                                  // profile.list.yaml
	mdmproto.RequestCertificateList:          {},                                  // certificate.list.yaml
	mdmproto.RequestInstallProfile:           {},                                  // profile.install.yaml
	mdmproto.RequestRemoveProfile:            {},                                  // profile.remove.yaml
	mdmproto.RequestInstallApplication:       {},                                  // application.install.yaml
	mdmproto.RequestRemoveApplication:        {osMacOS: {noUserEnrollment: true}}, // application.remove.yaml
	mdmproto.RequestDeviceLock:               {osMacOS: {noUserEnrollment: true}}, // device.lock.yaml
	mdmproto.RequestEraseDevice: { // device.erase.yaml
		osIOS: {noUserEnrollment: true}, osMacOS: {noUserEnrollment: true}},
	mdmproto.RequestRestartDevice: { // device.restart.yaml
		osIOS: {supervised: true, noUserEnrollment: true}, osMacOS: {noUserEnrollment: true}},
	mdmproto.RequestShutDownDevice: { // device.shutdown.yaml
		osIOS: {supervised: true, noUserEnrollment: true}, osMacOS: {noUserEnrollment: true}},
	mdmproto.RequestEnableLostMode:  lostMode, // device.lostmode.enable.yaml
	mdmproto.RequestDisableLostMode: lostMode, // device.lostmode.disable.yaml
	mdmproto.RequestDeviceLocation:  lostMode, // device.lostmode.location.yaml
	mdmproto.RequestClearPasscode: { // passcode.clear.yaml
		osIOS: {noUserEnrollment: true}, osMacOS: {none: true}},
	mdmproto.RequestScheduleOSUpdate: { // system.update.schedule.yaml
		osIOS: {supervised: true, noUserEnrollment: true}, osMacOS: {supervised: true, noUserEnrollment: true}},
}

var lostMode = map[string]support{osIOS: {supervised: true, noUserEnrollment: true}, osMacOS: {none: true}}

// needsSupervision says whether device d takes a command of type rt only
// when supervised: whether RequestFor needs DeviceFacts.Supervised.
func needsSupervision(rt mdmproto.RequestType, d store.Device) bool {
	return commandSupport[rt][schemaOS(d.Platform)].supervised
}

// checkSupport refuses a command of type rt that device d would refuse by
// Apple's rules: one its system lacks, one User Enrollment forbids, or one
// for supervised devices when its last report does not say it is (an
// unknown supervision counts as none: the device would refuse it).
func checkSupport(rt mdmproto.RequestType, d store.Device, supervised bool) error {
	sys := schemaOS(d.Platform)
	s := commandSupport[rt][sys]
	switch {
	case s.none:
		return apperr.Conflict("%s is not supported on %s: this device is %s", rt, sys, deviceKind(d)).With("reason", SkipUnsupported)
	case s.noUserEnrollment && privacy.Ownership(d.Ownership) == privacy.UserEnrolled:
		return apperr.Conflict("%s is not allowed on a User Enrollment of %s: this device is %s; Apple refuses it there", rt, sys, deviceKind(d)).
			With("reason", SkipUnsupported)
	case s.supervised && !supervised:
		return apperr.Forbidden("%s needs a supervised device on %s, and this device (%s) has not reported that it is supervised: "+
			"supervise it (Automated Device Enrollment or Apple Configurator), or sync its inventory if it already is", rt, sys, deviceKind(d)).
			With("reason", SkipUnsupervised)
	}
	return nil
}

// deviceKind names a device for an admin: its platform and enrolment.
func deviceKind(d store.Device) string {
	name := map[string]string{"ios": "an iPhone", "ipados": "an iPad", "macos": "a Mac"}[d.Platform]
	if name == "" {
		name = "a device"
	}
	if privacy.Ownership(d.Ownership) == privacy.UserEnrolled {
		return name + " enrolled by User Enrollment"
	}
	return name + " (" + d.Ownership + ")"
}

// forPlatform leaves out the keys of r that device d's system does not
// use, per the command's schema file, and refuses install actions it
// lacks.
func forPlatform(r mdmproto.Request, d store.Device) (mdmproto.Request, error) {
	sys := schemaOS(d.Platform)
	switch r := r.(type) {
	case mdmproto.DeviceLock:
		if sys == osIOS {
			r.PIN = "" // device.lock.yaml: the Find My PIN is macOS's
		}
		return r, nil
	case mdmproto.EraseDevice:
		// device.erase.yaml: PIN and ObliterationBehavior are macOS's,
		// PreserveDataPlan and DisallowProximitySetup iOS's.
		switch sys {
		case osIOS:
			r.PIN, r.ObliterationBehavior = "", ""
		case osMacOS:
			r.PreserveDataPlan, r.DisallowProximitySetup = false, false
		}
		return r, nil
	case mdmproto.RestartDevice:
		if sys == osIOS {
			r.NotifyUser = false // device.restart.yaml: macOS only
		}
		return r, nil
	case mdmproto.InstallApplication:
		if sys == osMacOS && privacy.Ownership(d.Ownership) == privacy.UserEnrolled {
			r.ManagementFlags = 0 // application.install.yaml: forbidden there
		}
		return r, nil
	case mdmproto.ScheduleOSUpdate:
		if sys == osIOS {
			return updatesForIOS(r, d)
		}
	}
	return r, nil
}

// macOnlyInstallActions are ScheduleOSUpdate install actions only macOS
// has (system.update.schedule.yaml).
var macOnlyInstallActions = []string{"NotifyOnly", "InstallLater", "InstallForceRestart"}

// updatesForIOS refuses macOS's install actions and leaves out the keys
// iOS does not use (MaxUserDeferrals, Priority).
func updatesForIOS(r mdmproto.ScheduleOSUpdate, d store.Device) (mdmproto.Request, error) {
	updates := slices.Clone(r.Updates)
	for i, u := range updates {
		if slices.Contains(macOnlyInstallActions, u.InstallAction) {
			return nil, apperr.Conflict("install action %s is for Macs only, and this device is %s: use Default, DownloadOnly or InstallASAP",
				u.InstallAction, deviceKind(d)).With("reason", SkipUnsupported)
		}
		updates[i].MaxUserDeferrals, updates[i].Priority = 0, ""
	}
	r.Updates = updates
	return r, nil
}

// supervisedNow reads device d's last report of os.supervised; no report
// is false.
func supervisedNow(ctx context.Context, q store.Queries, d store.Device) (bool, error) {
	s, err := SupervisionOf(ctx, q, d)
	return s == Supervised, err
}

// Supervision is what a device's last report says of its supervision.
type Supervision uint8

const (
	// SupervisionUnknown: the device has not reported it (its first
	// DeviceInformation answer is still to come) or it is not kept.
	SupervisionUnknown Supervision = iota
	Supervised
	Unsupervised
)

// SupervisionOf reads device d's last report of os.supervised.
func SupervisionOf(ctx context.Context, q store.Queries, d store.Device) (Supervision, error) {
	current, err := q.Inventory().CurrentOf(ctx, d.TenantID, d.ID, []string{"os.supervised"})
	if err != nil {
		return SupervisionUnknown, err
	}
	return SupervisionIn(current), nil
}

// SupervisionIn reads os.supervised from a device's current inventory.
func SupervisionIn(current []store.InventoryValue) Supervision {
	for _, v := range current {
		var b bool
		if v.Field != "os.supervised" || v.Ciphertext != nil || json.Unmarshal(v.Value, &b) != nil {
			continue
		}
		if b {
			return Supervised
		}
		return Unsupervised
	}
	return SupervisionUnknown
}
