package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	// Prior, when set, is the device's inventory read before the
	// transaction; see Admit.
	Prior *Snapshot
}

// Admitted says what the gate did with a report.
type Admitted struct {
	Stored    int `json:"stored"`
	Unchanged int `json:"unchanged"`
	Encrypted int `json:"encrypted"`
	Dropped   int `json:"dropped"`
}

// Gate is the one entry point for device data: it drops what the tenant's
// policy forbids for the device's ownership class, encrypts what is
// personal under the device's data key, and stamps every stored value with
// its data subject, category and expiry.
type Gate struct {
	Vault *keys.Vault
	// Disabled stores every value as plaintext, unfiltered. It exists only
	// so the benchmark can measure what the gate costs.
	Disabled bool
	// Changed, when set, runs after a report changed the device's stored
	// values, in the same transaction, with the device's current values
	// (personal ones still encrypted). Device management keeps its
	// projection, groups and compliance in step through it.
	Changed func(ctx context.Context, q store.Queries, dev store.Device, current []store.InventoryValue) error
}

// Snapshot is a device's current inventory, read before the transaction
// that admits its report, so that SQLite's single writer need not read it.
type Snapshot struct {
	TenantID, DeviceID string
	Values             []store.InventoryValue
}

// Admit passes r through the gate inside the caller's transaction q.
//
// With r.Prior set, the snapshot may already be stale. It is trusted only
// to conclude that the report changes nothing and confirms nothing due for
// refreshing; whatever is to be written is decided again on the inventory
// read inside q. A stale snapshot can thus only skip a write, never make one.
func (g *Gate) Admit(ctx context.Context, q store.Queries, r Report) (Admitted, error) {
	// Locked: a concurrent deprovisioning or erasure either finishes first
	// (and this report is refused or unassigned) or waits for this one.
	dev, err := q.Devices().Lock(ctx, r.TenantID, r.DeviceID)
	if err != nil {
		return Admitted{}, err
	}
	if dev.Gone() {
		return Admitted{}, apperr.Conflict("device %s is deprovisioned; its data is no longer accepted", dev.ID)
	}
	at := r.At.UTC()
	if r.At.IsZero() {
		at = time.Now().UTC()
	}
	settings, err := loadSettingsShared(ctx, q, r.TenantID, at)
	if err != nil {
		return Admitted{}, err
	}
	var p plan
	prior := r.Prior
	if prior != nil && (prior.TenantID != r.TenantID || prior.DeviceID != r.DeviceID) {
		prior = nil // another device's: the certificate's channel moved meanwhile
	}
	if prior != nil {
		if p, err = g.plan(ctx, q, r, dev, settings, at, prior.Values); err != nil {
			return Admitted{}, err
		}
	}
	if prior == nil || !p.idle() {
		current, err := q.Inventory().Current(ctx, r.TenantID, r.DeviceID)
		if err != nil {
			return Admitted{}, err
		}
		if p, err = g.plan(ctx, q, r, dev, settings, at, current); err != nil {
			return Admitted{}, err
		}
	}
	if len(p.put) > 0 {
		if err := q.Inventory().Put(ctx, p.put, p.history); err != nil {
			return Admitted{}, err
		}
	}
	for expires, fields := range p.fresh {
		if err := q.Inventory().Refresh(ctx, r.TenantID, r.DeviceID, fields, at, expires); err != nil {
			return Admitted{}, err
		}
	}
	if err := g.indexDevice(ctx, q, dev, r.Values, settings); err != nil {
		return Admitted{}, err
	}
	if p.out.Stored > 0 && g.Changed != nil {
		for _, v := range p.put {
			p.prev[v.Field] = v
		}
		now := make([]store.InventoryValue, 0, len(p.prev))
		for _, v := range p.prev {
			now = append(now, v)
		}
		if err := g.Changed(ctx, q, dev, now); err != nil {
			return Admitted{}, err
		}
	}
	return p.out, nil
}

// plan is what admitting a report will write.
type plan struct {
	out          Admitted
	put, history []store.InventoryValue
	// fresh lists, by new expiry, the unchanged fields whose collection
	// time moves.
	fresh map[time.Time][]string
	// prev is the device's inventory by field, with refreshed times.
	prev map[string]store.InventoryValue
}

// idle says the plan writes no inventory.
func (p plan) idle() bool { return len(p.put) == 0 && len(p.fresh) == 0 }

// plan compares r with the device's current values. Its only writes are
// to the key vault: creating the device's data key, or moving it to the
// device's person.
func (g *Gate) plan(ctx context.Context, q store.Queries, r Report, dev store.Device, settings Settings, at time.Time,
	current []store.InventoryValue) (plan, error) {
	p := plan{fresh: map[time.Time][]string{}, prev: make(map[string]store.InventoryValue, len(current))}
	for _, v := range current {
		p.prev[v.Field] = v
	}
	ownership := Ownership(dev.Ownership)
	var keyID string
	var dk *keys.DataKeys
	for _, obs := range r.Values {
		f, ok := FieldByKey(obs.Field)
		if !ok {
			return plan{}, fmt.Errorf("privacy gate: field %q is not in the data catalogue", obs.Field)
		}
		mode := settings.Policy.Mode(ownership, f.Category)
		if g.Disabled {
			mode = Show
		}
		if mode == Drop {
			p.out.Dropped++
			continue
		}
		value := obs.Value
		if f.Key == "apps.installed" && ownership.PersonallyOwned() && !g.Disabled {
			value = managedOnly(value)
		}
		plain, err := json.Marshal(value)
		if err != nil {
			return plan{}, fmt.Errorf("privacy gate: field %s: %w", f.Key, err)
		}
		v := store.InventoryValue{
			TenantID: r.TenantID, DeviceID: r.DeviceID, Field: f.Key, Category: string(f.Category),
			SubjectID: dev.SubjectID, Hidden: mode == Hide, CollectedAt: at,
		}
		if ret := settings.Retention(f.Category); ret > 0 {
			v.ExpiresAt = at.Add(ret)
		}
		old, had := p.prev[f.Key]
		personal := f.Personal && !g.Disabled
		var fc keys.FieldContext
		if personal {
			if dk == nil {
				dk = g.Vault.Session(ctx, q)
				if keyID, err = dk.EnsureDataKey(r.TenantID, keys.DeviceOwner(dev.ID), dev.SubjectID); err != nil {
					return plan{}, err
				}
			}
			v.KeyID = keyID
			fc = keys.FieldContext{TenantID: r.TenantID, KeyID: keyID, Row: dev.ID, Field: f.Key}
			if v.Digest, err = dk.Digest(fc, plain); err != nil {
				return plan{}, err
			}
		}
		same := had && old.Hidden == v.Hidden && old.SubjectID == v.SubjectID && old.KeyID == v.KeyID &&
			((personal && old.Ciphertext != nil && bytes.Equal(old.Digest, v.Digest)) ||
				(!personal && !g.Disabled && old.Ciphertext == nil && bytes.Equal(old.Value, plain)))
		if same {
			p.out.Unchanged++
			if recentlyConfirmed(old, v) {
				continue
			}
			// Same value: only its freshness moves, with one statement per
			// expiry rather than a rewrite of every value.
			old.CollectedAt, old.ExpiresAt = v.CollectedAt, v.ExpiresAt
			p.prev[f.Key] = old
			p.fresh[v.ExpiresAt] = append(p.fresh[v.ExpiresAt], f.Key)
			continue
		}
		if personal {
			if v.Ciphertext, err = dk.Encrypt(fc, plain); err != nil {
				return plan{}, err
			}
			p.out.Encrypted++
		} else {
			v.Value = plain
		}
		if had {
			p.history = append(p.history, historyOf(old, at, settings))
		}
		p.put = append(p.put, v)
		p.out.Stored++
	}
	return p, nil
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
func (g *Gate) indexDevice(ctx context.Context, q store.Queries, dev store.Device, values []Observation, settings Settings) error {
	if g.Disabled || settings.Policy.Mode(Ownership(dev.Ownership), DeviceIdentity) == Drop {
		return nil
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
// shorter.
func historyOf(old store.InventoryValue, at time.Time, s Settings) store.InventoryValue {
	h := old
	h.ID = store.NewID()
	keep := InventoryHistoryRetention
	if ret := s.Retention(Category(old.Category)); ret > 0 && ret < keep {
		keep = ret
	}
	h.ExpiresAt = at.Add(keep)
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
