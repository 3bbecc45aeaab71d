package mdm

import (
	"fmt"

	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealJobs re-seal what Apple device management keeps sealed under the
// master key (sealer still opens the previous one): the SCEP keys, the
// push certificates, open commands' payloads and the devices' escrowed
// unlock and bootstrap tokens.
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
		store.ColumnJob("escrowed unlock tokens", sealer, store.SealedUnlockTokens,
			func(r store.SealedRow) []byte { return []byte("unlock:" + r.ID) }),
		store.ColumnJob("escrowed bootstrap tokens", sealer, store.SealedBootstrapTokens,
			func(r store.SealedRow) []byte { return []byte("bootstrap:" + r.ID) }),
	)
}
