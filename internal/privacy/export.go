package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"html/template"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/privacy/securezip"
	"github.com/steward-mdm/steward/internal/store"
)

// SubjectExport is everything Steward holds about one person (GDPR Art 15
// and 20), in a machine-readable form.
type SubjectExport struct {
	Format      string         `json:"format"` // "steward.subject-export/v1"
	GeneratedAt time.Time      `json:"generated_at"`
	Person      ExportPerson   `json:"person"`
	Devices     []ExportDevice `json:"devices"`
	// Management is what device management holds about the person apart
	// from their devices, such as the enrolment links made for them.
	Management    []ExportRecord       `json:"management,omitempty"`
	Consents      []store.Consent      `json:"consents"`
	Notifications []store.Notification `json:"notifications"`
	AccessRecord  []store.AccessRecord `json:"access_record"`
	AuditEntries  []ExportAuditEntry   `json:"audit_entries"`
	// hidden names, per device, the fields its view masks, for the
	// exporting admin's access record.
	hidden map[string][]string
}

// ExportPerson is the person's own profile.
type ExportPerson struct {
	ID        string `json:"id"`
	Pseudonym string `json:"pseudonym"`
	Email     string `json:"email,omitempty"`
	Name      string `json:"name,omitempty"`
	Dept      string `json:"department,omitempty"`
	// AppleAccount: the Managed Apple Account, when it is not the e-mail;
	// EarlierAppleAccounts, those it replaced, kept for erasure.
	AppleAccount         string    `json:"managed_apple_id,omitempty"`
	EarlierAppleAccounts []string  `json:"earlier_managed_apple_ids,omitempty"`
	Locale               string    `json:"locale"`
	State                string    `json:"state"`
	CreatedAt            time.Time `json:"created_at"`
}

// ExportDevice is one of the person's devices with its data.
type ExportDevice struct {
	ID         string        `json:"id"`
	Ownership  string        `json:"ownership"`
	Platform   string        `json:"platform"`
	State      string        `json:"state"`
	EnrolledAt time.Time     `json:"enrolled_at"`
	LastSeenAt time.Time     `json:"last_seen_at"`
	Inventory  []ExportValue `json:"inventory"`
	History    []ExportValue `json:"history"`
	// Management is what the protocol that manages the device holds
	// about it besides its inventory.
	Management []ExportRecord `json:"management,omitempty"`
}

// ExportRecord is one thing a protocol adapter holds about a device, put
// so that its person can read it.
type ExportRecord struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ExportFlag is a record that says yes or no.
func ExportFlag(name string, yes bool) ExportRecord {
	return ExportRecord{Name: name, Value: YesNo(yes)}
}

// ExportTime is how a record puts a time: UTC, RFC 3339, "never" when zero.
func ExportTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// ExportAuditEntry is an audit entry about the person or their devices.
type ExportAuditEntry struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Target  string          `json:"target"`
	Outcome string          `json:"outcome"`
	Reason  string          `json:"reason,omitempty"`
	Details json.RawMessage `json:"details,omitempty"`
	// SourceIP is the address the person's own action came from (accepting
	// a notice, using the portal); others' addresses are theirs, not given.
	SourceIP string `json:"source_ip,omitempty"`
}

// ExportValue is one stored value, decrypted.
type ExportValue struct {
	Field       string          `json:"field"`
	Name        string          `json:"name"`
	Category    string          `json:"category"`
	Value       json.RawMessage `json:"value,omitempty"`
	Unreadable  string          `json:"unreadable,omitempty"`
	CollectedAt time.Time       `json:"collected_at"`
	ExpiresAt   time.Time       `json:"expires_at,omitzero"`
}

// ExportArchive is the password-protected archive handed to the person.
type ExportArchive struct {
	FileName string `json:"file_name"`
	Password string `json:"password"`
	Archive  []byte `json:"archive"`
}

// ExportSubject gathers a person's data, writes it to their access record
// and the audit log, and packs it as JSON plus a readable HTML summary in an
// AES-256 encrypted ZIP. The archive holds the values the policy hides from
// admins too, as they are the person's; so an admin who exports, and holds
// the archive and its password, gives a reason as for a reveal, and each
// device's hidden fields are in the person's access record under it. The
// person exporting their own data gives none.
func (s *Service) ExportSubject(ctx context.Context, tenantID, subjectID, reason string, actor iam.Actor) (ExportArchive, error) {
	if actor.Type == store.ActorSubject && actor.ID == subjectID {
		reason = "the person's own export"
	} else {
		var err error
		if reason, err = ValidateReason(reason); err != nil {
			return ExportArchive{}, err
		}
	}
	var exp SubjectExport
	err := s.st.Tx(ctx, func(q store.Queries) error {
		var err error
		if exp, err = s.gather(ctx, q, tenantID, subjectID); err != nil {
			return err
		}
		now := s.clock()
		recs := []store.AccessRecord{{ID: store.NewID(), TenantID: tenantID, SubjectID: subjectID,
			Actor: actor.Ref(), Action: "export", Fields: []string{"*"}, Reason: reason, At: now}}
		hidden := exp.hidden
		for _, d := range exp.Devices {
			if fields := hidden[d.ID]; len(fields) > 0 {
				recs = append(recs, store.AccessRecord{ID: store.NewID(), TenantID: tenantID, SubjectID: subjectID, DeviceID: d.ID,
					Actor: actor.Ref(), Action: "export", Fields: fields, Reason: reason, At: now})
			}
		}
		if err := q.Access().Add(ctx, recs); err != nil {
			return err
		}
		e := actor.Entry(tenantID, "privacy.export", "subject", subjectID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"hidden_fields": hidden}
		return audit.Append(ctx, q, e)
	})
	if err != nil {
		return ExportArchive{}, err
	}
	return pack(exp)
}

// hiddenFields returns the fields of vals that the device's view does not
// show in clear (see adminSight): masked, or left out as their category is
// no longer collected under the device's policy. An admin's export holds
// them all, so all go to the person's access record.
func hiddenFields(policy Policy, d store.Device, vals []store.InventoryValue) []string {
	var out []string
	for _, v := range vals {
		listed, masked := adminSight(policy, d, v)
		if (masked || !listed) && !slices.Contains(out, v.Field) {
			out = append(out, v.Field)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Service) gather(ctx context.Context, q store.Queries, tenantID, subjectID string) (SubjectExport, error) {
	sub, err := s.Subject(ctx, q, tenantID, subjectID)
	if err != nil {
		return SubjectExport{}, err
	}
	exp := SubjectExport{Format: "steward.subject-export/v1", GeneratedAt: s.clock(),
		Person: ExportPerson{ID: sub.ID, Pseudonym: sub.Pseudonym, Locale: sub.Locale, State: s.SubjectStatus(ctx, q, sub), CreatedAt: sub.CreatedAt}}
	if exp.Person.State == "active" {
		p, err := s.OpenProfile(ctx, q, sub)
		if err != nil {
			return exp, err
		}
		exp.Person.Email, exp.Person.Name, exp.Person.Dept, exp.Person.AppleAccount = p.Email, p.Name, p.Department, p.ManagedAppleID
	}
	devices, err := allDevices(ctx, q, tenantID, store.DeviceFilter{SubjectID: subjectID})
	if err != nil {
		return exp, err
	}
	settings, _, err := LoadSettings(ctx, q, tenantID)
	if err != nil {
		return exp, err
	}
	exp.hidden = map[string][]string{}
	dk := s.vault.Session(ctx, q)
	targets := []string{subjectID}
	for _, d := range devices {
		targets = append(targets, d.ID)
		ed := ExportDevice{ID: d.ID, Ownership: d.Ownership, Platform: d.Platform, State: d.State, EnrolledAt: d.EnrolledAt, LastSeenAt: d.LastSeenAt}
		cur, err := q.Inventory().Current(ctx, tenantID, d.ID)
		if err != nil {
			return exp, err
		}
		hist, err := q.Inventory().History(ctx, tenantID, d.ID, 10000)
		if err != nil {
			return exp, err
		}
		if ed.Inventory, err = exportValues(dk, cur); err != nil {
			return exp, err
		}
		if ed.History, err = exportValues(dk, hist); err != nil {
			return exp, err
		}
		policy, err := EffectivePolicy(ctx, q, settings, d)
		if err != nil {
			return exp, err
		}
		if fields := hiddenFields(policy, d, append(cur[:len(cur):len(cur)], hist...)); len(fields) > 0 {
			exp.hidden[d.ID] = fields
		}
		for _, h := range s.exported {
			recs, err := h(ctx, q, d)
			if err != nil {
				return exp, err
			}
			ed.Management = append(ed.Management, recs...)
		}
		exp.Devices = append(exp.Devices, ed)
	}
	var selections []AuditSelection
	for _, h := range s.personal {
		part, err := h(ctx, q, tenantID, subjectID)
		if err != nil {
			return exp, err
		}
		exp.Management = append(exp.Management, part.Records...)
		targets = append(targets, part.AuditTargets...)
		selections = append(selections, part.AuditAbout...)
	}
	if exp.Consents, err = q.Consents().ListForSubject(ctx, tenantID, subjectID); err != nil {
		return exp, err
	}
	if err := s.withShownTexts(ctx, q, tenantID, exp.Consents); err != nil {
		return exp, err
	}
	if exp.Notifications, err = q.Notifications().ListForSubject(ctx, tenantID, subjectID); err != nil {
		return exp, err
	}
	for page := (store.Page{Limit: 1000}); ; {
		recs, err := q.Access().ListForSubject(ctx, tenantID, subjectID, page)
		if err != nil {
			return exp, err
		}
		exp.AccessRecord = append(exp.AccessRecord, recs...)
		if len(recs) < page.Limit {
			break
		}
		page.After = recs[len(recs)-1].ID
	}
	byID := make(map[string]store.Device, len(devices))
	for _, d := range devices {
		byID[d.ID] = d
	}
	seen := map[int64]bool{} // a selection may pick an entry a target already gave
	keep := func(e store.AuditEntry) bool {
		d, ok := byID[e.TargetID]
		return !ok || s.exportsAudit(e, d)
	}
	for _, target := range targets {
		if err := exportAudit(ctx, q, tenantID, subjectID, target, keep, seen, &exp); err != nil {
			return exp, err
		}
	}
	for _, sel := range selections {
		if err := exportAudit(ctx, q, tenantID, subjectID, sel.Target, sel.Keep, seen, &exp); err != nil {
			return exp, err
		}
	}
	return exp, nil
}

// exportAudit adds the audit entries about target that keep accepts and
// that are not in the export yet, every one, a page at a time (the store
// bounds each list).
func exportAudit(ctx context.Context, q store.Queries, tenantID, subjectID, target string, keep func(store.AuditEntry) bool,
	seen map[int64]bool, exp *SubjectExport) error {
	for filter := (store.AuditFilter{TargetID: target, Limit: 1000}); ; {
		entries, err := q.Audit().List(ctx, tenantID, filter)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if seen[e.Seq] || !keep(e) {
				continue
			}
			seen[e.Seq] = true
			entry := ExportAuditEntry{Seq: e.Seq, Time: e.Time, Actor: string(e.ActorType) + ":" + e.ActorID,
				Action: e.Action, Target: e.TargetType + ":" + e.TargetID, Outcome: e.Outcome, Reason: e.Reason, Details: e.Details}
			if e.ActorType == store.ActorSubject && e.ActorID == subjectID {
				entry.SourceIP = e.SourceIP
			}
			exp.AuditEntries = append(exp.AuditEntries, entry)
		}
		if len(entries) < filter.Limit {
			return nil
		}
		filter.AfterSeq = entries[len(entries)-1].Seq
	}
}

// exportsAudit says whether every ExportAuditFilter lets entry e about
// device d into its person's export.
func (s *Service) exportsAudit(e store.AuditEntry, d store.Device) bool {
	for _, f := range s.exportedAudit {
		if !f(e, d) {
			return false
		}
	}
	return true
}

func exportValues(dk *keys.DataKeys, vals []store.InventoryValue) ([]ExportValue, error) {
	out := make([]ExportValue, 0, len(vals))
	for _, v := range vals {
		f, _ := FieldByKey(v.Field)
		ev := ExportValue{Field: v.Field, Name: f.Name, Category: v.Category, CollectedAt: v.CollectedAt, ExpiresAt: v.ExpiresAt}
		if v.Ciphertext == nil {
			ev.Value = v.Value
		} else if plain, err := dk.Decrypt(keys.FieldContext{TenantID: v.TenantID, KeyID: v.KeyID, Row: v.DeviceID, Field: v.Field}, v.Ciphertext); err == nil {
			ev.Value = plain
		} else if ev.Unreadable = unreadableReason(err); ev.Unreadable == "" {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func pack(exp SubjectExport) (ExportArchive, error) {
	data, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		return ExportArchive{}, err
	}
	var page bytes.Buffer
	if err := exportHTML.Execute(&page, exp); err != nil {
		return ExportArchive{}, err
	}
	out := ExportArchive{FileName: "steward-export-" + exp.Person.Pseudonym + ".zip", Password: securezip.GeneratePassword()}
	var buf bytes.Buffer
	zw, err := securezip.NewWriter(&buf, out.Password)
	if err != nil {
		return out, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"summary.html", page.Bytes()}, {"data.json", data}, {"README.txt", []byte(exportReadme)}} {
		w, err := zw.Create(f.name, exp.GeneratedAt)
		if err != nil {
			return out, err
		}
		if _, err := w.Write(f.data); err != nil {
			return out, err
		}
	}
	if err := zw.Close(); err != nil {
		return out, err
	}
	out.Archive = buf.Bytes()
	return out, nil
}

const exportReadme = `Your data held by Steward
=========================

summary.html  a readable summary: open it in any web browser.
data.json     everything, in a machine-readable form you may take to another service (GDPR Art 20).

This archive is encrypted with AES-256. Open it with the password you were given separately:
- Windows: 7-Zip (right-click > 7-Zip > Extract), or WinRAR.
- macOS: Keka or The Unarchiver (Archive Utility cannot open AES-encrypted archives).
- Linux: the file manager's "Extract" (File Roller), or "7z x" on the command line.
`

var exportHTML = template.Must(template.New("export").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your data</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}code{word-break:break-all}</style></head>
<body><h1>What your organisation's device management holds about you</h1>
<p>Generated {{.GeneratedAt.Format "2006-01-02 15:04 MST"}}. The file data.json next to this page holds the same data in full.</p>
<h2>You</h2><table><tr><th>Name</th><td>{{.Person.Name}}</td></tr><tr><th>E-mail</th><td>{{.Person.Email}}</td></tr>
<tr><th>Department</th><td>{{.Person.Dept}}</td></tr>{{with .Person.AppleAccount}}<tr><th>Managed Apple Account</th><td>{{.}}</td></tr>{{end}}<tr><th>Status</th><td>{{.Person.State}}</td></tr></table>
{{range .Devices}}<h2>Device ({{.Platform}}, {{.Ownership}}, {{.State}})</h2>
<table><tr><th>Data</th><th>Value</th><th>Collected</th></tr>
{{range .Inventory}}<tr><td>{{.Name}}</td><td>{{if .Unreadable}}<em>{{.Unreadable}}</em>{{else}}<code>{{printf "%s" .Value}}</code>{{end}}</td><td>{{.CollectedAt.Format "2006-01-02"}}</td></tr>
{{end}}</table>
{{with .Management}}<table><tr><th>Held for managing the device</th><th>Value</th></tr>
{{range .}}<tr><td>{{.Name}}</td><td>{{.Value}}</td></tr>
{{end}}</table>{{end}}{{end}}
{{with .Management}}<h2>Held for managing your devices</h2><table><tr><th>Record</th><th>Value</th></tr>
{{range .}}<tr><td>{{.Name}}</td><td>{{.Value}}</td></tr>
{{end}}</table>{{end}}
<h2>Your consents</h2><ul>{{range .Consents}}<li>{{.Ownership}} notice version {{.NoticeVersion}} ({{.Language}}), accepted {{.AcceptedAt.Format "2006-01-02"}} by {{.Method}}{{if not .WithdrawnAt.IsZero}}, withdrawn {{.WithdrawnAt.Format "2006-01-02"}}{{end}}
{{if .Summary}}<details><summary>The summary you were shown</summary><pre>{{.Summary}}</pre></details>{{else if .SummaryUnverified}} (the summary kept for this consent could not be verified, so it is not shown){{else if eq .Shown "outside-steward"}} (recorded by your organisation; you were not shown it in Steward){{end}}</li>{{else}}<li>none</li>{{end}}</ul>
<h2>Who looked at your data</h2><table><tr><th>When</th><th>Who</th><th>What</th><th>Why</th></tr>
{{range .AccessRecord}}<tr><td>{{.At.Format "2006-01-02 15:04"}}</td><td>{{.Actor}}</td><td>{{.Action}}{{with .DeviceID}} (device {{.}}){{end}}: {{range .Fields}}{{.}} {{end}}</td><td>{{.Reason}}</td></tr>{{end}}</table>
<h2>Messages sent to you</h2><ul>{{range .Notifications}}<li>{{.CreatedAt.Format "2006-01-02"}}: {{.Title}} ({{.State}})</li>{{else}}<li>none</li>{{end}}</ul>
<p>{{len .AuditEntries}} audit log entries concern you or your devices; they are listed in data.json.</p>
</body></html>
`))
