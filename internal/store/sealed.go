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
	// SealedActionApprovals: the payloads of remote actions' approvals,
	// whose options (a wipe's PIN) are sealed inside; the approval's ID.
	// The column holds JSON, so its current and reseal functions look
	// inside.
	SealedActionApprovals
	// SealedDepartedPINs: the Find My PINs kept after their Mac's record
	// went; the ID of the action that carried the PIN.
	SealedDepartedPINs
)

// SealedColumns lists every SealedColumn.
func SealedColumns() []SealedColumn {
	return []SealedColumn{SealedCommandPayloads, SealedUnlockTokens, SealedBootstrapTokens, SealedProfileSecrets,
		SealedSchedulePasswords, SealedActionPINs, SealedAdminMFASecrets, SealedActionApprovals, SealedDepartedPINs}
}

// SealedRow is one sealed value and the row that holds it.
type SealedRow struct {
	TenantID string
	ID       string
	Sealed   []byte
}

// SealedStore re-seals the SealedColumns.
type SealedStore interface {
	// Reseal reads up to limit values of col whose row ID sorts after
	// after, passes each for which current is false to reseal, and writes
	// what it returns where the row still holds the value read (a
	// concurrent write wins). Next is the last ID read, "" once there is
	// nothing more to read.
	Reseal(ctx context.Context, col SealedColumn, after string, limit int, current func(sealed []byte) bool,
		reseal func(SealedRow) ([]byte, error)) (ResealPage, error)
}

// ResealPage is what a page of a re-seal did.
type ResealPage struct {
	// Found counts the values not yet under the current key; Written
	// those re-sealed. The rest changed while the page ran (a node wrote
	// them), and the next pass looks at them again.
	Found, Written int
	// Next is the cursor to go on from, "" after the last page.
	Next string
}

// ResealPageSize is how many values a master-key rotation re-seals per
// transaction: small enough that no transaction holds the SQLite writer or
// PostgreSQL's row locks for long.
const ResealPageSize = 500

// A ResealJob re-seals one kind of value kept sealed under the master key,
// a page at a time, every write a compare-and-swap: a rotation is many
// short transactions, and one stopped halfway is finished by running it
// again.
type ResealJob struct {
	// What names the values for the operator: "open commands' payloads".
	What string
	// Page re-seals up to limit values after the cursor after ("" at the
	// start).
	Page func(ctx context.Context, q Queries, after string, limit int) (ResealPage, error)
}

// ColumnJob re-seals col's values not yet under s's current key (s is a
// keyring that still opens the previous one), each bound to what ad
// derives from its row.
func ColumnJob(what string, s secrets.Sealer, col SealedColumn, ad func(SealedRow) []byte) ResealJob {
	current := func(sealed []byte) bool { return secrets.SealedBy(sealed) == s.KeyID() }
	return ResealJob{What: what, Page: func(ctx context.Context, q Queries, after string, limit int) (ResealPage, error) {
		return q.Sealed().Reseal(ctx, col, after, limit, current, func(r SealedRow) ([]byte, error) {
			fresh, err := secrets.Reseal(s, r.Sealed, ad(r))
			if err != nil {
				return nil, fmt.Errorf("store: %s of tenant %s does not open with the current or previous master key: %w", r.ID, r.TenantID, err)
			}
			return fresh, nil
		})
	}}
}

// SettingsJob passes each setting under prefix to reseal, which returns
// its value with the sealed part re-sealed, or nil when it already is, and
// swaps that in where the setting still holds the value read: a write
// meanwhile wins.
func SettingsJob(what, prefix string, reseal func(Setting) ([]byte, error)) ResealJob {
	return ResealJob{What: what, Page: func(ctx context.Context, q Queries, after string, limit int) (ResealPage, error) {
		var page ResealPage
		batch, err := q.Settings().ListPrefix(ctx, prefix, after, limit)
		if err != nil {
			return page, err
		}
		for _, s := range batch {
			fresh, err := reseal(s)
			if err != nil {
				return page, err
			}
			if fresh == nil {
				continue
			}
			page.Found++
			swapped, err := q.Settings().Swap(ctx, s.Key, s.Value, fresh)
			if err != nil {
				return page, err
			}
			if swapped {
				page.Written++
			}
		}
		if len(batch) == limit {
			page.Next = batch[len(batch)-1].Key
		}
		return page, nil
	}}
}

// resealPasses bounds how many passes RunReseal makes over the jobs.
const resealPasses = 3

// RunReseal runs jobs in order, each page in its own transaction of st,
// and returns how many values they re-sealed. It passes over them again
// until a pass finds nothing left under the old key: a value a node
// changed while its page ran (a swap lost) is looked at again. When values
// keep turning up, something still seals under the old key, and it says
// so. progress, when set, hears each job's running total after every
// committed page. On an error the pages committed stay committed: running
// the jobs again finishes them. limit is clamped to 1..1000, as stores
// cap their pages.
func RunReseal(ctx context.Context, st Store, jobs []ResealJob, limit int, progress func(what string, written int)) (int, error) {
	limit = min(max(limit, 1), 1000)
	total := 0
	for pass := 1; ; pass++ {
		found, written, err := resealPass(ctx, st, jobs, limit, pass, progress)
		total += written
		if err != nil || found == 0 {
			return total, err
		}
		if pass == resealPasses {
			return total, fmt.Errorf("values kept turning up under the old master key through %d passes: "+
				"a node or command still seals with it as its current key; give every node the new key first, then run this again", pass)
		}
	}
}

func resealPass(ctx context.Context, st Store, jobs []ResealJob, limit, pass int, progress func(what string, written int)) (found, written int, err error) {
	for _, job := range jobs {
		what := job.What
		if pass > 1 {
			what = fmt.Sprintf("%s (pass %d)", job.What, pass)
		}
		done, after := 0, ""
		for {
			var page ResealPage
			err := st.Tx(ctx, func(q Queries) error {
				var err error
				page, err = job.Page(ctx, q, after, limit)
				return err
			})
			if err != nil {
				return found, written, fmt.Errorf("re-sealing %s: %w", job.What, err)
			}
			found += page.Found
			written += page.Written
			done += page.Written
			if progress != nil {
				progress(what, done)
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
	}
	return found, written, nil
}
