package payloads

import "fmt"

// User Enrollment refuses some settings of payloads it otherwise takes, and
// ignores others: Apple's schemas give them the userenrollment mode
// "forbidden" or "ignored" (mdm/profiles/com.apple.applicationaccess.yaml,
// com.apple.wifi.managed.yaml, TopLevel.yaml). A passcode payload is the
// exception: an iPhone's User Enrollment ignores its rules but, given one,
// requires a passcode, which is what a policy needs most; the rules'
// fate is documented, not refused. Restrictions Steward writes, by their JSON names, with
// the platforms whose User Enrollment refuses them:
var userEnrollmentRestrictions = []struct {
	field    string
	ios, mac bool
	set      func(*Restrictions) bool
}{
	{"allow_camera", true, true, func(r *Restrictions) bool { return r.AllowCamera != nil }},
	{"allow_app_installation", true, false, func(r *Restrictions) bool { return r.AllowAppInstallation != nil }},
	{"allow_cloud_backup", true, false, func(r *Restrictions) bool { return r.AllowCloudBackup != nil }},
	{"allow_cloud_document_sync", true, true, func(r *Restrictions) bool { return r.AllowCloudDocumentSync != nil }},
	{"allow_airdrop", true, true, func(r *Restrictions) bool { return r.AllowAirDrop != nil }},
	{"allow_erase_content_and_settings", true, true, func(r *Restrictions) bool { return r.AllowEraseContentAndSettings != nil }},
	{"allow_profile_installation", true, true, func(r *Restrictions) bool { return r.AllowProfileInstallation != nil }},
}

// UnappliedSettings lists the settings of d that a device like t refuses
// or ignores although it takes their payload type (Unavailable covers the
// types), as definition paths such as "payloads[0].restrictions.allow_camera".
// A profile with any would install without enforcing them, so Steward does
// not send it there rather than report a setting enforced that is not.
// Only User Enrollment is covered; SupervisedSettings names those that
// need a supervised device, which Steward learns after enrolment.
func (d Definition) UnappliedSettings(t Target) []string {
	if !t.UserEnrollment {
		return nil
	}
	var out []string
	if d.RemovalDisallowed && !t.Mac {
		out = append(out, "removal_disallowed")
	}
	for i, p := range d.Payloads {
		path := fmt.Sprintf("payloads[%d].%s", i, p.Type)
		switch {
		case p.Restrictions != nil:
			for _, r := range userEnrollmentRestrictions {
				if r.set(p.Restrictions) && (t.Mac && r.mac || !t.Mac && r.ios) {
					out = append(out, path+"."+r.field)
				}
			}
		case p.WiFi != nil && p.WiFi.Proxy != nil:
			// iOS refuses every proxy key, macOS the PAC URL.
			if !t.Mac || p.WiFi.Proxy.Type == "auto" {
				out = append(out, path+".proxy")
			}
		}
	}
	return out
}
