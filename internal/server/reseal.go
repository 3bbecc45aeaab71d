package server

import (
	"context"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// MasterResealJobs are a master-key rotation's work: every tenant keyset
// in vault and every secret kept outside it re-sealed under the current
// master key (sealer, a keyring that still opens the previous one). Those
// are the audit signing key, admins' TOTP secrets, the SCEP keys, push
// certificates, open commands' payloads, escrowed device tokens,
// configuration profiles' secrets, report schedules' passwords, the Find
// My PINs of Macs' locks and wipes, and the options of actions awaiting
// approval. Run them with store.RunReseal.
func MasterResealJobs(vault *keys.Vault, sealer secrets.Sealer) []store.ResealJob {
	jobs := []store.ResealJob{
		vault.MasterResealJob(sealer),
		{What: "the audit signing key", Page: func(ctx context.Context, q store.Queries, _ string, _ int) (store.ResealPage, error) {
			found, swapped, err := audit.ResealSigningKey(ctx, q, sealer)
			return store.ResealPage{Found: count(found), Written: count(swapped)}, err
		}},
		iam.MFAResealJob(sealer),
	}
	jobs = append(jobs, mdm.ResealJobs(sealer)...)
	jobs = append(jobs, device.ProfileSecretsResealJob(sealer), compliance.SchedulePasswordsResealJob(sealer))
	return append(jobs, actions.ResealJobs(sealer)...)
}

func count(b bool) int {
	if b {
		return 1
	}
	return 0
}
