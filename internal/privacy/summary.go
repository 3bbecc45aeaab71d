package privacy

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// PlainSummary says in plain words what Steward collects from a device of
// class o under settings s, how long it keeps it, and what the
// organisation can do to the device: the text an employee reads before
// enrolling, and what a widening adds to the notice.
func PlainSummary(s Settings, o Ownership) string {
	var shown, hidden, never []string
	for _, c := range Categories {
		line := fmt.Sprintf("- **%s**: %s %s", c.Name, lowerFirst(c.Description), keptFor(c.Category, s.Retention(c.Category)))
		switch s.Policy.Mode(o, c.Category) {
		case Show:
			shown = append(shown, line)
		case Hide:
			hidden = append(hidden, line)
		default:
			never = append(never, fmt.Sprintf("- **%s**", c.Name))
		}
	}
	var b strings.Builder
	if len(shown) > 0 {
		b.WriteString("### What your organisation's admins can see\n\n" + strings.Join(shown, "\n") + "\n\n")
	}
	if len(hidden) > 0 {
		b.WriteString("### Collected but hidden\n\nAdmins see these only after giving a reason, for a limited time, and you can see every such access in your access record.\n\n" + strings.Join(hidden, "\n") + "\n\n")
	}
	if len(never) > 0 {
		b.WriteString("### Never collected\n\n" + strings.Join(never, "\n") + "\n\n")
	}
	b.WriteString("### What your organisation can do\n\n")
	for _, line := range abilities(s.Policy, o) {
		b.WriteString("- " + line + "\n")
	}
	return b.String()
}

// keptFor says how long category c's values are kept; 0 is for as long as
// the device is managed, and for what the person's record holds, as long
// as they have a managed device and UnmanagedPersonRetention after.
func keptFor(c Category, d time.Duration) string {
	if d <= 0 && holdsPersonFields(c) {
		return fmt.Sprintf("Kept while you have a managed device, and at most %d days after.", int(UnmanagedPersonRetention/day))
	}
	if d <= 0 {
		return "Kept while the device is managed."
	}
	if days := int(d / day); days != 1 {
		return fmt.Sprintf("Kept %d days.", days)
	}
	return "Kept 1 day."
}

// lowerFirst lower-cases a sentence's first letter, unless it opens an
// acronym ("MAC addresses").
func lowerFirst(s string) string {
	first, n := utf8.DecodeRuneInString(s)
	if next, _ := utf8.DecodeRuneInString(s[n:]); unicode.IsUpper(next) {
		return s
	}
	return string(unicode.ToLower(first)) + s[n:]
}

// abilities lists what the organisation can do to a device of class o, as
// the remote actions, command rules (mdm.RequestFor and Apple's rules in
// mdm's eligibility table), profile rules and compliance ladder allow.
func abilities(p Policy, o Ownership) []string {
	var out []string
	switch o {
	case UserEnrolled:
		out = append(out,
			"Install and remove the apps, accounts and settings it manages, in their own space on the device: Wi-Fi, mail accounts, "+
				"restrictions and certificates for work. Only those are ever listed or removed; your own apps, photos and accounts stay out of its reach. "+
				"It cannot install a VPN for the whole device, a root certificate or a proxy for all your traffic.")
	case Personal:
		out = append(out,
			"Install and remove the apps and settings it manages: Wi-Fi, VPN, mail accounts, passcode rules, restrictions and certificates for work. "+
				"Only those are ever listed or removed; your own apps are never inventoried. It cannot install a root certificate or a proxy for all your traffic.")
	default:
		out = append(out,
			"Install and remove apps and settings (Wi-Fi, VPN, mail accounts, passcode rules, restrictions, certificates), and list the apps installed.")
	}
	out = append(out, "Remove everything it installed (retire), leaving the rest of the device as it is.")
	switch {
	case o == UserEnrolled || !p[o].FullWipe:
		out = append(out, "It cannot erase your whole device.")
	case o == Personal:
		out = append(out, "Erase the whole device only if you allow it when you enrol this device; you can take that back later.")
	default:
		out = append(out, "Erase the whole device.")
	}
	if o == UserEnrolled {
		out = append(out, "Lock the screen of an iPhone or iPad (not of a Mac).")
	} else {
		out = append(out, "Lock the screen and require a passcode.",
			"Restart or shut down the device (an iPhone or iPad only when supervised), and schedule operating system updates on supervised devices.")
	}
	if o == Corporate && p.Mode(o, Location) != Drop {
		out = append(out, "Locate a supervised iPhone or iPad and put it in Lost Mode, and clear its passcode.")
	} else if o == Corporate {
		out = append(out, "Put a supervised iPhone or iPad in Lost Mode (it is not located: no location is collected), and clear its passcode.")
	}
	locked := "be locked"
	if o == UserEnrolled {
		locked = "on an iPhone or iPad, be locked"
	}
	return append(out, "Check the device against security rules (a passcode, a recent operating system): a device that breaks them can lose access "+
		"to work services and, after a grace period, "+locked+".")
}

// holdsPersonFields reports whether category c has fields kept on the
// person's record rather than the device's.
func holdsPersonFields(c Category) bool {
	for _, f := range Catalogue {
		if f.Category == c && f.Subject {
			return true
		}
	}
	return false
}
