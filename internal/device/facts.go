package device

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/rules"
	"github.com/steward-mdm/steward/internal/store"
)

// The attributes group rules can read. Inventory attributes carry their
// data catalogue key; the rest come from the device record. "apps" is the
// list of installed (on personal devices: managed) bundle IDs, decrypted
// only while a rule that reads it is evaluated.
var factTypes = map[string]rules.Type{
	"platform":                    rules.TypeString,
	"ownership":                   rules.TypeString,
	"state":                       rules.TypeString,
	"compliance":                  rules.TypeString,
	"last_seen":                   rules.TypeTime,
	"enrolled":                    rules.TypeTime,
	"os.name":                     rules.TypeString,
	"os.version":                  rules.TypeVersion,
	"os.build":                    rules.TypeString,
	"os.supervised":               rules.TypeBool,
	"os.shared_ipad":              rules.TypeBool,
	"hardware.model":              rules.TypeString,
	"hardware.product":            rules.TypeString,
	"hardware.capacity_gb":        rules.TypeNumber,
	"hardware.available_gb":       rules.TypeNumber,
	"hardware.battery_level":      rules.TypeNumber,
	"security.passcode_present":   rules.TypeBool,
	"security.passcode_compliant": rules.TypeBool,
	"security.encrypted":          rules.TypeBool,
	"security.compromised":        rules.TypeBool,
	"security.firewall_enabled":   rules.TypeBool,
	"security.activation_lock":    rules.TypeBool,
	// Macs that need the Find My PIN to be locked or erased (Intel Macs):
	// a group of them is the one to give PINs for ahead of a loss.
	"security.pin_required_for_lock":  rules.TypeBool,
	"security.pin_required_for_erase": rules.TypeBool,
	"apps":                            rules.TypeStringSet,
}

// Schema is the schema of device facts for group rules.
var Schema = func() *rules.Schema {
	s, err := rules.NewSchema(factTypes)
	if err != nil {
		panic(err) // the table above is a programming constant
	}
	return s
}()

// FactNames lists the attributes rules may use, for documentation.
func FactNames() []string { return Schema.Names() }

// ReadsApps reports whether a rule reads the (encrypted) app list.
func ReadsApps(r *rules.Rule) bool { return slices.Contains(r.Attributes(), "apps") }

// FillFacts loads a device's record and projection into f (after Reset).
// facts is the projection's JSON object; apps, when known, the bundle IDs.
func FillFacts(f *rules.Facts, d store.Device, facts []byte, apps []string, appsKnown bool) error {
	f.Reset()
	setString(f, "platform", d.Platform)
	setString(f, "ownership", d.Ownership)
	setString(f, "state", d.State)
	setString(f, "compliance", d.Compliance)
	if !d.LastSeenAt.IsZero() {
		setTime(f, "last_seen", d.LastSeenAt)
	}
	if !d.EnrolledAt.IsZero() {
		setTime(f, "enrolled", d.EnrolledAt)
	}
	if appsKnown {
		a, _ := Schema.StringSetAttr("apps")
		f.SetStringSet(a, apps)
	}
	if len(facts) == 0 {
		return nil
	}
	var values map[string]json.RawMessage
	if err := json.Unmarshal(facts, &values); err != nil {
		return err
	}
	for name, raw := range values {
		t, ok := Schema.TypeOf(name)
		if !ok {
			continue
		}
		switch t {
		case rules.TypeString:
			var s string
			if json.Unmarshal(raw, &s) == nil {
				setString(f, name, s)
			}
		case rules.TypeVersion:
			var s string
			if json.Unmarshal(raw, &s) == nil {
				a, _ := Schema.VersionAttr(name)
				f.SetVersion(a, s)
			}
		case rules.TypeNumber:
			var n float64
			if json.Unmarshal(raw, &n) == nil {
				a, _ := Schema.NumberAttr(name)
				f.SetNumber(a, n)
			}
		case rules.TypeBool:
			var b bool
			if json.Unmarshal(raw, &b) == nil {
				a, _ := Schema.BoolAttr(name)
				f.SetBool(a, b)
			}
		}
	}
	return nil
}

func setString(f *rules.Facts, name, v string) {
	if v == "" {
		return
	}
	a, _ := Schema.StringAttr(name)
	f.SetString(a, v)
}

func setTime(f *rules.Facts, name string, t time.Time) {
	a, _ := Schema.TimeAttr(name)
	f.SetTime(a, t)
}
