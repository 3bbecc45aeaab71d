package scep

import (
	"encoding/json"
	"fmt"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealJobs re-seal every tenant's CA, issuing CA and RA keys under
// sealer's current master key (sealer still opens the previous one). A
// master-key rotation that missed them would stop every enrolment and
// renewal once the old key is destroyed.
func ResealJobs(sealer secrets.Sealer) []store.ResealJob {
	var jobs []store.ResealJob
	for _, kind := range []struct{ what, prefix string }{
		{"SCEP CA keys", caSettingKey("")}, {"SCEP issuing CA keys", issuerSettingKey("")}, {"SCEP RA keys", "scep-ra:"},
	} {
		jobs = append(jobs, store.SettingsJob(kind.what, kind.prefix, func(s store.Setting) ([]byte, error) {
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
		}))
	}
	return jobs
}
