package privacy

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// ProcessingRecord is the GDPR Art 30 record of processing activities for one
// tenant, generated from the live catalogue, policy, retention and flows.
type ProcessingRecord struct {
	Tenant      string           `json:"tenant"`
	GeneratedAt time.Time        `json:"generated_at"`
	Controller  string           `json:"controller"`
	Purposes    []string         `json:"purposes"`
	Subjects    string           `json:"data_subjects"`
	Activities  []RecordActivity `json:"categories"`
	Recipients  []RecordFlow     `json:"recipients"`
	Transfers   string           `json:"third_country_transfers"`
	Security    []string         `json:"security_measures"`
}

// RecordActivity is one category of data as processed for this tenant.
type RecordActivity struct {
	Category     Category           `json:"category"`
	Name         string             `json:"name"`
	Fields       []string           `json:"fields"`
	Personal     bool               `json:"personal"`
	LegalBases   []string           `json:"legal_bases"`
	Purposes     []string           `json:"purposes"`
	Collection   map[Ownership]Mode `json:"collection"`
	RetentionDay int                `json:"retention_days"` // 0: while the device is enrolled
}

// RecordFlow is an outbound flow and whether the tenant switched it on.
type RecordFlow struct {
	FlowInfo
	Enabled bool `json:"enabled"`
}

// Record builds the record for a tenant.
func (s *Service) Record(ctx context.Context, tenant store.Tenant) (ProcessingRecord, error) {
	settings, _, err := LoadSettings(ctx, s.st.Read(), tenant.ID)
	if err != nil {
		return ProcessingRecord{}, err
	}
	r := ProcessingRecord{
		Tenant: tenant.Name, GeneratedAt: s.clock(), Controller: tenant.Name + " (the organisation managing the devices)",
		Subjects:  "Employees and other people who use devices the organisation manages.",
		Transfers: "None by Steward itself: it is self-hosted. Outbound flows below are off unless an admin switched them on.",
		Security: []string{
			"Personal values encrypted with AES-256-GCM under a data key per person or device; keys wrapped per tenant under a master key kept outside the database.",
			"Erasure by destroying keys (crypto-shredding); the key vault is never in backups, so erasure reaches them.",
			"Hidden fields masked until an admin reveals them with a reason, for a limited time; every read is in the person's access record.",
			"Tamper-evident, signed audit log; MFA, role-based access and IP allowlists for admins; TLS 1.2+.",
		},
	}
	for _, c := range Categories {
		a := RecordActivity{Category: c.Category, Name: c.Name, Collection: map[Ownership]Mode{},
			RetentionDay: int(settings.Retention(c.Category) / day)}
		for _, f := range Catalogue {
			if f.Category != c.Category {
				continue
			}
			a.Fields = append(a.Fields, f.Key)
			a.Personal = a.Personal || f.Personal
			if !slices.Contains(a.LegalBases, f.LegalBasis) {
				a.LegalBases = append(a.LegalBases, f.LegalBasis)
			}
			if !slices.Contains(a.Purposes, f.Purpose) {
				a.Purposes = append(a.Purposes, f.Purpose)
			}
			if !slices.Contains(r.Purposes, f.Purpose) {
				r.Purposes = append(r.Purposes, f.Purpose)
			}
		}
		for _, o := range Ownerships {
			a.Collection[o] = settings.Policy.Mode(o, c.Category)
		}
		r.Activities = append(r.Activities, a)
	}
	for _, f := range Flows {
		r.Recipients = append(r.Recipients, RecordFlow{FlowInfo: f, Enabled: settings.FlowEnabled(f.Flow)})
	}
	return r, nil
}

func retentionText(days int) string {
	if days == 0 {
		return "while the device is enrolled"
	}
	return fmt.Sprintf("%d days", days)
}

// Markdown renders the record.
func (r ProcessingRecord) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Record of processing activities: %s\n\n", r.Tenant)
	fmt.Fprintf(&b, "Generated %s by Steward from the live configuration (GDPR Art 30).\n\n", r.GeneratedAt.Format(time.RFC3339))
	fmt.Fprintf(&b, "- **Controller**: %s\n- **Data subjects**: %s\n- **Transfers to third countries**: %s\n\n", r.Controller, r.Subjects, r.Transfers)
	b.WriteString("## Purposes\n\n")
	for _, p := range r.Purposes {
		fmt.Fprintf(&b, "- %s\n", p)
	}
	b.WriteString("\n## Categories of data\n\n| Category | Personal | Corporate | Personal device | User enrolment | Shared | Retention | Legal basis |\n|---|---|---|---|---|---|---|---|\n")
	for _, a := range r.Activities {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", a.Name, YesNo(a.Personal),
			a.Collection[Corporate], a.Collection[Personal], a.Collection[UserEnrolled], a.Collection[Shared],
			retentionText(a.RetentionDay), strings.Join(a.LegalBases, "; "))
	}
	b.WriteString("\nModes: show = collected and visible to admins; hide = collected, masked until revealed with a reason; none = never collected.\n\n## Recipients (outbound flows)\n\n")
	for _, f := range r.Recipients {
		fmt.Fprintf(&b, "- **%s** (%s): %s. Status: %s.\n", f.Name, f.Recipient, f.Description, onOff(f.Enabled))
	}
	b.WriteString("\n## Security measures (Art 32)\n\n")
	for _, m := range r.Security {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	return b.String()
}

var recordHTML = template.Must(template.New("record").Funcs(template.FuncMap{"retention": retentionText, "yesno": YesNo, "onoff": onOff,
	"mode": func(m map[Ownership]Mode, o string) Mode { return m[Ownership(o)] }}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Record of processing: {{.Tenant}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}</style></head>
<body><h1>Record of processing activities: {{.Tenant}}</h1>
<p>Generated {{.GeneratedAt.Format "2006-01-02 15:04 MST"}} from the live configuration (GDPR Art 30).</p>
<dl><dt>Controller</dt><dd>{{.Controller}}</dd><dt>Data subjects</dt><dd>{{.Subjects}}</dd><dt>Transfers</dt><dd>{{.Transfers}}</dd></dl>
<h2>Purposes</h2><ul>{{range .Purposes}}<li>{{.}}</li>{{end}}</ul>
<h2>Categories of data</h2><table><tr><th>Category</th><th>Personal</th><th>Corporate</th><th>Personal device</th><th>User enrolment</th><th>Shared</th><th>Retention</th><th>Legal basis</th></tr>
{{range .Activities}}<tr><td>{{.Name}}</td><td>{{yesno .Personal}}</td><td>{{mode .Collection "corporate"}}</td><td>{{mode .Collection "personal"}}</td><td>{{mode .Collection "user_enrolled"}}</td><td>{{mode .Collection "shared"}}</td><td>{{retention .RetentionDay}}</td><td>{{range .LegalBases}}{{.}}<br>{{end}}</td></tr>
{{end}}</table>
<h2>Recipients (outbound flows)</h2><ul>{{range .Recipients}}<li><b>{{.Name}}</b> ({{.Recipient}}): {{.Description}} Status: {{onoff .Enabled}}.</li>{{end}}</ul>
<h2>Security measures (Art 32)</h2><ul>{{range .Security}}<li>{{.}}</li>{{end}}</ul>
</body></html>
`))

// HTML renders the record as a standalone page.
func (r ProcessingRecord) HTML() ([]byte, error) {
	var buf bytes.Buffer
	err := recordHTML.Execute(&buf, r)
	return buf.Bytes(), err
}

// YesNo is how exports and records put a flag.
func YesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// CatalogueMarkdown renders the data catalogue for docs/privacy/catalogue.md.
func CatalogueMarkdown() string {
	var b strings.Builder
	b.WriteString("# Data catalogue\n\n<!-- Generated from internal/privacy/catalogue.go: STEWARD_UPDATE_DOCS=1 go test ./internal/privacy -run TestCatalogueDoc -->\n\n")
	b.WriteString("Every field Steward can store from or about a device or a person. Nothing outside this list is stored:\n")
	b.WriteString("the privacy gate refuses unknown fields. Personal fields are encrypted with the data key of the device or person.\n\n")
	b.WriteString("## Categories and default retention\n\n| Category | Key | Retention | Description |\n|---|---|---|---|\n")
	for _, c := range Categories {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", c.Name, c.Category, retentionText(c.RetentionDays()), c.Description)
	}
	fmt.Fprintf(&b, "\nAlso: inventory history %d days, command results %d days, access records %d days, mail to employees %d days,\n"+
		"reveals 1 day after they end, approval requests %d days after they end, remote actions %d days after they finish,\n"+
		"deprovisioned devices %d days;\n"+
		"the Find My PIN of a company Mac that left management at a lock or an erase, with its serial number's blind index, %d days.\n\n",
		int(InventoryHistoryRetention/day), int(CommandResultRetention/day), int(AccessRecordRetention/day),
		int(NotificationRetention/day), int(ApprovalRetention/day), int(RemoteActionRetention/day),
		int(DeprovisionedDeviceRetention/day), int(DepartedPINRetention/day))
	b.WriteString("## Default collection policy\n\n| Category | Corporate | Personal | User enrolment | Shared |\n|---|---|---|---|---|\n")
	p := DefaultPolicy()
	for _, c := range Categories {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.Name, p.Mode(Corporate, c.Category), p.Mode(Personal, c.Category),
			p.Mode(UserEnrolled, c.Category), p.Mode(Shared, c.Category))
	}
	b.WriteString("\nFull wipe: corporate and shared yes; personal only if the employee allowed it in their consent; user enrolment never.\n")
	b.WriteString("On personal and user-enrolled devices only managed apps are ever inventoried, whatever the policy, and only the\n" +
		"certificates Steward can show are the organisation's (issued by its CA, carried by its profiles on the device, or issued by a CA they carry).\n\n")
	b.WriteString("## Fields\n\n| Key | Name | Category | Personal | Blind index | Legal basis | Sources |\n|---|---|---|---|---|---|---|\n")
	for _, f := range Catalogue {
		var src []string
		for _, s := range f.Sources {
			x := s.Protocol + " " + s.Payload
			if s.Key != "" {
				x += "." + s.Key
			}
			src = append(src, x)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s |\n", f.Key, f.Name, f.Category, YesNo(f.Personal),
			YesNo(f.Searchable), f.LegalBasis, strings.Join(src, "<br>"))
	}
	return b.String()
}
