package iam

import (
	"context"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealMFASecrets re-seals every admin's TOTP secret under sealer's current
// master key (a master-key rotation; sealer still opens the previous one)
// and returns how many it changed.
func ResealMFASecrets(ctx context.Context, q store.Queries, sealer secrets.Sealer) (int, error) {
	return store.ResealColumn(ctx, q, sealer, store.SealedAdminMFASecrets, func(r store.SealedRow) []byte { return totpAD(r.ID) })
}
