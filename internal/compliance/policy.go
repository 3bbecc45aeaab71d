// Package compliance evaluates devices against compliance policies, runs
// each policy's graduated ladder of actions, answers conditional-access
// questions, and builds the compliance reports auditors ask for.
package compliance

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/device"
)

// Rules are what a compliant device satisfies. Zero values do not check.
type Rules struct {
	// MinOSVersion: the OS is at least this version; the policy names its
	// platform (PolicyInput). Before MinOSDeadline (when set) an older OS
	// is reported but does not count against the device, so people get
	// time to update.
	MinOSVersion  string    `json:"min_os_version,omitempty"`
	MinOSDeadline time.Time `json:"min_os_deadline,omitzero"`
	// PasscodeRequired: a passcode is set and meets the passcode rules on
	// the device. Under User Enrollment only the latter is known; on a Mac
	// the rule does not apply (Macs report no passcode).
	PasscodeRequired bool `json:"passcode_required,omitempty"`
	// EncryptionRequired: storage is encrypted (data protection, which
	// needs a passcode, or FileVault). Under User Enrollment on an iPhone
	// or iPad only its failure for want of hardware encryption is known:
	// whether a passcode is set is not reported there.
	EncryptionRequired bool `json:"encryption_required,omitempty"`
	// NotCompromised: System Integrity Protection is on. Only a Mac
	// reports it, and Apple's MDM reports no jailbreak: on an iPhone or
	// iPad the rule does not apply.
	NotCompromised bool `json:"not_compromised,omitempty"`
	// CheckedInWithinDays: the device checked in this recently.
	CheckedInWithinDays int `json:"checked_in_within_days,omitempty"`
	// RequiredProfiles are profile IDs that must be installed.
	RequiredProfiles []string `json:"required_profiles,omitempty"`
	// ForbiddenApps are bundle IDs that must be absent, besides the apps the
	// tenant's catalogue blocks, which every policy forbids.
	ForbiddenApps []string `json:"forbidden_apps,omitempty"`
	// RequiredApps are bundle IDs that must be installed.
	RequiredApps []string `json:"required_apps,omitempty"`
}

// Ladder actions, in the order a ladder may use them.
const (
	StepNotify           = "notify"            // e-mail the employee what to fix
	StepMarkNoncompliant = "mark_noncompliant" // conditional access starts refusing
	StepLock             = "lock"              // lock the device
	StepRetire           = "retire"            // request a retire (a second admin approves it)
)

var stepOrder = []string{StepNotify, StepMarkNoncompliant, StepLock, StepRetire}

// Step is one rung of the ladder: its action, this long after the device
// started failing.
type Step struct {
	Action     string `json:"action"`
	AfterHours int    `json:"after_hours"`
}

// Ladder is a policy's graduated response, ordered by time.
type Ladder []Step

var bundleID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.\-]{0,254}$`)

// Validate checks the rules can be met and say something.
func (r Rules) Validate() error {
	if r.MinOSVersion != "" && device.VersionKey(r.MinOSVersion) == "" {
		return apperr.Invalid("min_os_version %q is not a version like 17.4 or 14.6.1", r.MinOSVersion)
	}
	if !r.MinOSDeadline.IsZero() && r.MinOSVersion == "" {
		return apperr.Invalid("min_os_deadline needs min_os_version")
	}
	if r.CheckedInWithinDays < 0 || r.CheckedInWithinDays > 365 {
		return apperr.Invalid("checked_in_within_days must be between 1 and 365 (0: not checked)")
	}
	for _, list := range []struct {
		name string
		ids  []string
	}{{"forbidden_apps", r.ForbiddenApps}, {"required_apps", r.RequiredApps}} {
		if len(list.ids) > 500 {
			return apperr.Invalid("%s is limited to 500 apps", list.name)
		}
		for _, id := range list.ids {
			if !bundleID.MatchString(id) {
				return apperr.Invalid("%s: %q is not a bundle identifier like com.example.app", list.name, id)
			}
		}
	}
	for _, id := range r.RequiredApps {
		if slices.Contains(r.ForbiddenApps, id) {
			return apperr.Invalid("%s is both required and forbidden: no device could comply", id)
		}
	}
	if len(r.RequiredProfiles) > 100 {
		return apperr.Invalid("required_profiles is limited to 100 profiles")
	}
	if !r.any() {
		return apperr.Invalid("the policy checks nothing: set at least one rule")
	}
	return nil
}

func (r Rules) any() bool {
	return r.MinOSVersion != "" || r.PasscodeRequired || r.EncryptionRequired || r.NotCompromised || r.CheckedInWithinDays > 0 ||
		len(r.RequiredProfiles) > 0 || len(r.ForbiddenApps) > 0 || len(r.RequiredApps) > 0
}

// needsApps reports whether evaluating the rules reads the app list;
// blocked are the catalogue's blocklisted apps.
func (r Rules) needsApps(blocked []string) bool {
	return len(r.ForbiddenApps) > 0 || len(blocked) > 0 || len(r.RequiredApps) > 0
}

// Validate checks the ladder: known actions, each at most once, in
// escalating order, within a year.
func (l Ladder) Validate() error {
	if len(l) > len(stepOrder) {
		return apperr.Invalid("a ladder has at most %d steps", len(stepOrder))
	}
	last, lastHours := -1, -1
	for i, s := range l {
		rank := slices.Index(stepOrder, s.Action)
		switch {
		case rank < 0:
			return apperr.Invalid("ladder[%d]: unknown action %q; one of %s", i, s.Action, strings.Join(stepOrder, ", "))
		case rank <= last:
			return apperr.Invalid("ladder[%d]: %s must come before the steps it follows and appear once (order: %s)",
				i, s.Action, strings.Join(stepOrder, ", "))
		case s.AfterHours < 0 || s.AfterHours > 24*365:
			return apperr.Invalid("ladder[%d]: after_hours must be between 0 and 8760", i)
		case s.AfterHours < lastHours:
			return apperr.Invalid("ladder[%d]: %s comes after an earlier step, so after_hours must be at least %d", i, s.Action, lastHours)
		}
		last, lastHours = rank, s.AfterHours
	}
	return nil
}

// marksAt returns when a failing device becomes noncompliant: the
// mark_noncompliant step, or at once when the ladder has none.
func (l Ladder) marksAt(since time.Time) time.Time {
	for _, s := range l {
		if s.Action == StepMarkNoncompliant {
			return since.Add(time.Duration(s.AfterHours) * time.Hour)
		}
	}
	return since
}

// DefaultLadder notifies at once, marks noncompliant after a day and locks
// after a week; retiring is left for an admin to add.
func DefaultLadder() Ladder {
	return Ladder{{StepNotify, 0}, {StepMarkNoncompliant, 24}, {StepLock, 24 * 7}}
}

// Policy is a validated compliance policy.
type Policy struct {
	ID        string
	Name      string
	Platform  string
	Ownership string
	GroupID   string
	Rules     Rules
	Ladder    Ladder
	Enabled   bool
	// Editor is the admin who last changed the policy.
	Editor string
}

// ParseRules decodes and validates rules JSON.
func ParseRules(raw []byte) (Rules, error) {
	var r Rules
	if err := strictJSON(raw, &r); err != nil {
		return r, apperr.Invalid("rules: %v", err)
	}
	return r, r.Validate()
}

// ParseLadder decodes and validates ladder JSON, sorted by time.
func ParseLadder(raw []byte) (Ladder, error) {
	var l Ladder
	if err := strictJSON(raw, &l); err != nil {
		return nil, apperr.Invalid("ladder: %v", err)
	}
	sort.SliceStable(l, func(i, j int) bool { return l[i].AfterHours < l[j].AfterHours })
	return l, l.Validate()
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}
