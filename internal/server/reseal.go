package server

import (
	"context"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealSecrets re-seals every secret kept outside the key vault under the
// current master key (sealer, a keyring that still opens the previous
// one): the audit signing key, admins' TOTP secrets, the SCEP keys, push
// certificates, open commands' payloads, escrowed device tokens,
// configuration profiles' secrets, report schedules' passwords and the Find
// My PINs of Macs' locks and wipes. It returns how many it re-sealed.
func ResealSecrets(ctx context.Context, q store.Queries, sealer secrets.Sealer) (int, error) {
	n := 0
	changed, err := audit.ResealSigningKey(ctx, q, sealer)
	if err != nil {
		return 0, err
	}
	if changed {
		n++
	}
	for _, reseal := range []func(context.Context, store.Queries, secrets.Sealer) (int, error){
		iam.ResealMFASecrets, mdm.ResealSecrets, device.ResealProfileSecrets, compliance.ResealSchedulePasswords, actions.ResealPINs,
	} {
		m, err := reseal(ctx, q, sealer)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
