package privacy

import (
	"context"
	"encoding/json"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
)

// AdminSight is how the organisation's admins see a value.
type AdminSight string

const (
	// AdminsSeeValue: anyone allowed to read devices sees it.
	AdminsSeeValue AdminSight = "value"
	// AdminsSeeMasked: shown only after an admin gives a reason (a
	// reveal), which the person's access record lists.
	AdminsSeeMasked AdminSight = "masked"
	// AdminsSeeNothing: still held, but its category is not collected
	// under the policy the device is under (narrowed since, or collected
	// beyond what its owner accepted); admins are not shown it, and it
	// goes when it expires.
	AdminsSeeNothing AdminSight = "nothing"
)

// EnumValues lists the sights for the API document.
func (AdminSight) EnumValues() []string {
	return []string{string(AdminsSeeValue), string(AdminsSeeMasked), string(AdminsSeeNothing)}
}

// SeenField is one value held about a person's device as the person sees
// it: the value itself, why it is held, and how admins see it.
type SeenField struct {
	Field       string          `json:"field"`
	Name        string          `json:"name"`
	Category    Category        `json:"category"`
	Purpose     string          `json:"purpose"`
	LegalBasis  string          `json:"legal_basis"`
	AdminsSee   AdminSight      `json:"admins_see"`
	Value       json.RawMessage `json:"value,omitempty"`
	Unreadable  string          `json:"unreadable,omitempty"` // erased, key_missing or corrupted
	CollectedAt time.Time       `json:"collected_at"`
	ExpiresAt   *time.Time      `json:"expires_at,omitempty"`
}

// OwnDeviceView is what a person's device holds and how admins see it,
// with the categories the policy the device is under does not collect (a
// value of one may still be held until it expires: AdminsSeeNothing).
type OwnDeviceView struct {
	Device       store.Device `json:"-"`
	Fields       []SeenField  `json:"fields"`
	NotCollected []Category   `json:"not_collected"`
}

// ViewOwnDevice shows person subjectID one of their devices as its admins
// see it (ViewDevice without a reveal), with every value held, in clear:
// they are the person's own, so reading them leaves no access record.
// Another person's device is not found.
func (s *Service) ViewOwnDevice(ctx context.Context, tenantID, subjectID, deviceID string) (OwnDeviceView, error) {
	q := s.st.Read()
	d, err := s.Device(ctx, q, tenantID, deviceID)
	if err != nil {
		return OwnDeviceView{}, err
	}
	if d.SubjectID == "" || d.SubjectID != subjectID {
		return OwnDeviceView{}, apperr.NotFound("device")
	}
	settings, _, err := LoadSettings(ctx, q, tenantID)
	if err != nil {
		return OwnDeviceView{}, err
	}
	policy, err := EffectivePolicy(ctx, q, settings, d)
	if err != nil {
		return OwnDeviceView{}, err
	}
	out := OwnDeviceView{Device: d, Fields: []SeenField{}, NotCollected: []Category{}}
	for _, c := range Categories {
		if policy.Mode(Ownership(d.Ownership), c.Category) == Drop {
			out.NotCollected = append(out.NotCollected, c.Category)
		}
	}
	values, err := q.Inventory().Current(ctx, tenantID, deviceID)
	if err != nil {
		return OwnDeviceView{}, err
	}
	dk := s.vault.Session(ctx, q)
	for _, val := range values {
		listed, masked := adminSight(policy, d, val)
		f, _ := FieldByKey(val.Field)
		sf := SeenField{Field: val.Field, Name: f.Name, Category: Category(val.Category), Purpose: f.Purpose, LegalBasis: f.LegalBasis,
			AdminsSee: AdminsSeeValue, Value: val.Value, CollectedAt: val.CollectedAt}
		switch {
		case !listed:
			sf.AdminsSee = AdminsSeeNothing
		case masked:
			sf.AdminsSee = AdminsSeeMasked
		}
		if !val.ExpiresAt.IsZero() {
			t := val.ExpiresAt
			sf.ExpiresAt = &t
		}
		if val.Ciphertext != nil {
			plain, err := dk.Decrypt(keys.FieldContext{TenantID: tenantID, KeyID: val.KeyID, Row: deviceID, Field: val.Field}, val.Ciphertext)
			if sf.Unreadable = unreadableReason(err); err != nil && sf.Unreadable == "" {
				return OwnDeviceView{}, err
			}
			sf.Value = plain
		}
		out.Fields = append(out.Fields, sf)
	}
	return out, nil
}

// adminSight is how an admin without a reveal sees stored value val of
// device d under the policy d is held to: not at all (dropped since, so
// awaiting deletion, or collected beyond what its owner accepted), masked
// (collected hidden, or the policy hides it now: the stricter applies), or
// in clear.
func adminSight(policy Policy, d store.Device, val store.InventoryValue) (listed, masked bool) {
	mode := policy.Mode(Ownership(d.Ownership), Category(val.Category))
	if mode == Drop {
		return false, false
	}
	return true, val.Hidden || mode == Hide
}
