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
		m, err := store.ResealSettings(ctx, settings, prefix, func(s store.Setting) ([]byte, error) {
			var stored storedCA
			if err := json.Unmarshal(s.Value, &stored); err != nil {
				return nil, fmt.Errorf("scep: reading %s: %w", s.Key, err)
			}
			if secrets.SealedBy(stored.SealedKey) == sealer.KeyID() {
				return nil, nil
			}
			var err error
			if stored.SealedKey, err = secrets.Reseal(sealer, stored.SealedKey, []byte(s.Key)); err != nil {
				return nil, fmt.Errorf("scep: the key of %s does not open with the current or previous master key: %w", s.Key, err)
			}
			return json.Marshal(stored)
		})
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
