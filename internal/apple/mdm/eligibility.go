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
	none             bool   // introduced: n/a
	introduced       string // introduced, when later than the protocol's first release (iOS 4, macOS 10.7)
	removed          string // the first version that no longer takes it
	supervised       bool   // supervised: true
	noUserEnrollment bool   // userenrollment mode: forbidden
	noSharedIPad     bool   // sharedipad mode: forbidden
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
	mdmproto.RequestInstalledApplicationList: {osIOS: {introduced: "5.0"}, osMacOS: {noUserEnrollment: true}},
	mdmproto.RequestManagedApplicationList: { // application.managed.list.yaml
		osIOS: {introduced: "5.0"}, osMacOS: {introduced: "11.0"}},
	mdmproto.RequestProfileList:     {}, // profile.list.yaml
	mdmproto.RequestCertificateList: {}, // certificate.list.yaml
	mdmproto.RequestInstallProfile:  {}, // profile.install.yaml
	mdmproto.RequestRemoveProfile:   {}, // profile.remove.yaml
	mdmproto.RequestInstallApplication: { // application.install.yaml
		osIOS: {introduced: "5.0"}, osMacOS: {introduced: "10.9"}},
	mdmproto.RequestRemoveApplication: { // application.remove.yaml
		osIOS: {introduced: "5.0"}, osMacOS: {introduced: "11.0", noUserEnrollment: true}},
	mdmproto.RequestDeviceLock: {osMacOS: {noUserEnrollment: true}}, // device.lock.yaml
	mdmproto.RequestEraseDevice: { // device.erase.yaml
		osIOS: {noUserEnrollment: true}, osMacOS: {noUserEnrollment: true}},
	mdmproto.RequestRestartDevice: { // device.restart.yaml
		osIOS: {introduced: "10.3", supervised: true, noUserEnrollment: true}, osMacOS: {introduced: "10.13", noUserEnrollment: true}},
	mdmproto.RequestShutDownDevice: { // device.shutdown.yaml
		osIOS: {introduced: "10.3", supervised: true, noUserEnrollment: true}, osMacOS: {introduced: "10.13", noUserEnrollment: true}},
	mdmproto.RequestEnableLostMode:  lostMode, // device.lostmode.enable.yaml
	mdmproto.RequestDisableLostMode: lostMode, // device.lostmode.disable.yaml
	mdmproto.RequestDeviceLocation:  lostMode, // device.lostmode.location.yaml
	mdmproto.RequestClearPasscode: { // passcode.clear.yaml
		osIOS: {noUserEnrollment: true, noSharedIPad: true}, osMacOS: {none: true}},
	// system.update.schedule.yaml marks it deprecated in iOS and macOS
	// 26.0, and Apple's reference lists it among the removed commands,
	// available up to 26: declarative software update management replaces
	// it, which Steward does not offer yet.
	mdmproto.RequestScheduleOSUpdate: {
		osIOS:   {introduced: "9.0", removed: scheduleOSUpdateRemoved, supervised: true, noUserEnrollment: true},
		osMacOS: {introduced: "10.11", removed: scheduleOSUpdateRemoved, supervised: true, noUserEnrollment: true}},
}

// scheduleOSUpdateRemoved is the first iOS and macOS version without
// ScheduleOSUpdate.
const scheduleOSUpdateRemoved = "27.0"

var lostMode = map[string]support{osIOS: {introduced: "9.3", supervised: true, noUserEnrollment: true}, osMacOS: {none: true}}

// platformNeutral are the commands a device whose platform is not known
// yet is sent: Apple's rules differ between an iPhone or iPad and a Mac
// for the others. They ask what the device is and what it holds, and
// install or remove profiles (Steward's own: its identity's renewal, the
// removal of its management profile when it must leave; configuration
// profiles wait for the platform in profile delivery).
var platformNeutral = map[mdmproto.RequestType]bool{
	mdmproto.RequestDeviceInformation: true, mdmproto.RequestSecurityInfo: true,
	mdmproto.RequestProfileList: true, mdmproto.RequestCertificateList: true,
	mdmproto.RequestInstallProfile: true, mdmproto.RequestRemoveProfile: true,
}

// needsReport says whether a request for d depends on what d last reported
// of its supervision or Shared iPad mode: only those pay for reading it.
// Those are the commands for supervised devices only, or not for a Shared
// iPad, on d's system, an erase that would disallow Proximity Setup on
// an iPhone or iPad, a key a Shared iPad does not take, and an App Store
// app for an iPhone or iPad, which a Shared iPad takes only as an Apps
// and Books assignment.
func needsReport(r mdmproto.Request, d store.Device) bool {
	sys := schemaOS(d.Platform)
	s := commandSupport[r.RequestType()][sys]
	erase, isErase := r.(mdmproto.EraseDevice)
	app, isApp := r.(mdmproto.InstallApplication)
	return s.supervised || s.noSharedIPad || (isErase && erase.DisallowProximitySetup && sys == osIOS) ||
		(isApp && app.ManifestURL == "" && sys == osIOS)
}

// checkSupport refuses a command of type rt that device d would refuse by
// Apple's rules: one its system lacks, one User Enrollment or Shared iPad
// mode forbids, one its OS version predates, or one for supervised devices
// when its last report does not say it is (an unknown supervision counts as
// none: the device would refuse it). A device of unknown platform is only
// asked what it is. A device that has not said whether it is a Shared
// iPad is taken for one that is not: it would answer Error, and no other
// iPhone or iPad is kept from the command.
func checkSupport(rt mdmproto.RequestType, d store.Device, facts DeviceFacts) error {
	sys := schemaOS(d.Platform)
	s := commandSupport[rt][sys]
	switch {
	case sys == "" && !platformNeutral[rt]:
		return apperr.Conflict("%s waits until the device says whether it is an iPhone, iPad or Mac, as Apple's rules differ "+
			"between them: sync its inventory first", rt).With("reason", SkipUnsupported)
	case s.none:
		return apperr.Conflict("%s is not supported on %s: this device is %s", rt, sys, deviceKind(d)).With("reason", SkipUnsupported)
	case s.noUserEnrollment && privacy.Ownership(d.Ownership) == privacy.UserEnrolled:
		return apperr.Conflict("%s is not allowed on a User Enrollment of %s: this device is %s; Apple refuses it there", rt, sys, deviceKind(d)).
			With("reason", SkipUnsupported)
	case s.noSharedIPad && facts.SharedIPad:
		return apperr.Conflict("%s is not allowed on a Shared iPad, and this device said it is one; Apple refuses it there", rt).
			With("reason", SkipUnsupported)
	case !runsAtLeast(d, s.introduced):
		return tooOld(d, string(rt), s.introduced)
	case s.removed != "" && reportedAtLeast(d, s.removed):
		return apperr.Conflict("Apple removed %s from %s %s, and this device (%s) runs %s: it would refuse the command",
			rt, sys, s.removed, deviceKind(d), d.OSVersion).With("reason", SkipUnsupported)
	case s.supervised && !facts.Supervised:
		return apperr.Forbidden("%s needs a supervised device on %s, and this device (%s) has not reported that it is supervised: "+
			"supervise it (Automated Device Enrollment or Apple Configurator), or sync its inventory if it already is", rt, sys, deviceKind(d)).
			With("reason", SkipUnsupervised)
	}
	return nil
}

// reportedAtLeast is runsAtLeast for a device known to run v or later: an
// unknown version does not hold, so a command is refused for a removal
// only when the device said which version it runs.
func reportedAtLeast(d store.Device, v string) bool {
	_, known := parseOSVersion(d.OSVersion)
	return known && runsAtLeast(d, v)
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

// forPlatform leaves out the keys of r that device d's system, OS version
// or Shared iPad mode (sharedIPad) does not use, per the command's schema
// file, and refuses install actions it lacks and lists it could not narrow
// (listsFor).
func forPlatform(r mdmproto.Request, d store.Device, sharedIPad bool) (mdmproto.Request, error) {
	sys := schemaOS(d.Platform)
	switch r := r.(type) {
	case mdmproto.DeviceInformation:
		return queriesFor(r, d)
	case mdmproto.InstalledApplicationList, mdmproto.ManagedApplicationList, mdmproto.ProfileList, mdmproto.CertificateList:
		return listsFor(r, d)
	case mdmproto.DeviceLock:
		if !takesFindMyPIN(d) {
			r.PIN = ""
		}
		if !runsAtLeast(d, since(d, "7.0", "10.14")) {
			r.Message = ""
		}
		if !runsAtLeast(d, since(d, "7.0", "11.5")) {
			r.PhoneNumber = ""
		}
		return r, nil
	case mdmproto.EraseDevice:
		// device.erase.yaml: PIN and ObliterationBehavior are macOS's,
		// PreserveDataPlan and DisallowProximitySetup iOS's.
		if !takesFindMyPIN(d) {
			r.PIN = ""
		}
		if !runsAtLeast(d, since(d, "n/a", "12.0")) {
			r.ObliterationBehavior = ""
		}
		if !runsAtLeast(d, since(d, "11.0", "n/a")) {
			r.PreserveDataPlan = false
		}
		if !runsAtLeast(d, since(d, "11.3", "n/a")) || sharedIPad {
			r.DisallowProximitySetup = false
		}
		if r.DisallowProximitySetup && r.PreserveDataPlan && !runsAtLeast(d, "14.0") {
			// Before iOS 14 the key goes alone; the data plan matters more.
			r.DisallowProximitySetup = false
		}
		return r, nil
	case mdmproto.RestartDevice:
		if !runsAtLeast(d, since(d, "n/a", "11.4")) {
			r.NotifyUser = false // device.restart.yaml: macOS 11.4 and later
		}
		return r, nil
	case mdmproto.InstallApplication:
		if sys == osMacOS {
			r = appForMac(r, d)
			if !r.InstallAsManaged && privacy.Ownership(d.Ownership).PersonallyOwned() {
				// It would stay on the person's own Mac, with its data, after
				// the Mac leaves management: retiring it promises otherwise.
				return nil, apperr.Forbidden("this app would install unmanaged on a personally owned Mac (a package, macOS before 11, "+
					"or User Enrollment) and stay there after the Mac leaves management").With("reason", SkipOwnership)
			}
		} else {
			r.InstallAsManaged = false // application.install.yaml: n/a on iOS, which manages every app MDM installs
			if sharedIPad && r.ManifestURL == "" {
				// A Shared iPad refuses the free purchase method
				// (PurchaseMethodNotSupportedInMultiUser): its App Store apps
				// come as Apps and Books assignments to the device.
				r.PurchaseMethod = mdmproto.PurchaseVPP
			}
		}
		// iOS names apps by bundle ID or manifest and takes Options (the
		// purchase method) from 7.0.
		if min := since(d, "7.0", ""); (r.Identifier != "" || r.ManifestURL != "" || r.PurchaseMethod != 0) && !runsAtLeast(d, min) {
			return nil, tooOld(d, "InstallApplication with Identifier, ManifestURL or Options", min)
		}
		return r, nil
	case mdmproto.ScheduleOSUpdate:
		if sys == osIOS {
			return updatesForIOS(r, d)
		}
		return updatesForMac(r, d)
	}
	return r, nil
}

// appForMac sends an app to Mac d the way macOS installs one as Steward's,
// per application.install.yaml. From the App Store only as an Apps and
// Books assignment: purchase method 0 is iOS's, and a Mac refuses it, and
// as a managed app (InstallAsManaged, macOS 11): without it the Mac
// installs it unmanaged, so ManagementFlags' removal with the profile,
// which needs it, does nothing, RemoveApplication and
// ManagedApplicationList do not reach it, and retiring the Mac leaves the
// app and its data behind. A package from a manifest stays unmanaged: a
// Mac refuses to install one as managed unless it meets Apple's criteria
// for managed packages, which agents and drivers often do not, and Steward
// cannot tell. User Enrollment forbids InstallAsManaged and
// ManagementFlags; before macOS 11 a Mac has no managed apps and refuses
// the keys. Without them the app stays when the Mac leaves management, so
// a personally owned Mac is not sent it (forPlatform). An unknown version
// counts as 11 or later (runsAtLeast).
func appForMac(r mdmproto.InstallApplication, d store.Device) mdmproto.InstallApplication {
	if r.ManifestURL == "" {
		r.PurchaseMethod = mdmproto.PurchaseVPP
	}
	managed := r.ManifestURL == "" && privacy.Ownership(d.Ownership) != privacy.UserEnrolled && runsAtLeast(d, "11.0")
	r.InstallAsManaged = managed
	if !managed {
		r.ManagementFlags = 0
	}
	return r
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
	return updatesByVersion(r, d)
}

// macInstallActionsFrom11 are the ScheduleOSUpdate install actions macOS
// gained in 11 (system.update.schedule.yaml); the others date from the
// command (10.11).
var macInstallActionsFrom11 = []string{"DownloadOnly", "InstallForceRestart"}

// updatesForMac refuses an install action the Mac's OS version predates,
// and leaves out the keys it predates, MaxUserDeferrals (12.0) and Priority
// (12.3), and MaxUserDeferrals from an action other than InstallLater, the
// only one it applies to: like any key the device does not use, it goes
// unsent rather than refusing the update.
func updatesForMac(r mdmproto.ScheduleOSUpdate, d store.Device) (mdmproto.Request, error) {
	updates := slices.Clone(r.Updates)
	for i, u := range updates {
		if slices.Contains(macInstallActionsFrom11, u.InstallAction) && !runsAtLeast(d, "11.0") {
			return nil, tooOld(d, "ScheduleOSUpdate with install action "+u.InstallAction, "11.0")
		}
		if u.InstallAction != "InstallLater" || !runsAtLeast(d, "12.0") {
			updates[i].MaxUserDeferrals = 0
		}
		if !runsAtLeast(d, "12.3") {
			updates[i].Priority = ""
		}
	}
	r.Updates = updates
	return updatesByVersion(r, d)
}

// updatesByVersion refuses an update named only by ProductVersion on a
// device older than the key (iOS 11.3, macOS 12.0), which must name it by
// ProductKey; with both, ProductVersion is left out.
func updatesByVersion(r mdmproto.ScheduleOSUpdate, d store.Device) (mdmproto.Request, error) {
	min := since(d, "11.3", "12.0")
	if runsAtLeast(d, min) {
		return r, nil
	}
	for i, u := range r.Updates {
		if u.ProductVersion == "" {
			continue
		}
		if u.ProductKey == "" {
			return nil, tooOld(d, "ScheduleOSUpdate naming an update by ProductVersion (name it by ProductKey)", min)
		}
		r.Updates[i].ProductVersion = ""
	}
	return r, nil
}

// CheckFindMyPIN refuses a DeviceLock or EraseDevice without a PIN that
// Mac d needs one for: a Mac so refused answers Error and stays unlocked.
// From macOS 11 a Mac reports whether it needs one (PINRequiredForDeviceLock,
// PINRequiredForEraseDevice in information.device.yaml; Apple silicon says
// no); before, every Mac is an Intel one, which needs it from 10.8, where
// the PIN came. A Mac that has not said whether it needs one (its first
// DeviceInformation answer is still to come, or its policy keeps no
// security state) is asked for one too, whatever its version: every Mac
// from 10.8 accepts a PIN, and an Intel Mac locked without one stays
// unlocked, lost.
//
// It also refuses a lock that would deactivate the Mac: device.lock.yaml
// warns that an Apple silicon Mac before macOS 11.5 is deactivated by
// DeviceLock, and only a local admin with a SecureToken brings it back. A
// Mac on 11.0 to 11.4 is locked only once it said it needs a PIN, as only
// an Intel Mac does.
func CheckFindMyPIN(ctx context.Context, q store.Queries, d store.Device, r mdmproto.Request) error {
	var field, command, pin string
	switch r := r.(type) {
	case mdmproto.DeviceLock:
		field, command, pin = "security.pin_required_for_lock", "a lock", string(r.PIN)
	case mdmproto.EraseDevice:
		field, command, pin = "security.pin_required_for_erase", "an erase", string(r.PIN)
	default:
		return nil
	}
	if schemaOS(d.Platform) != osMacOS {
		return nil
	}
	_, isLock := r.(mdmproto.DeviceLock)
	if pin != "" && !isLock {
		return nil
	}
	current, err := q.Inventory().CurrentOf(ctx, d.TenantID, d.ID, []string{field, "os.version"})
	if err != nil {
		return err
	}
	required, reported := false, false
	for _, v := range current {
		switch {
		case v.Ciphertext != nil:
		case v.Field == field:
			reported = json.Unmarshal(v.Value, &required) == nil
		case v.Field == "os.version" && d.OSVersion == "":
			_ = json.Unmarshal(v.Value, &d.OSVersion)
		}
	}
	if isLock && !(reported && required) && reportedAtLeast(d, "11.0") && !runsAtLeast(d, "11.5") {
		return apperr.Conflict("this Mac runs macOS %s and has not said it is an Intel Mac: a remote lock deactivates an Apple silicon Mac "+
			"before macOS 11.5, and only a local administrator can bring it back; update it to macOS 11.5 or later first", d.OSVersion).
			With("reason", SkipUnsupported)
	}
	if pin != "" {
		return nil
	}
	if !reported {
		// Only a Mac known to run a macOS before 10.8, which has no PIN,
		// goes without (runsAtLeast holds for an unknown version).
		required = runsAtLeast(d, "10.8")
	}
	if !required {
		return nil
	}
	return apperr.Invalid("this Mac needs its six-digit Find My PIN for %s (it said so, or it has not said whether it does, "+
		"and an Intel Mac does): set pin; without it the Mac may refuse the command", command).With("reason", SkipPINRequired)
}

// TakesFindMyPIN reports whether device d is sent the PIN of a lock or
// erase (takesFindMyPIN, as forPlatform decides): Steward keeps no PIN a
// device was not sent. The version is read as prepare reads it.
func TakesFindMyPIN(ctx context.Context, q store.Queries, d store.Device) (bool, error) {
	if schemaOS(d.Platform) != osMacOS {
		return false, nil
	}
	if d.OSVersion == "" {
		facts, err := reportedNow(ctx, q, d)
		if err != nil {
			return false, err
		}
		d.OSVersion = facts.OSVersion
	}
	return takesFindMyPIN(d), nil
}

// takesFindMyPIN is forPlatform's rule for the PIN of DeviceLock and
// EraseDevice (device.lock.yaml, device.erase.yaml): macOS's, from 10.8.
func takesFindMyPIN(d store.Device) bool {
	return schemaOS(d.Platform) == osMacOS && runsAtLeast(d, "10.8")
}

// reportedNow reads what device d last reported of its supervision, Shared
// iPad mode and OS version (os.supervised, os.shared_ipad, os.version);
// none reported is unsupervised, not shared and "".
func reportedNow(ctx context.Context, q store.Queries, d store.Device) (DeviceFacts, error) {
	current, err := q.Inventory().CurrentOf(ctx, d.TenantID, d.ID, []string{"os.supervised", "os.shared_ipad", "os.version"})
	if err != nil {
		return DeviceFacts{}, err
	}
	var facts DeviceFacts
	for _, v := range current {
		if v.Ciphertext != nil {
			continue
		}
		switch v.Field {
		case "os.version":
			if json.Unmarshal(v.Value, &facts.OSVersion) != nil {
				facts.OSVersion = ""
			}
		case "os.shared_ipad":
			_ = json.Unmarshal(v.Value, &facts.SharedIPad) // anything but true is not shared
		}
	}
	facts.Supervised = SupervisionIn(current) == Supervised
	return facts, nil
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
