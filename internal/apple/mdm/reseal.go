package mdm

import (
	"context"
	"fmt"

	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealJobs re-seal what Apple device management keeps sealed under the
// master key (sealer still opens the previous one): the SCEP keys, the
// push certificates, open commands' payloads and the devices' unlock and
// bootstrap tokens escrowed before tokens went into the vault.
func ResealJobs(sealer secrets.Sealer) []store.ResealJob {
	return append(scep.ResealJobs(sealer),
		store.SettingsJob("push certificates", pushCertKey(""), func(s store.Setting) ([]byte, error) {
			// Sealed whole, bound to its setting's key.
			if secrets.SealedBy(s.Value) == sealer.KeyID() {
				return nil, nil
			}
			fresh, err := secrets.Reseal(sealer, s.Value, []byte(s.Key))
			if err != nil {
				return nil, fmt.Errorf("mdm: the push certificate %s does not open with the current or previous master key: %w", s.Key, err)
			}
			return fresh, nil
		}),
		store.ColumnJob("open commands' payloads", sealer, store.SealedCommandPayloads,
			func(r store.SealedRow) []byte { return commandAD(r.ID) }),
		legacyEscrowJob("escrowed unlock tokens", sealer, store.SealedUnlockTokens, unlockToken),
		legacyEscrowJob("escrowed bootstrap tokens", sealer, store.SealedBootstrapTokens, bootstrapToken),
	)
}

// legacyEscrowJob re-seals col's tokens of kind t still sealed under the
// master key. Those in the vault are left as they are: their device's data
// key is wrapped by its tenant's keyset, which the vault's own job re-seals.
func legacyEscrowJob(what string, sealer secrets.Sealer, col store.SealedColumn, t escrowedToken) store.ResealJob {
	current := func(escrowed []byte) bool { return inVault(escrowed) || secrets.SealedBy(escrowed) == sealer.KeyID() }
	return store.ResealJob{What: what, Page: func(ctx context.Context, q store.Queries, after string, limit int) (store.ResealPage, error) {
		return q.Sealed().Reseal(ctx, col, after, limit, current, func(r store.SealedRow) ([]byte, error) {
			fresh, err := secrets.Reseal(sealer, r.Sealed, t.masterAD(r.ID))
			if err != nil {
				return nil, fmt.Errorf("mdm: the token of device %s (tenant %s) does not open with the current or previous master key: %w", r.ID, r.TenantID, err)
			}
			return fresh, nil
		})
	}}
}
