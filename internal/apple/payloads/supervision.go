package payloads

import "fmt"

// SupervisedSettings lists the settings of d that a device like t applies
// only when supervised, as definition paths like UnappliedSettings'. An
// unsupervised device installs such a profile without enforcing them, so
// Steward sends it only where supervision is known. The payload types
// Steward builds have no other supervised-only key in Apple's schemas. A
// Mac has none: it applies unsupervised the restrictions macOS has, and
// ignores the others (UnappliedSettings).
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
		for _, r := range restrictionRules {
			if r.iOSSupervised && r.set(p.Restrictions) {
				out = append(out, path+"."+r.field)
			}
		}
	}
	return out
}
