// Package rbac declares every permission Steward knows and the built-in
// roles made of them. Routes name one permission each (internal/api); this
// package is the vocabulary, and docs/permissions.md is generated from it.
package rbac

import (
	"slices"
	"sort"
)

// Permission is a capability on a tenant (and the customer tenants below it).
type Permission string

// Doc describes a permission for people choosing a custom role.
type Doc struct {
	Permission  Permission
	Description string
}

// The permission list. Adding one here is all it takes for custom roles to
// use it; removing one breaks stored roles, so deprecate instead.
var All = []Doc{
	{"tenant.read", "See the tenant, its settings and its customer tenants."},
	{"tenant.manage", "Create and change customer tenants; change MFA and IP allowlist settings."},
	{"tenant.delete", "Delete a customer tenant."},
	{"admin.read", "List admins and their role assignments."},
	{"admin.manage", "Invite, change, disable and delete admins; reset their MFA."},
	{"admin.owner", "Grant and revoke the Owner role."},
	{"role.read", "List roles and their permissions."},
	{"role.manage", "Create, change and delete custom roles; assign and unassign roles."},
	{"token.read", "List API tokens (never their secrets)."},
	{"token.manage", "Create and revoke API tokens."},
	{"audit.read", "Read the audit log and its checkpoints."},
	{"audit.export", "Export the audit log with its checkpoints for offline verification."},
	{"audit.checkpoint", "Make a signed audit checkpoint on demand."},
	{"system.metrics", "Read Prometheus metrics."},
	{"device.read", "See devices and their inventory (personal fields masked)."},
	{"device.lock", "Lock, restart, shut down, update or refresh a device; clear its passcode (needs a reason)."},
	{"device.locate", "Locate a corporate device, or put it in or out of Lost Mode (needs a reason)."},
	{"device.wipe", "Wipe or retire a device."},
	{"device.manage", "Enrol, configure and delete devices; manage profiles, groups and policies."},
	{"settings.manage", "Change tenant-wide device management settings."},
	{"privacy.read", "See privacy settings, the data catalogue and the record of processing."},
	{"privacy.manage", "Change collection policy, retention, notices and outbound-flow consent."},
	{"privacy.export", "Export the data held about a person."},
	{"privacy.erase", "Erase a person's data."},
	{"privacy.reveal", "Reveal a masked personal field, find a device by a masked serial number, or ask whether an account used a Mac, with a reason."},
	{"incident.manage", "Record and manage breaches and incidents."},
	{"report.read", "Read compliance and inventory reports."},
	{"report.schedule", "Mail reports to admins on a schedule, and stop any schedule."},
}

var known = func() map[Permission]bool {
	m := make(map[Permission]bool, len(All))
	for _, d := range All {
		m[d.Permission] = true
	}
	return m
}()

// Known reports whether p is a declared permission.
func Known(p Permission) bool { return known[p] }

// GroupScopable reports whether perm can be granted for some device groups
// only: the permissions that act on devices one by one.
func GroupScopable(p Permission) bool {
	switch p {
	case "device.read", "device.lock", "device.locate", "device.wipe":
		return true
	}
	return false
}

// BuiltinRole is a role defined in code, the same in every tenant.
type BuiltinRole struct {
	ID          string
	Name        string
	Description string
	Permissions []Permission
}

func allExcept(excluded ...Permission) []Permission {
	var out []Permission
	for _, d := range All {
		if !slices.Contains(excluded, d.Permission) {
			out = append(out, d.Permission)
		}
	}
	return out
}

// Builtin roles. IDs are stable: they are stored in assignments.
var Builtin = []BuiltinRole{
	{"owner", "Owner", "Everything, including granting Owner and deleting customer tenants.", allExcept()},
	{"administrator", "Administrator", "Everything except granting Owner and deleting customer tenants.",
		allExcept("admin.owner", "tenant.delete")},
	{"helpdesk", "Help Desk", "Read devices, lock and locate them; no wipe, no settings.",
		[]Permission{"tenant.read", "device.read", "device.lock", "device.locate", "report.read"}},
	{"privacy_officer", "Privacy Officer", "Privacy settings, exports, erasure and incidents; no device actions.",
		[]Permission{"tenant.read", "device.read", "audit.read", "audit.export", "privacy.read", "privacy.manage",
			"privacy.export", "privacy.erase", "privacy.reveal", "incident.manage", "report.read", "report.schedule"}},
	{"auditor", "Auditor", "Read-only, including the audit log; never reveals personal data.",
		[]Permission{"tenant.read", "admin.read", "role.read", "token.read", "audit.read", "audit.export",
			"device.read", "privacy.read", "report.read"}},
	{"readonly", "Read Only", "Read tenants, admins, roles and devices.",
		[]Permission{"tenant.read", "admin.read", "role.read", "device.read", "report.read"}},
}

// BuiltinByID returns the built-in role with that ID.
func BuiltinByID(id string) (BuiltinRole, bool) {
	for _, r := range Builtin {
		if r.ID == id {
			return r, true
		}
	}
	return BuiltinRole{}, false
}

// Set is a set of permissions.
type Set map[Permission]bool

func NewSet(ps ...Permission) Set {
	s := make(Set, len(ps))
	for _, p := range ps {
		s[p] = true
	}
	return s
}

func (s Set) Has(p Permission) bool { return s[p] }

// Add merges other into s.
func (s Set) Add(other Set) {
	for p := range other {
		s[p] = true
	}
}

// Covers reports whether s holds every permission in ps: an admin may only
// hand out (in a custom role, an assignment or a token) what they hold.
func (s Set) Covers(ps []Permission) bool {
	for _, p := range ps {
		if !s[p] {
			return false
		}
	}
	return true
}

// Sorted lists the permissions in a stable order.
func (s Set) Sorted() []Permission {
	out := make([]Permission, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
