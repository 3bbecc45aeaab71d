package privacy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
)

// AppIdentifiers returns the bundle IDs of the device's current app list
// (on personal devices only managed apps were ever stored), for compliance
// and group rules. Names and versions stay encrypted; the IDs are used in
// memory and never stored by the caller. known is false when no list was
// collected, or it can no longer be read (its key was destroyed).
func (s *Service) AppIdentifiers(ctx context.Context, q store.Queries, tenantID, deviceID string, current []store.InventoryValue) (ids []string, known bool, err error) {
	if current == nil {
		if current, err = q.Inventory().CurrentOf(ctx, tenantID, deviceID, []string{"apps.installed"}); err != nil {
			return nil, false, err
		}
	}
	for _, v := range current {
		if v.Field == "apps.installed" {
			return appIDs(s.vault.Session(ctx, q), v)
		}
	}
	return nil, false, nil
}

// AllAppIdentifiers is AppIdentifiers for every device of the tenant with
// an app list, read in pages: for a tenant-wide evaluation. Devices whose
// list is unreadable (erased) are left out.
func (s *Service) AllAppIdentifiers(ctx context.Context, q store.Queries, tenantID string) (map[string][]string, error) {
	lists, _, err := s.appLists(ctx, q, tenantID, false)
	return lists, err
}

// ShownAppIdentifiers is AllAppIdentifiers for the lists an admin may
// see: hidden names the devices whose list was stored hidden, which are
// not opened. The stored flag is what the device's own policy said when
// the list was collected (EffectivePolicy): on a personal device, a
// widening reaches it only once its owner accepted the notice and it
// reported again. A narrowing since is the caller's to apply, from the
// tenant's policy.
func (s *Service) ShownAppIdentifiers(ctx context.Context, q store.Queries, tenantID string) (shown map[string][]string, hidden map[string]bool, err error) {
	return s.appLists(ctx, q, tenantID, true)
}

// appLists reads every app list of the tenant in pages; with skipHidden,
// lists stored hidden are named in hidden rather than opened.
func (s *Service) appLists(ctx context.Context, q store.Queries, tenantID string, skipHidden bool) (lists map[string][]string, hidden map[string]bool, err error) {
	lists, hidden = map[string][]string{}, map[string]bool{}
	dk := s.vault.Session(ctx, q)
	after := ""
	for {
		vs, err := q.Inventory().FieldValues(ctx, tenantID, "apps.installed", after, 1000)
		if err != nil {
			return nil, nil, err
		}
		for _, v := range vs {
			if skipHidden && v.Hidden {
				hidden[v.DeviceID] = true
				continue
			}
			ids, known, err := appIDs(dk, v)
			if err != nil {
				return nil, nil, err
			}
			if known {
				lists[v.DeviceID] = ids
			}
		}
		if len(vs) < 1000 {
			return lists, hidden, nil
		}
		after = vs[len(vs)-1].DeviceID
	}
}

// ManagedApp is one entry of the apps.managed field: the state of an app
// the organisation manages, as the device reports it.
type ManagedApp struct {
	ID        string `json:"id"`
	Status    string `json:"status"` // e.g. Managed, Installing, UserRejected, ManagedButUninstalled
	Validated *bool  `json:"validated,omitempty"`
}

// ManagedApps returns the device's latest managed-app states (apps.managed),
// for the protocol adapter to tell the organisation's apps from the
// employee's own. Like AppIdentifiers, they are used in memory and never
// stored by the caller. None are returned when no list was collected or it
// can no longer be read (its key was destroyed).
func (s *Service) ManagedApps(ctx context.Context, q store.Queries, tenantID, deviceID string) ([]ManagedApp, error) {
	current, err := q.Inventory().CurrentOf(ctx, tenantID, deviceID, []string{"apps.managed"})
	if err != nil {
		return nil, err
	}
	for _, v := range current {
		plain, known, err := openValue(s.vault.Session(ctx, q), v)
		if err != nil || !known {
			return nil, err
		}
		var apps []ManagedApp
		if err := json.Unmarshal(plain, &apps); err != nil {
			return nil, fmt.Errorf("privacy: device %s has an unreadable managed-app list: %w", deviceID, err)
		}
		return apps, nil
	}
	return nil, nil
}

// openValue returns a stored value in clear; known is false when it can no
// longer be read (erased), which callers treat as never collected.
func openValue(dk *keys.DataKeys, v store.InventoryValue) (plain []byte, known bool, err error) {
	if v.Ciphertext == nil {
		return v.Value, true, nil
	}
	plain, err = dk.Decrypt(keys.FieldContext{TenantID: v.TenantID, KeyID: v.KeyID, Row: v.DeviceID, Field: v.Field}, v.Ciphertext)
	if err != nil {
		if unreadableReason(err) == "" {
			return nil, false, err
		}
		return nil, false, nil
	}
	return plain, true, nil
}

// appIDs opens one stored app list and keeps the bundle IDs only.
func appIDs(dk *keys.DataKeys, v store.InventoryValue) ([]string, bool, error) {
	plain, known, err := openValue(dk, v)
	if err != nil || !known {
		return nil, false, err
	}
	var apps []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(plain, &apps); err != nil {
		return nil, false, fmt.Errorf("privacy: device %s has an unreadable app list: %w", v.DeviceID, err)
	}
	ids := make([]string, 0, len(apps))
	for _, a := range apps {
		if a.ID != "" { // a Mac's app without a bundle ID, kept by name: no rule or report can name it
			ids = append(ids, a.ID)
		}
	}
	return ids, true, nil
}

// QueueNotification queues a mail to a person through the outbox, in the
// caller's transaction.
func (s *Service) QueueNotification(ctx context.Context, q store.Queries, tenantID, subjectID, kind, title, body string) error {
	return s.queueNotification(ctx, q, store.Notification{TenantID: tenantID, SubjectID: subjectID, Kind: kind, Title: title, Body: body})
}
