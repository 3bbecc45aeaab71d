package iam

import (
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// MFAResealJob re-seals every admin's TOTP secret under sealer's current
// master key (a master-key rotation; sealer still opens the previous one).
func MFAResealJob(sealer secrets.Sealer) store.ResealJob {
	return store.ColumnJob("admins' authenticator secrets", sealer, store.SealedAdminMFASecrets,
		func(r store.SealedRow) []byte { return totpAD(r.ID) })
}
