package scep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/steward-mdm/steward/internal/store"
)

// ForgetTenant deletes every key and record the tenant's SCEP service kept:
// its CA and issuing CA, every RA generation, the records of the
// certificates it issued and renewed, its challenges and the certificates
// kept for resends of redeemed ones. It runs when the tenant is deleted,
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
	byChallenge := map[string]func([]byte) (string, error){
		challengeKeyPrefix: func(value []byte) (string, error) {
			var rec challengeRecord
			err := json.Unmarshal(value, &rec)
			return rec.TenantID, err
		},
		redeemedKeyPrefix: func(value []byte) (string, error) {
			var rec redeemedRecord
			err := json.Unmarshal(value, &rec)
			return rec.TenantID, err
		},
	}
	for prefix, tenantOf := range byChallenge {
		if err := forgetChallengeKeyed(ctx, settings, prefix, tenantID, tenantOf); err != nil {
			return fmt.Errorf("scep: forgetting tenant %s: %w", tenantID, err)
		}
	}
	return nil
}

// forgetChallengeKeyed deletes tenantID's records under prefix. They are
// keyed by a challenge's hash, not by tenant, so every record is read for
// its tenant: a tenant is deleted rarely, and these records go once they
// expire. Records that cannot be read are left to PurgeExpiredChallenges,
// which deletes them whoever they belonged to.
func forgetChallengeKeyed(ctx context.Context, settings store.SettingStore, prefix, tenantID string,
	tenantOf func([]byte) (string, error)) error {
	after := ""
	for {
		page, err := settings.ListPrefix(ctx, prefix, after, 500)
		if err != nil || len(page) == 0 {
			return err
		}
		after = page[len(page)-1].Key
		for _, s := range page {
			if owner, err := tenantOf(s.Value); err != nil || owner != tenantID {
				continue
			}
			// Another node forgetting the same tenant may have deleted it.
			if err := settings.Delete(ctx, s.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
}
