package payloads

import "fmt"

// supervisedRestrictions are the restrictions Steward writes that an iPhone
// or iPad applies only when supervised (supportedOS iOS supervised: true);
// macOS applies them unsupervised. Each names its key in Apple's schema
// mdm/profiles/com.apple.applicationaccess.yaml.
var supervisedRestrictions = []struct {
	field string
	set   func(*Restrictions) bool
}{
	// allowAppInstallation
	{"allow_app_installation", func(r *Restrictions) bool { return r.AllowAppInstallation != nil }},
	// allowCloudDocumentSync
	{"allow_cloud_document_sync", func(r *Restrictions) bool { return r.AllowCloudDocumentSync != nil }},
	// allowAirDrop
	{"allow_airdrop", func(r *Restrictions) bool { return r.AllowAirDrop != nil }},
	// allowEraseContentAndSettings
	{"allow_erase_content_and_settings", func(r *Restrictions) bool { return r.AllowEraseContentAndSettings != nil }},
	// allowUIConfigurationProfileInstallation
	{"allow_profile_installation", func(r *Restrictions) bool { return r.AllowProfileInstallation != nil }},
}

// SupervisedSettings lists the settings of d that a device like t applies
// only when supervised, as definition paths like UnappliedSettings'. An
// unsupervised device installs such a profile without enforcing them, so
// Steward sends it only where supervision is known. The payload types
// Steward builds have no other supervised-only key in Apple's schemas.
func (d Definition) SupervisedSettings(t Target) []string {
	if t.Mac {
		return nil
	}
	var out []string
	if d.RemovalDisallowed { // PayloadRemovalDisallowed, mdm/profiles/TopLevel.yaml
		out = append(out, "removal_disallowed")
	}
	for i, p := range d.Payloads {
		if p.Restrictions == nil {
			continue
		}
		path := fmt.Sprintf("payloads[%d].%s", i, p.Type)
		for _, r := range supervisedRestrictions {
			if r.set(p.Restrictions) {
				out = append(out, path+"."+r.field)
			}
		}
	}
	return out
}
