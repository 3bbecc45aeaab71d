package iam

import (
	"context"
	"fmt"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealMFASecrets re-seals every admin's TOTP secret under sealer's current
// master key (a master-key rotation) and returns how many it changed.
func ResealMFASecrets(ctx context.Context, q store.Queries, sealer secrets.Sealer, tenantIDs []string) (int, error) {
	n := 0
	for _, t := range tenantIDs {
		page := store.Page{Limit: 1000}
		for {
			admins, err := q.Admins().List(ctx, t, page)
			if err != nil {
				return n, err
			}
			for _, a := range admins {
				if a.MFASecret == nil || secrets.SealedBy(a.MFASecret) == sealer.KeyID() {
					continue
				}
				plain, err := sealer.Open(a.MFASecret, totpAD(a.ID))
				if err != nil {
					return n, fmt.Errorf("iam: admin %s's authenticator secret does not open with the current or previous master key", a.ID)
				}
				if a.MFASecret, err = sealer.Seal(plain, totpAD(a.ID)); err != nil {
					return n, err
				}
				if err := q.Admins().Update(ctx, a); err != nil {
					return n, err
				}
				n++
			}
			if len(admins) < page.Limit {
				break
			}
			page.After = admins[len(admins)-1].ID
		}
	}
	return n, nil
}
