package compliance

import (
	"context"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealSchedulePasswords re-seals every report schedule's archive password
// under sealer's current master key (sealer still opens the previous one),
// and returns how many it re-sealed.
func ResealSchedulePasswords(ctx context.Context, q store.Queries, sealer secrets.Sealer) (int, error) {
	return store.ResealColumn(ctx, q, sealer, store.SealedSchedulePasswords, func(r store.SealedRow) []byte { return scheduleAD(r.TenantID, r.ID) })
}
