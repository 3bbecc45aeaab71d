package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
)

// FieldView is one inventory field as an admin sees it.
type FieldView struct {
	Field       string          `json:"field"`
	Name        string          `json:"name"`
	Category    Category        `json:"category"`
	Personal    bool            `json:"personal"`
	Masked      bool            `json:"masked"`
	Value       json.RawMessage `json:"value,omitempty"`
	Unreadable  string          `json:"unreadable,omitempty"` // erased, key_missing or corrupted
	CollectedAt time.Time       `json:"collected_at"`
	ExpiresAt   *time.Time      `json:"expires_at,omitempty"`
}

// DeviceView is a device with its inventory, masked per the privacy rules.
type DeviceView struct {
	Device store.Device `json:"-"`
	Fields []FieldView  `json:"fields"`
}

// Viewer is who is looking, for masking and the access record.
type Viewer struct {
	Actor   iam.Actor
	AdminID string
}

// RecordAccess writes rec to its person's access record, unless they were
// erased. The person is locked: an erasure racing the access either
// finished first, and there is nobody to record, or waits and then
// removes the record with the rest of theirs.
func RecordAccess(ctx context.Context, q store.Queries, rec store.AccessRecord) error {
	sub, err := q.Subjects().Lock(ctx, rec.TenantID, rec.SubjectID)
	if errors.Is(err, store.ErrNotFound) || err == nil && sub.State == store.SubjectErased {
		return nil
	}
	if err != nil {
		return err
	}
	return q.Access().Add(ctx, []store.AccessRecord{rec})
}

// ViewDevice returns the device's inventory. Hidden fields come back masked
// unless the viewer holds an unexpired reveal for them; every personal value
// returned in clear is written to the person's access record.
func (s *Service) ViewDevice(ctx context.Context, tenantID, deviceID string, v Viewer) (DeviceView, error) {
	var out DeviceView
	err := s.st.Tx(ctx, func(q store.Queries) error {
		d, err := s.Device(ctx, q, tenantID, deviceID)
		if err != nil {
			return err
		}
		out = DeviceView{Device: d}
		values, err := q.Inventory().Current(ctx, tenantID, deviceID)
		if err != nil {
			return err
		}
		settings, _, err := LoadSettings(ctx, q, tenantID)
		if err != nil {
			return err
		}
		policy, err := EffectivePolicy(ctx, q, settings, d)
		if err != nil {
			return err
		}
		revealed := map[string]bool{}
		if v.Actor.ID != "" {
			rs, err := q.Reveals().Active(ctx, tenantID, v.Actor.Ref(), deviceID, s.clock())
			if err != nil {
				return err
			}
			for _, r := range rs {
				for _, f := range r.Fields {
					revealed[f] = true
				}
			}
		}
		dk := s.vault.Session(ctx, q)
		var readFields []string
		for _, val := range values {
			f, _ := FieldByKey(val.Field)
			listed, hidden := adminSight(policy, d, val)
			if !listed {
				continue
			}
			fv := FieldView{Field: val.Field, Name: f.Name, Category: Category(val.Category), Personal: val.Ciphertext != nil,
				CollectedAt: val.CollectedAt}
			if !val.ExpiresAt.IsZero() {
				t := val.ExpiresAt
				fv.ExpiresAt = &t
			}
			switch {
			case hidden && !revealed[val.Field]:
				fv.Masked = true
			case val.Ciphertext != nil:
				plain, err := dk.Decrypt(keys.FieldContext{TenantID: tenantID, KeyID: val.KeyID, Row: deviceID, Field: val.Field}, val.Ciphertext)
				if err != nil {
					fv.Unreadable = unreadableReason(err)
					if fv.Unreadable == "" {
						return err
					}
					break
				}
				fv.Value = plain
				readFields = append(readFields, val.Field)
			default:
				fv.Value = val.Value
			}
			out.Fields = append(out.Fields, fv)
		}
		if len(readFields) == 0 || d.SubjectID == "" {
			return nil
		}
		return q.Access().Add(ctx, []store.AccessRecord{{ID: store.NewID(), TenantID: tenantID, SubjectID: d.SubjectID,
			DeviceID: deviceID, Actor: v.Actor.Ref(), Action: "read", Fields: readFields, At: s.clock()}})
	})
	return out, err
}

// unreadableReason names why a value cannot be shown; "" for an error that
// is an infrastructure failure rather than a property of the value.
func unreadableReason(err error) string {
	switch {
	case errors.Is(err, keys.ErrKeyDestroyed):
		return "erased"
	case errors.Is(err, keys.ErrKeyMissing):
		return "key_missing"
	case errors.Is(err, keys.ErrCorrupt):
		return "corrupted"
	}
	return ""
}

// RevealInput asks to see masked fields.
type RevealInput struct {
	Fields   []string `json:"fields"`
	Reason   string   `json:"reason"`
	Duration string   `json:"duration"` // Go duration, default 15m, at most 1h
}

// Reveal limits.
const (
	DefaultRevealDuration = 15 * time.Minute
	MaxRevealDuration     = time.Hour
	minReasonLength       = 10
)

// ValidateReason checks a reason an admin gives for touching personal data.
func ValidateReason(reason string) (string, error) {
	r := strings.TrimSpace(reason)
	if utf8.RuneCountInString(r) < minReasonLength {
		return "", apperr.Invalid("a reason of at least %d characters is required", minReasonLength)
	}
	if utf8.RuneCountInString(r) > 500 {
		return "", apperr.Invalid("the reason is limited to 500 characters")
	}
	// Reasons are shown to auditors and employees, in terminals too: no
	// control characters that could rewrite what they see.
	if strings.ContainsFunc(r, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\r' && c != '\t' }) {
		return "", apperr.Invalid("the reason must be plain text, without control characters")
	}
	return r, nil
}

// Reveal grants the admin time-limited sight of masked fields of a device,
// with a reason, audited and written to the person's access record.
func (s *Service) Reveal(ctx context.Context, tenantID, deviceID string, in RevealInput, v Viewer) (store.Reveal, error) {
	reason, err := ValidateReason(in.Reason)
	if err != nil {
		return store.Reveal{}, err
	}
	dur := DefaultRevealDuration
	if in.Duration != "" {
		if dur, err = time.ParseDuration(in.Duration); err != nil || dur <= 0 || dur > MaxRevealDuration {
			return store.Reveal{}, apperr.Invalid("duration must be between 1s and %v", MaxRevealDuration)
		}
	}
	if len(in.Fields) == 0 || len(in.Fields) > len(Catalogue) {
		return store.Reveal{}, apperr.Invalid("name the fields to reveal")
	}
	fields := slices.Clone(in.Fields)
	slices.Sort(fields)
	fields = slices.Compact(fields)
	for _, name := range fields {
		f, ok := FieldByKey(name)
		if !ok {
			return store.Reveal{}, apperr.Invalid("unknown field %q", name)
		}
		if !f.Personal {
			return store.Reveal{}, apperr.Invalid("field %q is not personal and is never masked", name)
		}
	}
	now := s.clock()
	r := store.Reveal{ID: store.NewID(), TenantID: tenantID, AdminID: v.Actor.Ref(), DeviceID: deviceID, Fields: fields,
		Reason: reason, CreatedAt: now, ExpiresAt: now.Add(dur)}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		d, err := s.Device(ctx, q, tenantID, deviceID)
		if err != nil {
			return err
		}
		if slices.Contains(fields, "location.coordinates") && d.Ownership != string(Corporate) {
			return apperr.Forbidden("location is only ever available for corporate devices")
		}
		if err := q.Reveals().Create(ctx, r); err != nil {
			return err
		}
		if d.SubjectID != "" {
			if err := RecordAccess(ctx, q, store.AccessRecord{ID: store.NewID(), TenantID: tenantID, SubjectID: d.SubjectID,
				DeviceID: deviceID, Actor: v.Actor.Ref(), Action: "reveal", Fields: fields, Reason: reason, At: now}); err != nil {
				return err
			}
		}
		e := v.Actor.Entry(tenantID, "privacy.reveal", "device", deviceID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"fields": fields, "until": r.ExpiresAt.Format(time.RFC3339)}
		return audit.Append(ctx, q, e)
	})
	return r, err
}

// AccessRecord returns who read a person's data; for admins with
// privacy.read and for the person themself.
func (s *Service) AccessRecord(ctx context.Context, tenantID, subjectID string, p store.Page) ([]store.AccessRecord, error) {
	q := s.st.Read()
	if _, err := s.Subject(ctx, q, tenantID, subjectID); err != nil {
		return nil, err
	}
	return q.Access().ListForSubject(ctx, tenantID, subjectID, p)
}
