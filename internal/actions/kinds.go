// Package actions carries out remote actions on devices (lock, wipe,
// retire, delete, lost mode, locate, restart, sync, OS update: the table in
// kinds.go) with the rules that make them safe: a reason on every action,
// the ownership rules of the privacy policy, the admin's group scope, and a
// second admin's approval for the destructive ones and for large bulk
// actions.
package actions

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/rbac"
)

// Kind names a remote action.
type Kind string

const (
	Lock        Kind = "lock"
	Wipe        Kind = "wipe"   // full erase; personal devices only with the employee's consent
	Retire      Kind = "retire" // selective wipe: the management profile and everything it brought
	Delete      Kind = "delete" // forget a device that is gone; its personal data is erased
	LostMode    Kind = "lost_mode"
	EndLostMode Kind = "end_lost_mode"
	Locate      Kind = "locate"
	// Restart restarts the device at once, except a Mac on macOS 11.4 or
	// later, which only asks its user to restart (NotifyUser): while
	// someone is logged in, they may dismiss the request and the Mac keeps
	// running. It restarts at once only with no one logged in.
	Restart Kind = "restart"
	Sync    Kind = "sync" // refresh the inventory now
	// OSUpdate installs the OS version named in its options at once, or
	// else lets the device apply its updates as it would (supervised
	// devices). It is sent as ScheduleOSUpdate, which Apple removed after
	// iOS and macOS 26: a device that reported a later system is refused
	// it (mdm.SkipUnsupported), as declarative software update management,
	// its successor, is not offered yet.
	OSUpdate Kind = "os_update"
)

// kindInfo is what an action needs.
type kindInfo struct {
	kind       Kind
	permission rbac.Permission
	// twoPerson actions always need a second admin's approval.
	twoPerson bool
}

// table lists every action, in the order the API documents them: Kinds,
// the routes' summaries and the OpenAPI document all read it.
var table = []kindInfo{
	{Lock, "device.lock", false},
	{Wipe, "device.wipe", true},
	{Retire, "device.wipe", true},
	{Delete, "device.wipe", true},
	{LostMode, "device.locate", false},
	{EndLostMode, "device.locate", false},
	{Locate, "device.locate", false},
	{Restart, "device.lock", false},
	// A refresh queues commands and wakes the device: an act, not a read.
	{Sync, "device.lock", false},
	{OSUpdate, "device.lock", false},
}

// kinds is table by action.
var kinds = func() map[Kind]kindInfo {
	m := make(map[Kind]kindInfo, len(table))
	for _, i := range table {
		m[i.kind] = i
	}
	return m
}()

// Permission is what an admin needs to request (or approve) the action.
func Permission(k Kind) (rbac.Permission, bool) {
	i, ok := kinds[k]
	return i.permission, ok
}

// Kinds lists the action names, for documentation and errors.
func Kinds() []string {
	out := make([]string, len(table))
	for i, k := range table {
		out[i] = string(k.kind)
	}
	return out
}

// EnumValues lists the actions for the OpenAPI document.
func (Kind) EnumValues() []string { return Kinds() }

// Options are the action's parameters. PIN is a secret: it only ever lives
// sealed (in a waiting approval, then in the queued command).
type Options struct {
	// Message and PhoneNumber show on the lock screen (lock, lost mode).
	Message     string `json:"message,omitempty"`
	PhoneNumber string `json:"phone_number,omitempty"`
	Footnote    string `json:"footnote,omitempty"`
	// PIN is the six-digit Find My PIN macOS needs for lock and wipe;
	// iPhones and iPads are sent none.
	PIN string `json:"pin,omitempty"`
	// PreserveDataPlan keeps the eSIM's plan on a wipe (iPhones and iPads;
	// Macs are sent none).
	PreserveDataPlan bool `json:"preserve_data_plan,omitempty"`
	// ProductVersion is the OS version an OS update installs at once;
	// without it the device applies the updates it has as it would anyway.
	ProductVersion string `json:"product_version,omitempty"`
}

var (
	pinPattern     = regexp.MustCompile(`^[0-9]{6}$`)
	versionPattern = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,3}){0,3}$`)
)

// Validate checks the options fit the action. The direct command route
// applies it too, to the commands an action also sends.
func (o Options) Validate(k Kind) error {
	for name, v := range map[string]string{"message": o.Message, "phone_number": o.PhoneNumber, "footnote": o.Footnote} {
		if utf8.RuneCountInString(v) > 200 {
			return apperr.Invalid("%s is limited to 200 characters", name)
		}
	}
	if o.PIN != "" {
		if k != Lock && k != Wipe {
			return apperr.Invalid("a PIN is only used by lock and wipe")
		}
		if !pinPattern.MatchString(o.PIN) {
			return apperr.Invalid("the PIN must be exactly six digits")
		}
	}
	if o.ProductVersion != "" {
		if k != OSUpdate {
			return apperr.Invalid("a product version is only used by an OS update")
		}
		if !versionPattern.MatchString(o.ProductVersion) {
			return apperr.Invalid("product_version must be an OS version such as 18.1.1")
		}
	}
	if k == LostMode && strings.TrimSpace(o.Message) == "" && strings.TrimSpace(o.PhoneNumber) == "" {
		return apperr.Invalid("lost mode needs a message or a phone number to show on the lock screen")
	}
	if (o.Message != "" || o.PhoneNumber != "") && k != Lock && k != LostMode {
		return apperr.Invalid("a message or phone number is only shown by lock and lost mode")
	}
	return nil
}

// requests turns an action into the MDM commands that carry it out on a
// device of platform. Retire needs the device's management profile
// identifier; Delete sends nothing.
func requests(k Kind, o Options, enrolmentProfile, platform string) []mdmproto.Request {
	switch k {
	case Lock:
		return []mdmproto.Request{mdmproto.DeviceLock{Message: o.Message, PhoneNumber: o.PhoneNumber, PIN: mdmproto.SecretString(o.PIN)}}
	case Wipe:
		erase := mdmproto.EraseDevice{PIN: mdmproto.SecretString(o.PIN), PreserveDataPlan: o.PreserveDataPlan}
		if platform == "macos" {
			erase.ObliterationBehavior = macObliteration
		}
		return []mdmproto.Request{erase}
	case Retire:
		// Removing the management profile removes every managed profile,
		// app and account it brought: Apple's selective wipe.
		return []mdmproto.Request{mdmproto.RemoveProfile{Identifier: enrolmentProfile}}
	case LostMode:
		return []mdmproto.Request{mdmproto.EnableLostMode{Message: o.Message, PhoneNumber: o.PhoneNumber, Footnote: o.Footnote}}
	case EndLostMode:
		return []mdmproto.Request{mdmproto.DisableLostMode{}}
	case Locate:
		return []mdmproto.Request{mdmproto.DeviceLocation{}}
	case Restart:
		return []mdmproto.Request{mdmproto.RestartDevice{NotifyUser: true}}
	case Sync:
		return []mdmproto.Request{mdmproto.DeviceInformation{}, mdmproto.SecurityInfo{}, mdmproto.CertificateList{ManagedOnly: true},
			mdmproto.InstalledApplicationList{}}
	case OSUpdate:
		if o.ProductVersion == "" {
			return []mdmproto.Request{mdmproto.ScheduleOSUpdate{}}
		}
		return []mdmproto.Request{mdmproto.ScheduleOSUpdate{Updates: []mdmproto.OSUpdate{{ProductVersion: o.ProductVersion,
			InstallAction: installNow(platform)}}}}
	}
	return nil
}

// macObliteration is what a Mac whose Erase All Content and Settings
// cannot run does instead (device.erase.yaml, macOS 12 and later; mdm
// leaves it out before). Under Default it answers Error and erases itself
// all the same, so Steward would record a failed wipe and keep the erased
// Mac enrolled; under ObliterateWithWarning it erases itself too but
// answers Acknowledged, which is what happened.
const macObliteration = "ObliterateWithWarning"

// installNow is the ScheduleOSUpdate install action that installs an
// update soonest (system.update.schedule.yaml): on a Mac InstallASAP
// downloads it and starts the restart countdown; on an iPhone or iPad it
// installs only an update already downloaded, where Default downloads or
// installs it, whichever is due.
func installNow(platform string) string {
	if platform == "macos" {
		return "InstallASAP"
	}
	return "Default"
}
