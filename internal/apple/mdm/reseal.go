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
	n, after := 0, ""
	for {
		page, err := settings.ListPrefix(ctx, pushCertKey(""), after, 500)
		if err != nil {
			return n, err
		}
		for _, s := range page {
			if secrets.SealedBy(s.Value) == sealer.KeyID() {
				continue
			}
			fresh, err := secrets.Reseal(sealer, s.Value, []byte(s.Key))
			if err != nil {
				return n, fmt.Errorf("mdm: the push certificate %s does not open with the current or previous master key: %w", s.Key, err)
			}
			// A certificate uploaded meanwhile keeps its write.
			swapped, err := settings.Swap(ctx, s.Key, s.Value, fresh)
			if err != nil {
				return n, err
			}
			if swapped {
				n++
			}
		}
		if len(page) < 500 {
			return n, nil
		}
		after = page[len(page)-1].Key
	}
}
