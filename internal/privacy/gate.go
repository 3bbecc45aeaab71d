package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
)

// Observation is one datum a protocol adapter read from a device message,
// named by its catalogue key. Value must marshal to JSON.
type Observation struct {
	Field string
	Value any
	// ObservedAt is when the device determined the value, if it says (a
	// location's fix), which may be long before it reported it; zero
	// otherwise. The value's retention runs from then, never from later
	// than the report, though it is collected when the report arrives.
	ObservedAt time.Time
}

// App is one entry of the apps.installed field.
type App struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	Managed bool   `json:"managed"`
}

// Report is what a device sent, as the adapter understood it.
type Report struct {
	TenantID string
	DeviceID string
	Source   string // e.g. "apple-mdm/DeviceInformation", for diagnostics only
	Values   []Observation
	At       time.Time
}

// Admitted says what the gate did with a report.
type Admitted struct {
	Stored    int `json:"stored"`
	Unchanged int `json:"unchanged"`
	Encrypted int `json:"encrypted"`
	Dropped   int `json:"dropped"`
}

// Gate is the one entry point for device data: it drops what the tenant's
// policy forbids for the device's ownership class (on a personally owned
// device, what its owner has not accepted: EffectiveTerms), encrypts what is
// personal under the device's data key, and stamps every stored value with
// its data subject, category and expiry (on a personally owned device, no
// later than the notice its owner accepted says).
type Gate struct {
	Vault *keys.Vault
	// Disabled stores every value as plaintext, unfiltered. It exists only
	// so the benchmark can measure what the gate costs.
	Disabled bool
	// Changed, when set, runs after a report changed the device's stored
	// values, in the same transaction, with the device's current values
	// (personal ones still encrypted) as its policy lets admins see them
	// (marked hidden where it hides their category) and the keys of the
	// fields this report changed. It also runs, with no changed field,
	// after a policy narrowing or a retention purge deleted or hid some of
	// the device's values. Device management keeps its projection, groups,
	// profiles and compliance in step through it.
	Changed func(ctx context.Context, q store.Queries, dev store.Device, current []store.InventoryValue, changed []string) error
}

// Admit passes r through the gate inside the caller's transaction q.
func (g *Gate) Admit(ctx context.Context, q store.Queries, r Report) (Admitted, error) {
	var out Admitted
	// Locked: a concurrent deprovisioning or erasure either finishes first
	// (and this report is refused or unassigned) or waits for this one.
	dev, err := q.Devices().Lock(ctx, r.TenantID, r.DeviceID)
	if err != nil {
		return out, err
	}
	if dev.State == store.DeviceLeaving {
		// Still talking while it removes its management profile: what it
		// reports is dropped, and no data key is made for it again.
		out.Dropped = len(r.Values)
		return out, nil
	}
	if dev.Gone() {
		return out, apperr.Conflict("device %s is deprovisioned; its data is no longer accepted", dev.ID)
	}
	at := r.At.UTC()
	if r.At.IsZero() {
		at = time.Now().UTC()
	}
	settings, err := loadSettingsShared(ctx, q, r.TenantID, at)
	if err != nil {
		return out, err
	}
	ownership := Ownership(dev.Ownership)
	terms := currentTerms(settings)
	if !g.Disabled {
		if terms, err = EffectiveTerms(ctx, q, settings, dev); err != nil {
			return out, err
		}
	}
	policy := terms.Policy
	// Only the reported fields are compared; the rest of the device's
	// values, an app list's ciphertext among them, are read only when
	// something changed and the hook needs them all.
	reported := make([]string, 0, len(r.Values))
	for _, obs := range r.Values {
		if !slices.Contains(reported, obs.Field) {
			reported = append(reported, obs.Field)
		}
	}
	current, err := q.Inventory().CurrentOf(ctx, r.TenantID, r.DeviceID, reported)
	if err != nil {
		return out, err
	}
	prev := make(map[string]store.InventoryValue, len(current))
	for _, v := range current {
		prev[v.Field] = v
	}
	var keyID string
	var dk *keys.DataKeys
	var put, history []store.InventoryValue
	fresh := map[time.Time][]string{}
	for _, obs := range r.Values {
		f, ok := FieldByKey(obs.Field)
		if !ok {
			return Admitted{}, fmt.Errorf("privacy gate: field %q is not in the data catalogue", obs.Field)
		}
		mode := policy.Mode(ownership, f.Category)
		if g.Disabled {
			mode = Show
		}
		if mode == Drop {
			out.Dropped++
			continue
		}
		value := obs.Value
		if f.Key == "apps.installed" && ownership.PersonallyOwned() && !g.Disabled {
			value = managedOnly(value)
		}
		plain, err := json.Marshal(value)
		if err != nil {
			return Admitted{}, fmt.Errorf("privacy gate: field %s: %w", f.Key, err)
		}
		v := store.InventoryValue{
			TenantID: r.TenantID, DeviceID: r.DeviceID, Field: f.Key, Category: string(f.Category),
			SubjectID: dev.SubjectID, Hidden: mode == Hide, CollectedAt: at,
		}
		if ret := terms.Retention(f.Category); ret > 0 {
			v.ExpiresAt = retainedFrom(obs, at).Add(ret)
			if !v.ExpiresAt.After(at) {
				// Determined longer ago than its period: it may not be held
				// at all, and the value stored before it stays.
				out.Dropped++
				continue
			}
		}
		old, had := prev[f.Key]
		personal := f.Personal && !g.Disabled
		var fc keys.FieldContext
		if personal {
			if dk == nil {
				dk = g.Vault.Session(ctx, q)
				if keyID, err = dk.EnsureDataKey(r.TenantID, keys.DeviceOwner(dev.ID), dev.SubjectID); err != nil {
					return Admitted{}, err
				}
			}
			v.KeyID = keyID
			fc = keys.FieldContext{TenantID: r.TenantID, KeyID: keyID, Row: dev.ID, Field: f.Key}
			if v.Digest, err = dk.Digest(fc, plain); err != nil {
				return Admitted{}, err
			}
		}
		same := had && old.Hidden == v.Hidden && old.SubjectID == v.SubjectID && old.KeyID == v.KeyID &&
			((personal && old.Ciphertext != nil && bytes.Equal(old.Digest, v.Digest)) ||
				(!personal && !g.Disabled && old.Ciphertext == nil && bytes.Equal(old.Value, plain)))
		if same {
			out.Unchanged++
			if recentlyConfirmed(old, v) {
				continue
			}
			// Same value: only its freshness moves, with one statement per
			// expiry rather than a rewrite of every value.
			fresh[v.ExpiresAt] = append(fresh[v.ExpiresAt], f.Key)
			continue
		}
		if personal {
			if v.Ciphertext, err = dk.Encrypt(fc, plain); err != nil {
				return Admitted{}, err
			}
			out.Encrypted++
		} else {
			v.Value = plain
		}
		if had {
			history = append(history, historyOf(old, at, terms))
		}
		put = append(put, v)
		out.Stored++
	}
	if len(put) > 0 {
		if err := q.Inventory().Put(ctx, put, history); err != nil {
			return Admitted{}, err
		}
	}
	for expires, fields := range fresh {
		if err := q.Inventory().Refresh(ctx, r.TenantID, r.DeviceID, fields, at, expires); err != nil {
			return Admitted{}, err
		}
	}
	if err := g.indexDevice(ctx, q, dev, r.Values, policy); err != nil {
		return Admitted{}, err
	}
	if out.Stored > 0 && g.Changed != nil {
		changed := make([]string, 0, len(put))
		for _, v := range put {
			changed = append(changed, v.Field)
		}
		now, err := q.Inventory().Current(ctx, r.TenantID, r.DeviceID)
		if err != nil {
			return Admitted{}, err
		}
		if !g.Disabled {
			now = shownUnder(policy, dev, now)
		}
		if err := g.Changed(ctx, q, dev, now, changed); err != nil {
			return Admitted{}, err
		}
	}
	return out, nil
}

// TooOldToKeep reports whether a value the device determined at observed,
// reported at, is older than retention ret and so not stored by the gate.
func TooOldToKeep(observed, at time.Time, ret time.Duration) bool {
	return ret > 0 && !retainedFrom(Observation{ObservedAt: observed}, at).Add(ret).After(at)
}

// retainedFrom is when the retention of obs, in a report received at,
// starts: when the device determined it, if it said so, but never later
// than at. A location reported late is kept no longer than a fresh one.
func retainedFrom(obs Observation, at time.Time) time.Time {
	if obs.ObservedAt.IsZero() || !obs.ObservedAt.Before(at) {
		return at
	}
	return obs.ObservedAt.UTC().Truncate(time.Microsecond)
}

// refreshGranularity is how far an unchanged value's collection time may lag
// behind the reports that confirm it. Devices asked again and again (an
// admin's repeated refresh, a fleet-wide query) would otherwise rewrite
// every value, and its expiry index, each time.
const refreshGranularity = 15 * time.Minute

// recentlyConfirmed says whether stored, holding the value fresh confirms,
// may stay as it is: collected within refreshGranularity, and expiring no
// later than fresh would. A skipped refresh can only make data expire
// sooner, never later than its retention allows.
func recentlyConfirmed(stored, fresh store.InventoryValue) bool {
	return fresh.CollectedAt.Sub(stored.CollectedAt) < refreshGranularity && !stored.ExpiresAt.After(fresh.ExpiresAt) &&
		stored.ExpiresAt.IsZero() == fresh.ExpiresAt.IsZero()
}

// indexDevice keeps the device's blind indexes of serial number and UDID,
// so admins can find a device by them without either being stored in clear.
// Where its policy drops device identity it clears them instead: an index
// kept from before would still find the device by what is not collected.
func (g *Gate) indexDevice(ctx context.Context, q store.Queries, dev store.Device, values []Observation, policy Policy) error {
	if g.Disabled {
		return nil
	}
	if policy.Mode(Ownership(dev.Ownership), DeviceIdentity) == Drop {
		if dev.SerialIndex == nil && dev.UDIDIndex == nil {
			return nil
		}
		dev.SerialIndex, dev.UDIDIndex = nil, nil
		return q.Devices().Update(ctx, dev)
	}
	changed := false
	for _, obs := range values {
		var target *[]byte
		switch obs.Field {
		case "device.serial_number":
			target = &dev.SerialIndex
		case "device.udid":
			target = &dev.UDIDIndex
		default:
			continue
		}
		raw, ok := obs.Value.(string)
		if !ok || raw == "" {
			continue
		}
		idx, err := g.Vault.BlindIndex(ctx, q, dev.TenantID, obs.Field, NormaliseIdentifier(raw))
		if err != nil {
			return err
		}
		if !bytes.Equal(*target, idx) {
			*target, changed = idx, true
		}
	}
	if !changed {
		return nil
	}
	return q.Devices().Update(ctx, dev)
}

// NormaliseIdentifier is how serial numbers and UDIDs are compared: case and
// surrounding space do not matter.
func NormaliseIdentifier(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// historyOf turns a superseded value into a history row that expires after
// the inventory-history period, or sooner if its category's retention is
// shorter, and never later than the value itself would have: being
// superseded does not keep a value longer than its category allows.
func historyOf(old store.InventoryValue, at time.Time, t Terms) store.InventoryValue {
	h := old
	h.ID = store.NewID()
	keep := InventoryHistoryRetention
	if ret := t.Retention(Category(old.Category)); ret > 0 && ret < keep {
		keep = ret
	}
	h.ExpiresAt = at.Add(keep)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(h.ExpiresAt) {
		h.ExpiresAt = old.ExpiresAt
	}
	return h
}

// managedOnly keeps the managed apps of an app list: on a personal device
// Steward never inventories the employee's own apps, whatever the policy.
func managedOnly(v any) any {
	apps, ok := v.([]App)
	if !ok {
		return []App{}
	}
	out := make([]App, 0, len(apps))
	for _, a := range apps {
		if a.Managed {
			out = append(out, a)
		}
	}
	return out
}
