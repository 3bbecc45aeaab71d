package scep

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealKeys re-seals every tenant's CA, issuing CA and RA keys under
// sealer's current master key (sealer still opens the previous one), and
// returns how many it re-sealed. A master-key rotation that missed them
// would stop every enrolment and renewal once the old key is destroyed.
func ResealKeys(ctx context.Context, settings store.SettingStore, sealer secrets.Sealer) (int, error) {
	n := 0
	for _, prefix := range []string{caSettingKey(""), issuerSettingKey(""), "scep-ra:"} {
		after := ""
		for {
			page, err := settings.ListPrefix(ctx, prefix, after, 500)
			if err != nil {
				return n, err
			}
			for _, s := range page {
				var stored storedCA
				if err := json.Unmarshal(s.Value, &stored); err != nil {
					return n, fmt.Errorf("scep: reading %s: %w", s.Key, err)
				}
				if secrets.SealedBy(stored.SealedKey) == sealer.KeyID() {
					continue
				}
				if stored.SealedKey, err = secrets.Reseal(sealer, stored.SealedKey, []byte(s.Key)); err != nil {
					return n, fmt.Errorf("scep: the key of %s does not open with the current or previous master key: %w", s.Key, err)
				}
				value, err := json.Marshal(stored)
				if err != nil {
					return n, err
				}
				// A key replaced meanwhile (a new RA generation) keeps its write.
				swapped, err := settings.Swap(ctx, s.Key, s.Value, value)
				if err != nil {
					return n, err
				}
				if swapped {
					n++
				}
			}
			if len(page) < 500 {
				break
			}
			after = page[len(page)-1].Key
		}
	}
	return n, nil
}
