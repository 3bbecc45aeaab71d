package privacy

import (
	"fmt"
	"maps"
	"slices"
)

// Ownership says whose device it is; it decides what may be collected and
// which actions are allowed.
type Ownership string

const (
	Corporate    Ownership = "corporate"
	Personal     Ownership = "personal"      // full BYOD enrolment
	UserEnrolled Ownership = "user_enrolled" // Apple User Enrollment: no UDID, no serial
	Shared       Ownership = "shared"        // shared or kiosk device
)

// Ownerships lists every ownership class.
var Ownerships = []Ownership{Corporate, Personal, UserEnrolled, Shared}

// Valid reports whether o is a known class.
func (o Ownership) Valid() bool { return slices.Contains(Ownerships, o) }

// PersonallyOwned is true for the employee's own devices, where only
// managed apps and data are ever touched.
func (o Ownership) PersonallyOwned() bool { return o == Personal || o == UserEnrolled }

// Mode is what happens to a category's values.
type Mode string

const (
	// Show: collected and shown to admins with device.read.
	Show Mode = "show"
	// Hide: collected but masked; revealable with a reason.
	Hide Mode = "hide"
	// Drop: never collected; the gate discards it.
	Drop Mode = "none"
)

// rank orders modes from most private to least.
func (m Mode) rank() int { return map[Mode]int{Drop: 0, Hide: 1, Show: 2}[m] }

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == Show || m == Hide || m == Drop }

// ClassPolicy is one ownership class's collection policy.
type ClassPolicy struct {
	Modes map[Category]Mode `json:"modes"`
	// FullWipe allows erasing the whole device; selective wipe is always
	// available. On personal devices the employee must also have allowed it
	// in their consent.
	FullWipe bool `json:"full_wipe"`
}

// Policy is a tenant's collection policy for every ownership class.
type Policy map[Ownership]ClassPolicy

// Mode returns what the policy says for o and c (Drop when unknown).
func (p Policy) Mode(o Ownership, c Category) Mode { return p[o].mode(c) }

// mode returns what the class policy says for c (Drop when unknown).
func (cp ClassPolicy) mode(c Category) Mode {
	if m, ok := cp.Modes[c]; ok {
		return m
	}
	return Drop
}

// DefaultPolicy is private by default: personal and user-enrolled devices
// collect no location, phone number or IMEI and cannot be fully wiped;
// corporate devices keep location hidden.
func DefaultPolicy() Policy {
	all := func(m Mode) map[Category]Mode {
		out := make(map[Category]Mode, len(Categories))
		for _, c := range Categories {
			out[c.Category] = m
		}
		return out
	}
	corporate := all(Show)
	corporate[Location] = Hide
	corporate[UsageLogs] = Hide

	personal := all(Show)
	personal[Location] = Drop
	personal[Telephony] = Drop
	personal[DeviceIdentity] = Hide
	personal[Network] = Hide
	personal[UsageLogs] = Hide
	personal[Directory] = Hide

	userEnrolled := maps.Clone(personal)
	// Apple keeps the UDID, serial number and MAC addresses from a User
	// Enrollment; the policy says so rather than promise what never comes.
	userEnrolled[DeviceIdentity] = Drop
	userEnrolled[Network] = Drop

	shared := all(Show)
	shared[Location] = Hide
	shared[UserIdentity] = Hide
	shared[UsageLogs] = Drop

	return Policy{
		Corporate:    {Modes: corporate, FullWipe: true},
		Personal:     {Modes: personal},
		UserEnrolled: {Modes: userEnrolled},
		Shared:       {Modes: shared, FullWipe: true},
	}
}

// Clone returns a deep copy.
func (p Policy) Clone() Policy {
	out := make(Policy, len(p))
	for o, cp := range p {
		out[o] = ClassPolicy{Modes: maps.Clone(cp.Modes), FullWipe: cp.FullWipe}
	}
	return out
}

// neverFromUserEnrollment are the categories a User Enrollment never
// reports: Apple forbids every query of them there (information.device.yaml)
// and no other source serves such a device. A policy showing them would make
// the notice promise what is never collected.
var neverFromUserEnrollment = map[Category]bool{DeviceIdentity: true, Network: true, Telephony: true}

// Change is one requested edit to a policy.
type Change struct {
	Ownership Ownership `json:"ownership"`
	Category  Category  `json:"category,omitempty"`
	Mode      Mode      `json:"mode,omitempty"`
	// FullWipe, when set, changes the class's full-wipe permission.
	FullWipe *bool `json:"full_wipe,omitempty"`
}

// Validate checks the change names known things and is not a rule the
// platform or the law makes impossible.
func (c Change) Validate() error {
	if !c.Ownership.Valid() {
		return fmt.Errorf("unknown ownership class %q (want one of %v)", c.Ownership, Ownerships)
	}
	if c.Category == "" && c.FullWipe == nil {
		return fmt.Errorf("a change needs a category and mode, or full_wipe")
	}
	if c.Category != "" {
		if _, ok := CategoryByName(c.Category); !ok {
			return fmt.Errorf("unknown category %q", c.Category)
		}
		if !c.Mode.Valid() {
			return fmt.Errorf("unknown mode %q (want show, hide or none)", c.Mode)
		}
		if c.Ownership == UserEnrolled && neverFromUserEnrollment[c.Category] && c.Mode != Drop {
			return fmt.Errorf("user-enrolled devices never report %s: only mode none is possible", c.Category)
		}
	}
	if c.FullWipe != nil && *c.FullWipe && c.Ownership == UserEnrolled {
		return fmt.Errorf("a user-enrolled device cannot be fully wiped: only its managed data can be removed")
	}
	return nil
}

// Apply returns p with changes applied and whether any of them widens what
// is collected or shown (which needs a second admin's approval).
func (p Policy) Apply(changes []Change) (Policy, bool, error) {
	out := p.Clone()
	widens := false
	for _, c := range changes {
		if err := c.Validate(); err != nil {
			return nil, false, err
		}
		cp := out[c.Ownership]
		if cp.Modes == nil {
			cp.Modes = map[Category]Mode{}
		}
		if c.Category != "" {
			if c.Mode.rank() > out.Mode(c.Ownership, c.Category).rank() {
				widens = true
			}
			cp.Modes[c.Category] = c.Mode
		}
		if c.FullWipe != nil {
			if *c.FullWipe && !cp.FullWipe {
				widens = true
			}
			cp.FullWipe = *c.FullWipe
		}
		out[c.Ownership] = cp
	}
	return out, widens, nil
}

// Narrowed lists the (ownership, category) pairs that were collected under
// old and are dropped under p, whose stored values must now be deleted.
func (p Policy) Narrowed(old Policy) []Change {
	var out []Change
	for _, o := range Ownerships {
		for _, c := range Categories {
			if old.Mode(o, c.Category) != Drop && p.Mode(o, c.Category) == Drop {
				out = append(out, Change{Ownership: o, Category: c.Category, Mode: Drop})
			}
		}
	}
	return out
}

// NewlyHidden lists the (ownership, category) pairs shown under old and
// hidden under p, whose stored values must now be masked.
func (p Policy) NewlyHidden(old Policy) []Change {
	var out []Change
	for _, o := range Ownerships {
		for _, c := range Categories {
			if old.Mode(o, c.Category) == Show && p.Mode(o, c.Category) == Hide {
				out = append(out, Change{Ownership: o, Category: c.Category, Mode: Hide})
			}
		}
	}
	return out
}
