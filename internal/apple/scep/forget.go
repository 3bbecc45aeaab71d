package scep

import (
	"context"
	"errors"
	"fmt"

	"github.com/steward-mdm/steward/internal/store"
)

// ForgetTenant deletes every key and record the tenant's SCEP service kept:
// its CA and issuing CA, every RA generation, and the records of the
// certificates it issued and renewed. It runs when the tenant is deleted,
// after its devices have left management; its certificates then chain to
// nothing.
func ForgetTenant(ctx context.Context, settings store.SettingStore, tenantID string) error {
	if tenantID == "" {
		return errors.New("scep: forgetting a tenant needs its ID")
	}
	for _, key := range []string{caSettingKey(tenantID), issuerSettingKey(tenantID)} {
		if err := settings.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("scep: forgetting tenant %s: %w", tenantID, err)
		}
	}
	for _, prefix := range []string{raSettingPrefix(tenantID), issuedSettingPrefix(tenantID), renewedSettingPrefix(tenantID)} {
		if _, err := settings.DeletePrefix(ctx, prefix); err != nil {
			return fmt.Errorf("scep: forgetting tenant %s: %w", tenantID, err)
		}
	}
	return nil
}
