package compliance

import (
	"fmt"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/privacy"
)

// Facts are what compliance knows about one device. Nil pointers and a nil
// Apps set mean "not reported".
type Facts struct {
	Platform          string
	Ownership         string
	OSVersion         string
	PasscodePresent   *bool
	PasscodeCompliant *bool
	Encrypted         *bool
	Compromised       *bool
	LastSeen          time.Time
	// Profiles holds the IDs of the Steward profiles installed.
	Profiles map[string]bool
	// ProfilesNotApplicable holds the IDs of profiles the device cannot
	// take at their current version (an earlier one may still be on it,
	// its removal under way).
	ProfilesNotApplicable map[string]bool
	// Apps holds the installed bundle IDs; nil when no app list is known.
	Apps map[string]bool
	// AppsHidden: the privacy policy keeps the device's app list from
	// admins (hidden or not collected), so Apps is nil. Outcomes are shown
	// to every admin who reads the device: an app rule judged on a hidden
	// list would tell them what the mask keeps back.
	AppsHidden bool
}

// Violation is one rule a device fails, with what to do about it in words
// the employee understands.
type Violation struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	// Unknown: the device has not reported the fact yet.
	Unknown bool `json:"unknown,omitempty"`
	// Warning: failing, but not counted yet (an OS deadline in the future).
	Warning bool `json:"warning,omitempty"`
}

// Outcome is a device's result under one policy.
type Outcome struct {
	// Result is pass, fail or unknown (nothing failed, something unknown).
	Result     string      `json:"result"`
	Violations []Violation `json:"violations,omitempty"`
}

// Results of an evaluation.
const (
	Pass    = "pass"
	Fail    = "fail"
	Unknown = "unknown"
)

// Evaluate checks facts against the rules at now. blocked lists the
// tenant's blocklisted catalogue apps, forbidden by every policy.
func (r Rules) Evaluate(f Facts, now time.Time, blocked []string) Outcome {
	var vs []Violation
	fail := func(rule, reason string) { vs = append(vs, Violation{Rule: rule, Reason: reason}) }
	unknown := func(rule, reason string) { vs = append(vs, Violation{Rule: rule, Reason: reason, Unknown: true}) }
	if r.MinOSVersion != "" {
		key := device.VersionKey(f.OSVersion)
		switch {
		case key == "":
			unknown("min_os_version", "The device has not reported its OS version yet.")
		case key < device.VersionKey(r.MinOSVersion):
			v := Violation{Rule: "min_os_version",
				Reason: fmt.Sprintf("Update the operating system to %s or later (this device runs %s).", r.MinOSVersion, f.OSVersion)}
			if !r.MinOSDeadline.IsZero() && now.Before(r.MinOSDeadline) {
				v.Warning = true
				v.Reason = fmt.Sprintf("Update the operating system to %s or later before %s (this device runs %s).",
					r.MinOSVersion, r.MinOSDeadline.UTC().Format("2 January 2006"), f.OSVersion)
			}
			vs = append(vs, v)
		}
	}
	mac, userEnrolled := f.Platform == "macos", f.Ownership == string(privacy.UserEnrolled)
	if r.PasscodeRequired {
		switch {
		case mac:
			// Does not apply: a Mac reports no passcode
			// (information.security.yaml); its users' login passwords are
			// out of MDM's sight. A passcode profile, as a required
			// profile, is how a policy enforces them.
		case f.PasscodePresent == nil && userEnrolled && f.PasscodeCompliant != nil:
			// User Enrollment never says whether a passcode is set, only
			// whether it meets every requirement on the device; with none
			// there (a passcode payload or a mail account's), the rule
			// passes whether or not one is set.
			if !*f.PasscodeCompliant {
				fail("passcode", "Set a passcode that meets your organisation's passcode rules.")
			}
		case f.PasscodePresent == nil:
			unknown("passcode", "The device has not reported whether a passcode is set.")
		case !*f.PasscodePresent:
			fail("passcode", "Set a passcode on the device.")
		case f.PasscodeCompliant != nil && !*f.PasscodeCompliant:
			fail("passcode", "Change the passcode: it does not meet your organisation's passcode rules.")
		}
	}
	if r.EncryptionRequired {
		switch {
		case userEnrolled && !mac && f.Encrypted != nil && !*f.Encrypted:
			// information.security.yaml: data protection needs
			// HardwareEncryptionCaps 3 and PasscodePresent true. User
			// Enrollment is sent HardwareEncryptionCaps, and without both
			// levels no passcode protects the data: that fails the rule.
			// It is the only false stored for it, as PasscodePresent is
			// forbidden there.
			fail("encryption", "This device's hardware does not report both block-level and file-level encryption (HardwareEncryptionCaps), "+
				"so it has no data protection, with a passcode or without; use a device that supports data protection.")
		case userEnrolled && !mac:
			// The hardware is capable, and whether a passcode is set is
			// all that is left: User Enrollment never reports
			// PasscodePresent (nor PasscodeCompliantWithProfiles), and
			// PasscodeCompliant is true as well when no requirement asks
			// for a passcode, so it does not tell. A true stored anyway
			// came from the hardware alone, as Steward read it before it
			// asked for a passcode too, and stays until the device leaves.
			// (A Mac's User Enrollment reports FDE_Enabled: decided below.)
			unknown("encryption", "With User Enrollment the device does not tell your organisation whether a passcode is set, "+
				"only whether its passcode meets the requirements on it, so whether a passcode protects its data "+
				"cannot be checked; your IT team needs to change the compliance policy.")
		case f.Encrypted == nil:
			unknown("encryption", "The device has not reported whether its storage is encrypted.")
		case !*f.Encrypted && mac:
			fail("encryption", "Turn on FileVault.")
		case !*f.Encrypted:
			fail("encryption", "Set a passcode on the device: without one its data is not protected.")
		}
	}
	if r.NotCompromised {
		// Read from System Integrity Protection, which only a Mac reports
		// (information.security.yaml: n/a on iOS); Apple's MDM reports no
		// jailbreak, so on an iPhone or iPad the rule does not apply,
		// rather than stay unknown for good.
		switch {
		case f.Platform == "ios" || f.Platform == "ipados":
		case f.Compromised == nil:
			unknown("not_compromised", "The device has not reported whether System Integrity Protection is on yet.")
		case *f.Compromised:
			fail("not_compromised", "System Integrity Protection is turned off on this Mac; turn it back on in macOS Recovery (csrutil enable).")
		}
	}
	if r.CheckedInWithinDays > 0 && now.Sub(f.LastSeen) > time.Duration(r.CheckedInWithinDays)*24*time.Hour {
		fail("checked_in", fmt.Sprintf("Connect the device to the internet so it can check in (required every %d days).", r.CheckedInWithinDays))
	}
	for _, id := range r.RequiredProfiles {
		if f.Profiles[id] {
			continue
		}
		if f.ProfilesNotApplicable[id] {
			fail("required_profile", "A required configuration profile cannot be installed on this kind of device; "+
				"your IT team needs to change the profile or the compliance policy.")
		} else {
			fail("required_profile", "A required configuration profile is not installed yet; keep the device online so it can be installed.")
		}
		break
	}
	if r.needsApps(blocked) {
		switch {
		case f.AppsHidden:
			unknown("apps", "Your organisation's privacy settings keep this device's apps from its administrators, so app rules "+
				"cannot be checked on it; your IT team needs to change the compliance policy or the privacy settings.")
		case f.Apps == nil:
			unknown("apps", "The device has not reported its managed apps yet.")
		default:
			forbidden := append(r.ForbiddenApps[:len(r.ForbiddenApps):len(r.ForbiddenApps)], blocked...)
			// Which forbidden app is there stays unsaid: the app list is
			// personal data, and this reason is stored, shown to admins and
			// sent to proxies. The employee sees the list on the device.
			if slices.ContainsFunc(forbidden, func(id string) bool { return f.Apps[id] }) {
				fail("forbidden_app", "Remove the apps your organisation does not allow (listed in its app catalogue).")
			}
			for _, id := range r.RequiredApps {
				if !f.Apps[id] {
					fail("required_app", fmt.Sprintf("Install the app %s from your organisation's app catalogue.", id))
				}
			}
		}
	}
	out := Outcome{Result: Pass, Violations: vs}
	for _, v := range vs {
		switch {
		case v.Warning:
		case v.Unknown:
			if out.Result == Pass {
				out.Result = Unknown
			}
		default:
			out.Result = Fail
		}
	}
	return out
}
