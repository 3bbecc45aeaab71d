package store

import (
	"context"
	"fmt"

	"github.com/steward-mdm/steward/internal/secrets"
)

// SealedColumn is a column of values sealed under the master key
// (secrets.Sealer), which a master-key rotation re-seals.
type SealedColumn int

const (
	// SealedCommandPayloads: the payloads of open commands (a finished one
	// has none); SealedRow.ID is the command's.
	SealedCommandPayloads SealedColumn = iota
	// SealedUnlockTokens and SealedBootstrapTokens: the tokens devices
	// escrowed; SealedRow.ID is the device's.
	SealedUnlockTokens
	SealedBootstrapTokens
	// SealedProfileSecrets: configuration profiles' secrets; the profile's ID.
	SealedProfileSecrets
	// SealedSchedulePasswords: report schedules' archive passwords; the
	// schedule's ID.
	SealedSchedulePasswords
	// SealedActionPINs: the Find My PINs of Macs' locks and wipes; the
	// action's ID.
	SealedActionPINs
	// SealedAdminMFASecrets: admins' TOTP secrets; the admin's ID.
	SealedAdminMFASecrets
)

// SealedColumns lists every SealedColumn.
func SealedColumns() []SealedColumn {
	return []SealedColumn{SealedCommandPayloads, SealedUnlockTokens, SealedBootstrapTokens, SealedProfileSecrets,
		SealedSchedulePasswords, SealedActionPINs, SealedAdminMFASecrets}
}

// SealedRow is one sealed value and the row that holds it.
type SealedRow struct {
	TenantID string
	ID       string
	Sealed   []byte
}

// SealedStore re-seals the SealedColumns.
type SealedStore interface {
	// Reseal passes each value of col for which current is false to
	// reseal, and writes what it returns where the row still holds the
	// value read (a concurrent write wins). It returns how many it wrote.
	Reseal(ctx context.Context, col SealedColumn, current func(sealed []byte) bool, reseal func(SealedRow) ([]byte, error)) (int, error)
}

// ResealColumn re-seals col's values not yet under s's current key (s is a
// keyring that still opens the previous one), each bound to what ad
// derives from its row, and returns how many it re-sealed.
func ResealColumn(ctx context.Context, q Queries, s secrets.Sealer, col SealedColumn, ad func(SealedRow) []byte) (int, error) {
	current := func(sealed []byte) bool { return secrets.SealedBy(sealed) == s.KeyID() }
	return q.Sealed().Reseal(ctx, col, current, func(r SealedRow) ([]byte, error) {
		fresh, err := secrets.Reseal(s, r.Sealed, ad(r))
		if err != nil {
			return nil, fmt.Errorf("store: %s of tenant %s does not open with the current or previous master key: %w", r.ID, r.TenantID, err)
		}
		return fresh, nil
	})
}

// ResealSettings passes each setting under prefix to reseal, which returns
// its value with the sealed part re-sealed, or nil when it already is, and
// swaps that in where the setting still holds the value read: a write
// meanwhile wins. It returns how many it swapped.
func ResealSettings(ctx context.Context, settings SettingStore, prefix string, reseal func(Setting) ([]byte, error)) (int, error) {
	const page = 500
	n, after := 0, ""
	for {
		batch, err := settings.ListPrefix(ctx, prefix, after, page)
		if err != nil {
			return n, err
		}
		for _, s := range batch {
			fresh, err := reseal(s)
			if err != nil {
				return n, err
			}
			if fresh == nil {
				continue
			}
			swapped, err := settings.Swap(ctx, s.Key, s.Value, fresh)
			if err != nil {
				return n, err
			}
			if swapped {
				n++
			}
		}
		if len(batch) < page {
			return n, nil
		}
		after = batch[len(batch)-1].Key
	}
}
