package payloads

import "fmt"

// UnappliedSettings lists the settings of d that a device like t refuses
// or ignores although it takes their payload type (Unavailable covers the
// types), as definition paths such as "payloads[0].restrictions.allow_camera".
// A profile with any would install without enforcing them, so Steward does
// not send it there rather than report a setting enforced that is not.
//
// They are, from Apple's schemas (restrictionRules;
// com.apple.wifi.managed.yaml, TopLevel.yaml): on a Mac, the restrictions
// macOS does not have; under User Enrollment, the settings it forbids or
// ignores. A passcode payload is the exception: an iPhone's User
// Enrollment ignores its rules but, given one, requires a passcode, which
// is what a policy needs most; the rules' fate is documented, not refused.
// SupervisedSettings names those that need a supervised iPhone or iPad,
// which Steward learns after enrolment.
func (d Definition) UnappliedSettings(t Target) []string {
	var out []string
	if t.UserEnrollment && d.RemovalDisallowed && !t.Mac {
		out = append(out, "removal_disallowed")
	}
	for i, p := range d.Payloads {
		path := fmt.Sprintf("payloads[%d].%s", i, p.Type)
		switch {
		case p.Restrictions != nil:
			for _, r := range restrictionRules {
				if r.set(p.Restrictions) && r.unappliedOn(t) {
					out = append(out, path+"."+r.field)
				}
			}
		case t.UserEnrollment && p.WiFi != nil && p.WiFi.Proxy != nil:
			// iOS refuses every proxy key, macOS the PAC URL.
			if !t.Mac || p.WiFi.Proxy.Type == "auto" {
				out = append(out, path+".proxy")
			}
		}
	}
	return out
}
