package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// Poll sends Idle and answers every command until the queue is empty; it
// returns how many commands it answered.
func (d *Device) Poll(ctx context.Context) (int, error) {
	answered, _, err := d.PollFor(ctx, "")
	return answered, err
}

// PollFor is Poll that also tells whether one of the commands answered was
// the one with CommandUUID uuid (compared without regard to case): a load
// test's round trip counts only when the device answered its own command.
// A Device is not safe for concurrent use: one goroutine at a time polls it.
func (d *Device) PollFor(ctx context.Context, uuid string) (answered int, found bool, err error) {
	msg := map[string]any{"Status": "Idle"}
	for {
		d.identify(msg)
		body, err := plist.Marshal(msg, plist.XMLFormat)
		if err != nil {
			return answered, found, err
		}
		out, err := d.signed(ctx, d.serverURL, "application/x-apple-aspen-mdm", body)
		if err != nil {
			return answered, found, err
		}
		if len(out) == 0 {
			return answered, found, nil
		}
		var cmd struct {
			CommandUUID string
			Command     map[string]any
		}
		if _, err := plist.Unmarshal(out, &cmd); err != nil {
			return answered, found, fmt.Errorf("the server sent an unreadable command: %w", err)
		}
		found = found || uuid != "" && strings.EqualFold(cmd.CommandUUID, uuid)
		if renewed, err := d.reinstallEnrolment(ctx, cmd.Command); renewed || err != nil {
			msg = d.installed(cmd.CommandUUID, err)
		} else if chain := d.refuseCommand(cmd.Command); chain != nil {
			msg = d.refused(cmd.CommandUUID, cmd.Command, chain)
		} else {
			msg = d.answer(cmd.CommandUUID, cmd.Command)
		}
		answered++
		d.CommandsHandled++
	}
}

// reinstallEnrolment installs an InstallProfile's payload that is this
// device's own enrolment profile again, as a device does when its server
// renews its identity: SCEP with the new challenge, then Authenticate and
// TokenUpdate with the new certificate. It reports whether the payload was
// such a profile.
func (d *Device) reinstallEnrolment(ctx context.Context, cmd map[string]any) (bool, error) {
	if rt, _ := cmd["RequestType"].(string); rt != "InstallProfile" {
		return false, nil
	}
	payload, _ := cmd["Payload"].([]byte)
	info, err := readProfile(payload)
	if err != nil || info.serverURL != d.serverURL {
		return false, nil // another profile
	}
	// As a device does, the management payload of the profile it replaces
	// must stay as it was, but for access rights taken away.
	const perUser = "com.apple.mdm.per-user-connections" // Apple: must not be added or removed on an update
	if info.topic != d.profile.topic || info.accessRights&^d.profile.accessRights != 0 || info.checkinURL != d.profile.checkinURL ||
		slices.Contains(info.capabilities, perUser) != slices.Contains(d.profile.capabilities, perUser) {
		return true, errors.New("the new MDM payload does not match the old payload")
	}
	if err := d.scep(ctx, info); err != nil {
		return true, err
	}
	d.profile = info
	return true, d.Complete(ctx)
}

// installed is the result of an InstallProfile the device handled itself.
func (d *Device) installed(uuid string, err error) map[string]any {
	res := map[string]any{"Status": "Acknowledged", "CommandUUID": uuid, "RequestType": "InstallProfile"}
	if err != nil {
		res["Status"] = "Error"
		res["ErrorChain"] = []map[string]any{{"ErrorCode": 22000, "ErrorDomain": "MDMClientError", "LocalizedDescription": err.Error()}}
	}
	d.identify(res)
	return res
}

// refused is the Error result of a command the device will not carry out.
func (d *Device) refused(uuid string, cmd map[string]any, chain []map[string]any) map[string]any {
	res := map[string]any{"Status": "Error", "CommandUUID": uuid, "RequestType": cmd["RequestType"], "ErrorChain": chain}
	d.identify(res)
	return res
}

// Which commands a device refuses for its system, enrolment or supervision,
// from Apple's device-management schema (mdm/commands, each command's
// supportedOS). Written out here rather than shared with the server's
// table, so that each checks the other. Every other command is taken.
var (
	// notOnMac are commands macOS lacks.
	notOnMac = map[string]bool{"EnableLostMode": true, "DisableLostMode": true, "DeviceLocation": true, "ClearPasscode": true}
	// supervisedOnIOS are commands iOS takes on supervised devices only;
	// macOS too for ScheduleOSUpdate.
	supervisedOnIOS = map[string]bool{"RestartDevice": true, "ShutDownDevice": true, "EnableLostMode": true, "DisableLostMode": true,
		"DeviceLocation": true, "ScheduleOSUpdate": true}
	// notOnUserEnrollment are commands User Enrollment refuses on either system.
	notOnUserEnrollment = map[string]bool{"EraseDevice": true, "RestartDevice": true, "ShutDownDevice": true, "EnableLostMode": true,
		"DisableLostMode": true, "DeviceLocation": true, "ClearPasscode": true, "ScheduleOSUpdate": true}
	// notOnUserEnrolledMac are the ones it refuses on macOS besides.
	notOnUserEnrolledMac = map[string]bool{"InstalledApplicationList": true, "DeviceLock": true, "RemoveApplication": true}
	// macOnlyInstallActions are ScheduleOSUpdate actions iOS does not know.
	macOnlyInstallActions = map[string]bool{"NotifyOnly": true, "InstallLater": true, "InstallForceRestart": true}

	// sinceVersion holds the first iOS and macOS version taking a command
	// ("ManagedApplicationList") or one of its keys ("RestartDevice.NotifyUser",
	// "ScheduleOSUpdate.Updates.Priority"), where later than the first with
	// MDM at all; "-" is a system without it (left to the tables above).
	sinceVersion = map[string][2]string{
		"InstalledApplicationList":                  {"5.0", ""},
		"InstalledApplicationList.ManagedAppsOnly":  {"7.0", "10.15"},
		"InstalledApplicationList.Identifiers":      {"7.0", "10.15"},
		"ManagedApplicationList":                    {"5.0", "11.0"},
		"ManagedApplicationList.Identifiers":        {"7.0", ""},
		"ProfileList.ManagedOnly":                   {"13.0", "10.15"},
		"CertificateList.ManagedOnly":               {"13.0", "10.15"},
		"InstallApplication":                        {"5.0", "10.9"},
		"InstallApplication.Identifier":             {"7.0", ""},
		"InstallApplication.ManifestURL":            {"7.0", ""},
		"InstallApplication.Options":                {"7.0", ""},
		"InstallApplication.ManagementFlags":        {"", "11.0"},
		"InstallApplication.InstallAsManaged":       {"-", "11.0"},
		"RemoveApplication":                         {"5.0", "11.0"},
		"DeviceLock.Message":                        {"7.0", "10.14"},
		"DeviceLock.PhoneNumber":                    {"7.0", "11.5"},
		"DeviceLock.PIN":                            {"-", "10.8"},
		"EraseDevice.PIN":                           {"-", "10.8"},
		"EraseDevice.ObliterationBehavior":          {"-", "12.0"},
		"EraseDevice.PreserveDataPlan":              {"11.0", "-"},
		"EraseDevice.DisallowProximitySetup":        {"11.3", "-"},
		"RestartDevice":                             {"10.3", "10.13"},
		"RestartDevice.NotifyUser":                  {"-", "11.4"},
		"ShutDownDevice":                            {"10.3", "10.13"},
		"EnableLostMode":                            {"9.3", "-"},
		"DisableLostMode":                           {"9.3", "-"},
		"DeviceLocation":                            {"9.3", "-"},
		"ScheduleOSUpdate":                          {"9.0", "10.11"},
		"ScheduleOSUpdate.Updates.ProductVersion":   {"11.3", "12.0"},
		"ScheduleOSUpdate.Updates.MaxUserDeferrals": {"-", "12.0"},
		"ScheduleOSUpdate.Updates.Priority":         {"-", "12.3"},
	}
)

// predates reports whether the device's OS version is older than the one
// sinceVersion gives for name on its system.
func (d *Device) predates(name string) bool {
	v := sinceVersion[name]
	first := v[0]
	if d.mac() {
		first = v[1]
	}
	return first != "" && first != "-" && versionBelow(d.OSVersion, first)
}

// versionBelow compares dotted versions number by number; a version that
// does not read counts as below.
func versionBelow(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := 0; i < max(len(h), len(w)); i++ {
		var a, b int
		if i < len(h) {
			n, err := strconv.Atoi(h[i])
			if err != nil {
				return true
			}
			a = n
		}
		if i < len(w) {
			b, _ = strconv.Atoi(w[i])
		}
		if a != b {
			return a < b
		}
	}
	return false
}

// sentKeyItsVersionPredates names the first key of cmd that the device's
// OS version does not know, "" for none.
func (d *Device) sentKeyItsVersionPredates(rt string, cmd map[string]any) string {
	for k := range cmd {
		if d.predates(rt + "." + k) {
			return k
		}
	}
	updates, _ := cmd["Updates"].([]any)
	for _, u := range updates {
		update, _ := u.(map[string]any)
		for k := range update {
			if d.predates(rt + ".Updates." + k) {
				return "Updates." + k
			}
		}
	}
	return ""
}

// mac reports whether the device is a Mac, from its product name.
func (d *Device) mac() bool { return strings.Contains(d.ProductName, "Mac") }

// refuseCommand is the error chain of a command the device refuses for
// its system, enrolment or supervision; nil when it takes it. The code and
// text are the simulator's own.
func (d *Device) refuseCommand(cmd map[string]any) []map[string]any {
	rt, _ := cmd["RequestType"].(string)
	userEnrolled := d.EnrollmentID != ""
	var why string
	switch {
	case d.mac() && notOnMac[rt]:
		why = "This command is not supported on this Mac."
	case userEnrolled && (notOnUserEnrollment[rt] || d.mac() && notOnUserEnrolledMac[rt]):
		why = "This command is not allowed on a User Enrollment."
	case !d.Supervised && (supervisedOnIOS[rt] && !d.mac() || rt == "ScheduleOSUpdate"):
		why = "This command requires a supervised device."
	case !d.mac() && rt == "ScheduleOSUpdate" && macOnlyUpdate(cmd):
		why = "The install action is not supported on this device."
	case d.predates(rt):
		why = "This command is not supported on this version of the system."
	case d.sentKeyItsVersionPredates(rt, cmd) != "":
		why = "The key " + d.sentKeyItsVersionPredates(rt, cmd) + " is not supported on this version of the system."
	default:
		return nil
	}
	return []map[string]any{{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain", "LocalizedDescription": why}}
}

// macOnlyUpdate says whether a ScheduleOSUpdate asks for an install action
// only macOS has.
func macOnlyUpdate(cmd map[string]any) bool {
	updates, _ := cmd["Updates"].([]any)
	for _, u := range updates {
		update, _ := u.(map[string]any)
		if action, _ := update["InstallAction"].(string); macOnlyInstallActions[action] {
			return true
		}
	}
	return false
}

// securityInfo is what the device's system reports (information.security.yaml):
// a Mac its FileVault, firewall and System Integrity Protection, and no
// passcode; an iPhone its encryption capabilities, which are its hardware's
// whether or not a passcode is set, and its passcode, except that User
// Enrollment keeps whether a passcode is set to itself.
func (d *Device) securityInfo() map[string]any {
	status := map[string]any{"IsUserEnrollment": d.userEnrolled()}
	if d.mac() {
		status["EnrolledViaDEP"], status["UserApprovedEnrollment"] = d.Supervised, true
		info := map[string]any{"FDE_Enabled": !d.FileVaultOff, "SystemIntegrityProtectionEnabled": true, "ManagementStatus": status,
			"FirewallSettings": map[string]any{"FirewallEnabled": true, "BlockAllIncoming": false, "StealthMode": false}}
		if !d.userEnrolled() {
			info["FDE_HasPersonalRecoveryKey"], info["FDE_HasInstitutionalRecoveryKey"] = !d.FileVaultOff, false
		}
		return info
	}
	caps := 3 // block-level and file-level
	if d.BlockEncryptionOnly {
		caps = 1
	}
	info := map[string]any{"HardwareEncryptionCaps": caps, "PasscodeCompliant": !d.NoPasscode, "ManagementStatus": status}
	if !d.userEnrolled() {
		info["PasscodePresent"], info["PasscodeCompliantWithProfiles"] = !d.NoPasscode, !d.NoPasscode
	}
	return info
}

// answer builds the device's result for a command, with realistic payloads.
func (d *Device) answer(uuid string, cmd map[string]any) map[string]any {
	rt, _ := cmd["RequestType"].(string)
	res := map[string]any{"Status": "Acknowledged", "CommandUUID": uuid, "RequestType": rt}
	switch rt {
	case "DeviceInformation":
		res["QueryResponses"] = d.deviceInformation(cmd)
	case "SecurityInfo":
		res["SecurityInfo"] = d.securityInfo()
	case "DeviceLock":
		pin, _ := cmd["PIN"].(string)
		if d.IntelMac && pin == "" {
			res["Status"] = "Error"
			res["ErrorChain"] = []map[string]any{{"ErrorCode": 12021, "ErrorDomain": "MDMClientError",
				"LocalizedDescription": "A PIN is required to lock this Mac."}}
			break
		}
		d.LockPIN = pin
	case "InstallProfile":
		payload, _ := cmd["Payload"].([]byte)
		var top struct {
			PayloadIdentifier string `plist:"PayloadIdentifier"`
		}
		if _, err := plist.Unmarshal(payload, &top); err != nil || top.PayloadIdentifier == "" || d.RefuseProfiles {
			res["Status"] = "Error"
			res["ErrorChain"] = []map[string]any{{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain",
				"LocalizedDescription": "The profile could not be installed."}}
			break
		}
		d.Profiles[top.PayloadIdentifier] = payload
	case "RemoveProfile":
		if d.RefuseRemovals {
			res["Status"] = "Error"
			res["ErrorChain"] = []map[string]any{{"ErrorCode": 4002, "ErrorDomain": "MCProfileErrorDomain",
				"LocalizedDescription": "The profile could not be removed."}}
			break
		}
		id, _ := cmd["Identifier"].(string)
		delete(d.Profiles, id)
	case "InstallApplication":
		if chain := d.refuseApp(cmd); chain != nil {
			res["Status"], res["ErrorChain"] = "Error", chain
		}
	case "InstalledApplicationList":
		// A User Enrollment lists managed apps only, asked or not (Apple:
		// MDM sees the status of managed apps, not the user's own); any
		// other enrolment lists every app unless asked for managed ones,
		// personally owned or not: the device does not know who owns it.
		managedOnly, _ := cmd["ManagedAppsOnly"].(bool)
		managedOnly = (managedOnly || d.userEnrolled()) && !d.IgnoresManagedAppsOnly
		apps := []map[string]any{} // the list is required, even empty
		for i := 0; i < d.Apps; i++ {
			managed := i%4 == 0
			if managedOnly && !managed {
				continue
			}
			apps = append(apps, map[string]any{"Identifier": fmt.Sprintf("com.example.app%03d", i), "Name": fmt.Sprintf("App %d", i),
				"ShortVersion": "1.0", "Version": "100"})
		}
		res["InstalledApplicationList"] = apps
	case "ManagedApplicationList":
		apps := map[string]any{}
		for i := 0; i < d.Apps; i += 4 { // every fourth app is managed, as in the full list
			apps[fmt.Sprintf("com.example.app%03d", i)] = map[string]any{"Status": "Managed", "ManagementFlags": 1, "IsValidated": true}
		}
		for id, status := range d.AppStatuses {
			apps[id] = map[string]any{"Status": status, "ManagementFlags": 1}
		}
		res["ManagedApplicationList"] = apps
	case "ProfileList":
		res["ProfileList"] = d.profileList(d.Profiles, true)
	case "CertificateList":
		managedOnly, _ := cmd["ManagedOnly"].(bool)
		managedOnly = managedOnly && !d.IgnoresManagedCertificatesOnly
		certs := []map[string]any{{"CommonName": d.cert.Subject.CommonName, "IsIdentity": true, "Data": d.cert.Raw}}
		for _, c := range d.Certificates {
			if managedOnly && !c.Managed {
				continue
			}
			certs = append(certs, map[string]any{"CommonName": c.CommonName, "IsIdentity": c.Identity, "Data": c.Data})
		}
		res["CertificateList"] = certs
	case "EnableLostMode":
		d.InLostMode = true
	case "DisableLostMode":
		d.InLostMode = false
	case "DeviceLocation":
		if !d.InLostMode { // device.lostmode.location.yaml: 12067 outside Lost Mode
			res["Status"] = "Error"
			res["ErrorChain"] = []map[string]any{{"ErrorCode": 12067, "ErrorDomain": "MCMDMErrorDomain",
				"LocalizedDescription": "The device is not in Lost Mode."}}
			break
		}
		maps.Copy(res, location(time.Now()))
	}
	d.identify(res)
	return res
}

// Which DeviceInformation queries a device keeps back, from Apple's
// device-management schema. Written out here rather than shared with the
// server's table, so that each checks the other: a device records what it
// was asked and withheld (Device.Withheld), which a server should never ask.
var (
	// networkQueries need the network information access right (32).
	networkQueries = map[string]bool{"WiFiMAC": true, "BluetoothMAC": true, "EthernetMAC": true, "PhoneNumber": true,
		"ICCID": true, "CurrentCarrierNetwork": true, "ServiceSubscriptions": true}
	// hiddenFromUserEnrollment are never answered on a User Enrollment,
	// whatever the access rights (which it ignores).
	hiddenFromUserEnrollment = map[string]bool{"UDID": true, "SerialNumber": true, "IMEI": true, "MEID": true,
		"IsActivationLockEnabled": true, "WiFiMAC": true, "BluetoothMAC": true, "EthernetMAC": true, "PhoneNumber": true,
		"ICCID": true, "CurrentCarrierNetwork": true, "ServiceSubscriptions": true, "PINRequiredForDeviceLock": true,
		"PINRequiredForEraseDevice": true}
)

// deviceInformation answers the queries the device's enrolment lets it
// answer: those its profile's access rights cover, or on a User
// Enrollment those Apple does not keep from the organisation.
func (d *Device) deviceInformation(cmd map[string]any) map[string]any {
	modelName := "iPhone"
	switch {
	case d.mac():
		modelName = "Mac"
	case strings.HasPrefix(d.ProductName, "iPad"):
		modelName = "iPad"
	case strings.HasPrefix(d.ProductName, "RealityDevice"):
		modelName = "Apple Vision Pro"
	}
	all := map[string]any{"UDID": d.UDID, "SerialNumber": d.Serial, "DeviceName": "Simulated " + modelName, "OSVersion": d.OSVersion,
		"BuildVersion": "22B83", "ModelName": modelName, "Model": d.Model, "ProductName": d.ProductName, "DeviceCapacity": 256.0,
		"AvailableDeviceCapacity": 117.4, "BatteryLevel": 0.81, "IMEI": "35 693803 564380 9", "PhoneNumber": "+49 1575 5550100",
		"WiFiMAC": "a4:83:e7:12:34:56", "BluetoothMAC": "a4:83:e7:12:34:57", "IsSupervised": d.Supervised, "IsActivationLockEnabled": true,
		"CurrentCarrierNetwork": "Telekom.de", "ICCID": "8949 0200 0012 3456 7890"}
	if d.mac() {
		all["PINRequiredForDeviceLock"], all["PINRequiredForEraseDevice"] = d.IntelMac, d.IntelMac
	} else {
		all["IsMultiUser"] = d.SharedIPad
	}
	if !d.mac() && !versionBelow(d.OSVersion, "12.0") {
		// The telephony keys above are deprecated from iOS 16 but still
		// answered; ServiceSubscriptions, from iOS 12, lists every line.
		all["ServiceSubscriptions"] = d.serviceSubscriptions()
	}
	allowed := func(q string) bool {
		if d.EnrollmentID != "" {
			return !hiddenFromUserEnrollment[q]
		}
		switch {
		case q == "UDID":
			return true
		case networkQueries[q]:
			return d.profile.accessRights&uint64(mdmproto.AccessNetworkInformation) != 0
		default:
			return d.profile.accessRights&uint64(mdmproto.AccessDeviceInformation) != 0
		}
	}
	answers := map[string]any{}
	queries, _ := cmd["Queries"].([]any)
	for _, q := range queries {
		k, _ := q.(string)
		if !allowed(k) {
			d.Withheld = append(d.Withheld, k)
			continue
		}
		if v, ok := all[k]; ok && v != "" {
			answers[k] = v
		}
	}
	return answers
}

// refuseApp is the error chain of an app a device will not install, from
// application.install.yaml; nil when it installs. App Store apps go only
// as Apps and Books (VPP) assignments (Options.PurchaseMethod 1) under
// User Enrollment and on a Mac. InstallAsManaged is macOS's, forbidden on
// its User Enrollment with ManagementFlags; removing the app with the MDM
// profile (ManagementFlags 1) needs it on a Mac, which the simulator
// refuses without rather than install the app unmanaged. The code and
// text are the simulator's own.
func (d *Device) refuseApp(cmd map[string]any) []map[string]any {
	options, _ := cmd["Options"].(map[string]any)
	method, _ := options["PurchaseMethod"].(uint64)
	storeAppWithoutVPP := cmd["ManifestURL"] == nil && method != 1
	_, asManaged := cmd["InstallAsManaged"]
	managed, _ := cmd["InstallAsManaged"].(bool)
	flags, _ := cmd["ManagementFlags"].(uint64)
	userEnrolled := d.EnrollmentID != ""
	var why string
	switch {
	case storeAppWithoutVPP && userEnrolled:
		why = "User Enrollment installs only apps assigned through Apps and Books."
	case storeAppWithoutVPP && d.mac():
		why = "A Mac installs App Store apps only as Apps and Books assignments."
	case asManaged && !d.mac():
		why = "The key InstallAsManaged is not supported on this device."
	case d.mac() && userEnrolled && (asManaged || flags != 0):
		why = "InstallAsManaged and ManagementFlags are not allowed on a User Enrollment."
	case d.mac() && flags&1 != 0 && !managed:
		why = "Removing the app with the MDM profile needs InstallAsManaged."
	default:
		return nil
	}
	return []map[string]any{{"ErrorCode": 12064, "ErrorDomain": "MCMDMErrorDomain", "LocalizedDescription": why}}
}

// Send posts one command-endpoint message (a result or Idle) as the device
// and returns the server's answer; for tests of the protocol's edges.
func (d *Device) Send(ctx context.Context, msg map[string]any) ([]byte, error) {
	d.identify(msg)
	body, err := plist.Marshal(msg, plist.XMLFormat)
	if err != nil {
		return nil, err
	}
	return d.signed(ctx, d.serverURL, "application/x-apple-aspen-mdm", body)
}

// Forge makes d speak with other's certificate and key: a device claiming
// to be another one.
func (d *Device) Forge(other *Device) {
	d.cert, d.key, d.checkinURL, d.serverURL = other.cert, other.key, other.checkinURL, other.serverURL
}
