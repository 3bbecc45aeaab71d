package payloads

import "fmt"

// Target is the device a profile is for, as far as Apple's rules on which
// payloads (and keys) a device takes depend on it.
type Target struct {
	// Mac is a macOS device; otherwise iOS or iPadOS, which Apple's
	// schemas describe as one.
	Mac bool
	// UserEnrollment is an Apple User Enrollment: a personal device that
	// takes only payloads Apple allows there.
	UserEnrollment bool
}

// availability is how a device takes a payload type on the channel Steward
// installs profiles on, the device channel.
type availability uint8

const (
	available availability = iota
	// userChannelOnly: a Mac takes it only in a user's account
	// (devicechannel: false in Apple's schema).
	userChannelOnly
	// absent: the platform has no such payload ("introduced: n/a").
	absent
	// forbidden: User Enrollment refuses it (userenrollment mode "forbidden").
	forbidden
)

// payloadRules says how each kind of device takes one payload type.
type payloadRules struct {
	iOSUserEnrollment, mac, macUserEnrollment availability
}

// payloadSupport holds, for every payload type Steward builds, what
// supportedOS says in Apple's schema mdm/profiles/<PayloadType>.yaml: the
// macOS entry's introduced and devicechannel, and the userenrollment mode
// of the iOS and macOS entries. It is also the allow-list for User
// Enrollment: a type missing here (from a custom profile) is not sent to a
// User Enrollment, as nobody checked that Apple allows it there.
var payloadSupport = map[string]payloadRules{
	"com.apple.wifi.managed": {},
	// Per-app VPN (com.apple.vpn.managed.applayer) is what User Enrollment takes.
	"com.apple.vpn.managed":                 {iOSUserEnrollment: forbidden, macUserEnrollment: forbidden},
	"com.apple.eas.account":                 {mac: absent, macUserEnrollment: absent},
	"com.apple.mail.managed":                {mac: userChannelOnly, macUserEnrollment: userChannelOnly},
	"com.apple.mobiledevice.passwordpolicy": {macUserEnrollment: forbidden},
	"com.apple.applicationaccess":           {},
	"com.apple.security.scep":               {},
	"com.apple.security.pkcs12":             {},
	"com.apple.webClip.managed":             {mac: userChannelOnly, macUserEnrollment: userChannelOnly},
}

func (r payloadRules) on(t Target) availability {
	switch {
	case t.Mac && t.UserEnrollment:
		return r.macUserEnrollment
	case t.Mac:
		return r.mac
	case t.UserEnrollment:
		return r.iOSUserEnrollment
	}
	return available
}

// Unavailable explains why a device like t cannot take a profile holding
// payloadTypes on its device channel, naming the first payload type it
// refuses; it returns "" when the device takes them all. Types Steward has
// no rules for pass, except under User Enrollment (see payloadSupport).
func Unavailable(payloadTypes []string, t Target) string {
	for _, typ := range payloadTypes {
		rules, known := payloadSupport[typ]
		if !known {
			if t.UserEnrollment {
				return fmt.Sprintf("%s payloads are not on Steward's list of payloads User Enrollment takes; "+
					"deploy this profile to corporate or fully enrolled devices", typ)
			}
			continue
		}
		switch rules.on(t) {
		case userChannelOnly:
			return fmt.Sprintf("a Mac takes %s payloads only in a user's account, and Steward installs profiles for the whole device; "+
				"deploy this profile to iPhones and iPads, or split these payloads into a profile for them", typ)
		case forbidden:
			return fmt.Sprintf("Apple does not allow %s payloads under User Enrollment; "+
				"deploy this profile to corporate or fully enrolled devices, or split these payloads into a profile for them", typ)
		case absent:
			return fmt.Sprintf("macOS has no %s payload; deploy this profile to iPhones and iPads, "+
				"or split these payloads into a profile for them", typ)
		}
	}
	return ""
}
