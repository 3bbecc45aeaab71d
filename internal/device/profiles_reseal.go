package device

import (
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ProfileSecretsResealJob re-seals every configuration profile's secrets
// under sealer's current master key (sealer still opens the previous one).
func ProfileSecretsResealJob(sealer secrets.Sealer) store.ResealJob {
	return store.ColumnJob("configuration profiles' secrets", sealer, store.SealedProfileSecrets,
		func(r store.SealedRow) []byte { return profileAD(r.TenantID, r.ID) })
}
