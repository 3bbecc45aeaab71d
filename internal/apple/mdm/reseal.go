package mdm

import (
	"context"
	"fmt"

	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ResealSecrets re-seals what Apple device management keeps sealed under
// the master key (sealer still opens the previous one): the SCEP keys, the
// push certificates, open commands' payloads and the devices' escrowed
// unlock and bootstrap tokens. It returns how many values it re-sealed.
func ResealSecrets(ctx context.Context, q store.Queries, sealer secrets.Sealer) (int, error) {
	n, err := scep.ResealKeys(ctx, q.Settings(), sealer)
	if err != nil {
		return n, err
	}
	m, err := resealPushCertificates(ctx, q.Settings(), sealer)
	n += m
	if err != nil {
		return n, err
	}
	for col, ad := range map[store.SealedColumn]func(store.SealedRow) []byte{
		store.SealedCommandPayloads: func(r store.SealedRow) []byte { return commandAD(r.ID) },
		store.SealedUnlockTokens:    func(r store.SealedRow) []byte { return []byte("unlock:" + r.ID) },
		store.SealedBootstrapTokens: func(r store.SealedRow) []byte { return []byte("bootstrap:" + r.ID) },
	} {
		m, err := store.ResealColumn(ctx, q, sealer, col, ad)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// resealPushCertificates re-seals every tenant's stored push certificate,
// sealed whole to its setting's key.
func resealPushCertificates(ctx context.Context, settings store.SettingStore, sealer secrets.Sealer) (int, error) {
	return store.ResealSettings(ctx, settings, pushCertKey(""), func(s store.Setting) ([]byte, error) {
		if secrets.SealedBy(s.Value) == sealer.KeyID() {
			return nil, nil
		}
		fresh, err := secrets.Reseal(sealer, s.Value, []byte(s.Key))
		if err != nil {
			return nil, fmt.Errorf("mdm: the push certificate %s does not open with the current or previous master key: %w", s.Key, err)
		}
		return fresh, nil
	})
}
