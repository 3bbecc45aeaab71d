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
		if current, err = q.Inventory().Current(ctx, tenantID, deviceID); err != nil {
			return nil, false, err
		}
	}
	for _, v := range current {
		if v.Field != "apps.installed" {
			continue
		}
		plain := v.Value
		if v.Ciphertext != nil {
			plain, err = s.vault.Session(ctx, q).Decrypt(keys.FieldContext{TenantID: tenantID, KeyID: v.KeyID, Row: deviceID, Field: v.Field}, v.Ciphertext)
			if err != nil {
				if unreadableReason(err) == "" {
					return nil, false, err
				}
				return nil, false, nil // erased or unreadable: unknown, as if never collected
			}
		}
		var apps []App
		if err := json.Unmarshal(plain, &apps); err != nil {
			return nil, false, fmt.Errorf("privacy: device %s has an unreadable app list: %w", deviceID, err)
		}
		ids = make([]string, 0, len(apps))
		for _, a := range apps {
			ids = append(ids, a.ID)
		}
		return ids, true, nil
	}
	return nil, false, nil
}

// QueueNotification queues a mail to a person through the outbox, in the
// caller's transaction.
func (s *Service) QueueNotification(ctx context.Context, q store.Queries, tenantID, subjectID, kind, title, body string) error {
	return s.queueNotification(ctx, q, tenantID, subjectID, kind, title, body)
}
