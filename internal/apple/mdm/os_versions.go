package mdm

import (
	"slices"
	"strconv"
	"strings"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/store"
)

// since picks the version of Apple's schema for d's system: iOS's or
// macOS's introduced value, "" for none later than the protocol's first
// release (iOS 4, macOS 10.7). "n/a" marks a key the system lacks.
func since(d store.Device, iOS, macOS string) string {
	switch schemaOS(d.Platform) {
	case osIOS:
		return iOS
	case osMacOS:
		return macOS
	}
	return "" // platform unknown: no system's rule applies
}

// runsAtLeast reports whether d's OS version is min or later; an empty min
// always holds, "n/a" never. An unknown version holds too: Authenticate
// tells it unless the collection policy keeps no OS facts, and then
// refusing would leave the device unmanageable for good, while the device
// itself answers Error to what it predates. A list it would not narrow is
// filtered by Steward on personal devices anyway (managed apps and
// certificates).
func runsAtLeast(d store.Device, min string) bool {
	if min == "" {
		return true
	}
	want, ok := parseOSVersion(min)
	if !ok {
		return false
	}
	have, ok := parseOSVersion(d.OSVersion)
	return !ok || slices.Compare(have, want) >= 0
}

// parseOSVersion reads "17.4.1" as [17 4 1 0]; ok is false for anything
// else, "n/a" included.
func parseOSVersion(v string) ([]int, bool) {
	parts := strings.Split(strings.TrimSpace(v), ".")
	if len(parts) > 4 {
		return nil, false
	}
	out := make([]int, 4)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// tooOld refuses what (a command, or a command with a key) that d's OS
// version predates: min is when Apple's schema introduced it.
func tooOld(d store.Device, what, min string) error {
	sys := schemaOS(d.Platform)
	if min == "n/a" {
		return apperr.Conflict("%s is not supported on %s: this device is %s", what, sys, deviceKind(d)).With("reason", SkipUnsupported)
	}
	return apperr.Conflict("%s needs %s %s or later, and this device (%s) runs %s: update its system first",
		what, sys, min, deviceKind(d), d.OSVersion).With("reason", SkipUnsupported)
}

// queryIntroduced is, for the DeviceInformation queries Steward's catalogue
// asks, when information.device.yaml says each system introduced them,
// where later than the protocol's first release. macOS has no telephony
// query; which of them an iPhone or iPad is asked, its version decides
// (telephonyQueries).
var queryIntroduced = map[string][2]string{ // iOS, macOS
	"BatteryLevel":            {"5.0", "13.3"},
	"IsSupervised":            {"6.0", "10.15"},
	"IsMultiUser":             {"9.3", "n/a"},
	"IsActivationLockEnabled": {"7.0", "10.15"},
	// Only Macs say whether a lock or erase needs the Find My PIN
	// (findMyPINRequired decides for those that cannot).
	"PINRequiredForDeviceLock":  {"n/a", "11.0"},
	"PINRequiredForEraseDevice": {"n/a", "11.0"},
	"IMEI":                      {"", "n/a"},
	"MEID":                      {"", "n/a"},
	"ICCID":                     {"", "n/a"},
	"PhoneNumber":               {"", "n/a"},
	"CurrentCarrierNetwork":     {"", "n/a"},
	"ServiceSubscriptions":      {"12.0", "n/a"},
}

// deprecatedTelephonyQueries are the telephony queries of Steward's
// catalogue that information.device.yaml deprecates in iOS 16, where
// ServiceSubscriptions answers for them, one entry per subscription.
var deprecatedTelephonyQueries = []string{"CurrentCarrierNetwork", "ICCID", "IMEI", "MEID", "PhoneNumber"}

// subscriptionsFrom is the iOS version from which an iPhone or iPad is
// asked ServiceSubscriptions in place of the deprecated telephony queries;
// before, it is asked those, as ever.
const subscriptionsFrom = "16.0"

// telephonyQueries picks, of the queries the policy and the enrolment's
// rights left, the kind of telephony query d's version answers as Apple
// intends (both kinds stand for the same telephony fields):
// ServiceSubscriptions on iOS 16 or later (an unknown version counts as
// later, as in runsAtLeast), the deprecated queries before and on any
// other system. Neither kind is added: the deprecated queries stay where
// ServiceSubscriptions is not asked (a command naming them alone, or an
// enrolment without the network information right it needs), and
// ServiceSubscriptions stays where they are not. A personally owned device
// is never asked ServiceSubscriptions (ownershipRules).
func telephonyQueries(queries []string, d store.Device) []string {
	deprecated := func(q string) bool { return slices.Contains(deprecatedTelephonyQueries, q) }
	switch {
	case !slices.Contains(queries, "ServiceSubscriptions") || !slices.ContainsFunc(queries, deprecated):
		return queries
	case schemaOS(d.Platform) == osIOS && runsAtLeast(d, subscriptionsFrom):
		return slices.DeleteFunc(slices.Clone(queries), deprecated)
	}
	return slices.DeleteFunc(slices.Clone(queries), func(q string) bool { return q == "ServiceSubscriptions" })
}

// queriesFor leaves out the queries d's system or OS version does not
// answer; with none left the command is refused.
func queriesFor(r mdmproto.DeviceInformation, d store.Device) (mdmproto.Request, error) {
	asked := slices.DeleteFunc(telephonyQueries(slices.Clone(r.Queries), d), func(q string) bool {
		v := queryIntroduced[q]
		return !runsAtLeast(d, since(d, v[0], v[1]))
	})
	if len(asked) == 0 {
		return nil, apperr.Conflict("this device (%s) answers none of the queries %v", deviceKind(d), r.Queries).With("reason", SkipUnsupported)
	}
	r.Queries = asked
	return r, nil
}

// listsFor refuses a list command whose narrowing keys d's OS version
// predates: without them the device would list everything (the
// employee's own items on a personal device), so Steward does not ask.
func listsFor(r mdmproto.Request, d store.Device) (mdmproto.Request, error) {
	switch r := r.(type) {
	case mdmproto.InstalledApplicationList:
		// application.installed.list.yaml: ManagedAppsOnly and Identifiers.
		if min := since(d, "7.0", "10.15"); (r.ManagedAppsOnly || len(r.Identifiers) > 0) && !runsAtLeast(d, min) {
			return nil, tooOld(d, "InstalledApplicationList with ManagedAppsOnly or Identifiers", min)
		}
	case mdmproto.ManagedApplicationList:
		// application.managed.list.yaml: Identifiers (macOS: with the command).
		if min := since(d, "7.0", ""); len(r.Identifiers) > 0 && !runsAtLeast(d, min) {
			return nil, tooOld(d, "ManagedApplicationList with Identifiers", min)
		}
	case mdmproto.ProfileList:
		if min := since(d, "13.0", "10.15"); r.ManagedOnly && !runsAtLeast(d, min) { // profile.list.yaml
			return nil, tooOld(d, "ProfileList with ManagedOnly", min)
		}
	case mdmproto.CertificateList:
		if min := since(d, "13.0", "10.15"); r.ManagedOnly && !runsAtLeast(d, min) { // certificate.list.yaml
			return nil, tooOld(d, "CertificateList with ManagedOnly", min)
		}
	}
	return r, nil
}
