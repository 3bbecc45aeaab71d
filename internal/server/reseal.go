package server

import (
	"context"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealSecrets re-seals the secrets kept outside the key vault (the audit
// signing key, admins' TOTP secrets and the Find My PINs of Macs' locks and
// erases) under the current master key.
func ResealSecrets(ctx context.Context, q store.Queries, sealer secrets.Sealer) (int, error) {
	n := 0
	changed, err := audit.ResealSigningKey(ctx, q, sealer)
	if err != nil {
		return 0, err
	}
	if changed {
		n++
	}
	tenants, err := privacy.TenantIDs(ctx, q)
	if err != nil {
		return n, err
	}
	m, err := iam.ResealMFASecrets(ctx, q, sealer, tenants)
	if err != nil {
		return n + m, err
	}
	p, err := actions.ResealPINs(ctx, q, sealer, tenants)
	return n + m + p, err
}
