package device

import (
	"context"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealProfileSecrets re-seals every configuration profile's secrets under
// sealer's current master key (sealer still opens the previous one), and
// returns how many it re-sealed.
func ResealProfileSecrets(ctx context.Context, q store.Queries, sealer secrets.Sealer) (int, error) {
	return store.ResealColumn(ctx, q, sealer, store.SealedProfileSecrets, func(r store.SealedRow) []byte { return profileAD(r.TenantID, r.ID) })
}
