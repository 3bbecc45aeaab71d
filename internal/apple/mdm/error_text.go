package mdm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// The devices' error descriptions are kept only where the policy shows
// usage logs (keepsErrorText), but that is decided when a result arrives:
// descriptions stored before, by a Steward that kept them on every class,
// or while the policy still showed them, would stay readable until their
// commands expire. A strip pass walks every command once and strips what
// the policy now hides. Passes are queued under errorTextPassPrefix, one
// key per cause so that no pass can overwrite another's progress; the
// value is the last command ID a pass has done.
const (
	errorTextPassPrefix = "mdm.error-text-pass/"
	// errorTextUpgradeKey marks that the pass for descriptions stored
	// before Steward hid them was queued.
	errorTextUpgradeKey = "mdm.error-text-upgrade-queued"
)

// queueErrorTextPass is the privacy core's hook for a policy change: a
// class that showed usage logs and no longer does has its stored
// descriptions stripped by a pass.
func (s *Service) queueErrorTextPass(ctx context.Context, q store.Queries, tenantID string, old, next privacy.Policy) error {
	for _, o := range privacy.Ownerships {
		if old.Mode(o, privacy.UsageLogs) == privacy.Show && next.Mode(o, privacy.UsageLogs) != privacy.Show {
			return q.Settings().Put(ctx, errorTextPassPrefix+store.NewID(), []byte{})
		}
	}
	return nil
}

// StripHiddenErrorText runs queued strip passes in steps of batch
// commands, each step its own transaction, until they are done or maxSteps
// steps have run; the first call also queues the upgrade's pass. Several
// nodes may run it at once: a step only strips, which is idempotent, and
// a pass's progress only ever names commands it has done. It returns how
// many commands' chains it stripped.
func (s *Service) StripHiddenErrorText(ctx context.Context, batch, maxSteps int) (int, error) {
	if batch < 1 || maxSteps < 1 {
		// A batch of none would read nothing and end every pass undone.
		return 0, fmt.Errorf("mdm: stripping error text needs a batch and a number of steps of at least 1, not %d and %d", batch, maxSteps)
	}
	if err := s.queueUpgradePass(ctx); err != nil {
		return 0, err
	}
	if err := s.queueExpiryPass(ctx); err != nil {
		return 0, err
	}
	stripped := 0
	for steps := 0; steps < maxSteps; {
		passes, err := s.st.Read().Settings().ListPrefix(ctx, errorTextPassPrefix, "", 1)
		if err != nil || len(passes) == 0 {
			return stripped, err
		}
		pass, after := passes[0].Key, string(passes[0].Value)
		for ; steps < maxSteps; steps++ {
			n, next, err := s.stripErrorTextStep(ctx, pass, after, batch)
			stripped += n
			if err != nil {
				return stripped, err
			}
			if next == "" {
				steps++
				break
			}
			after = next
		}
	}
	return stripped, nil
}

// queueUpgradePass queues, once, the pass for descriptions stored before
// Steward kept them only where the policy shows usage logs.
func (s *Service) queueUpgradePass(ctx context.Context) error {
	if _, err := s.st.Read().Settings().Get(ctx, errorTextUpgradeKey); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return s.st.Tx(ctx, func(q store.Queries) error {
		queued, err := q.Settings().PutIfAbsent(ctx, errorTextUpgradeKey, []byte(s.clock().UTC().Format(time.RFC3339)))
		if err != nil || !queued {
			return err // another node queued it
		}
		return q.Settings().Put(ctx, errorTextPassPrefix+"0-upgrade", []byte{})
	})
}

// stripErrorTextStep strips the commands of one batch after after and
// records the pass's progress, or its end; next is empty when it ended.
func (s *Service) stripErrorTextStep(ctx context.Context, pass, after string, batch int) (stripped int, next string, err error) {
	err = s.st.Tx(ctx, func(q store.Queries) error {
		stripped = 0 // a retried transaction starts again
		if _, err := q.Settings().Get(ctx, pass); errors.Is(err, store.ErrNotFound) {
			next = "" // another node finished it
			return nil
		} else if err != nil {
			return err
		}
		described, last, err := q.Commands().DescribedErrors(ctx, after, batch)
		if err != nil {
			return err
		}
		for _, c := range described {
			keep, err := keepsClassErrorText(ctx, q, c.TenantID, privacy.Ownership(c.Ownership), c.CompletedAt, s.clock())
			if err != nil {
				return err
			}
			if keep {
				continue
			}
			bare, changed, err := stripDeviceText(c.ErrorChain)
			if err != nil {
				return err
			}
			if !changed {
				continue
			}
			if err := q.Commands().SetErrorChain(ctx, c.TenantID, c.ID, bare); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			stripped++
		}
		next = last
		if last == "" {
			return q.Settings().Delete(ctx, pass)
		}
		return q.Settings().Put(ctx, pass, []byte(last))
	})
	return stripped, next, err
}

// keepsClassErrorText is keepsErrorText for a class (empty: the device is
// gone, and nothing of it is kept), for a command that finished at
// completed: the descriptions are usage logs, kept no longer than the
// tenant keeps those, though the command itself stays its 30 days.
func keepsClassErrorText(ctx context.Context, q store.Queries, tenantID string, o privacy.Ownership, completed, now time.Time) (bool, error) {
	if !o.Valid() || o.PersonallyOwned() {
		return false, nil
	}
	settings, err := privacy.ViewSettings(ctx, q, tenantID)
	if err != nil {
		return false, err
	}
	if r := settings.Retention(privacy.UsageLogs); r > 0 && completed.Before(now.Add(-r)) {
		return false, nil
	}
	return settings.Policy.Mode(o, privacy.UsageLogs) == privacy.Show, nil
}

// errorTextExpiryKey holds when the last pass for descriptions past their
// usage-logs retention was queued.
const errorTextExpiryKey = "mdm.error-text-expiry-queued"

// queueExpiryPass queues, once a day, a pass that strips the descriptions
// that have outlived their tenant's usage-logs retention, when a tenant
// keeps usage logs for less than a command's 30 days: the commands'
// purge would otherwise keep them that long.
func (s *Service) queueExpiryPass(ctx context.Context) error {
	now := s.clock()
	last, err := s.st.Read().Settings().Get(ctx, errorTextExpiryKey)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if at, perr := time.Parse(time.RFC3339, string(last)); err == nil && perr == nil && now.Sub(at) < 24*time.Hour {
		return nil
	}
	short, err := s.anyShortUsageLogs(ctx)
	if err != nil {
		return err
	}
	return s.st.Tx(ctx, func(q store.Queries) error {
		again, err := q.Settings().Get(ctx, errorTextExpiryKey)
		if err == nil && string(again) != string(last) {
			return nil // another node queued it meanwhile
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := q.Settings().Put(ctx, errorTextExpiryKey, []byte(now.Format(time.RFC3339))); err != nil || !short {
			return err
		}
		return q.Settings().Put(ctx, errorTextPassPrefix+"expiry-"+store.NewID(), []byte{})
	})
}

// anyShortUsageLogs reports whether a tenant keeps usage logs for less
// than a command is kept.
func (s *Service) anyShortUsageLogs(ctx context.Context) (bool, error) {
	tenants, err := privacy.TenantIDs(ctx, s.st.Read())
	if err != nil {
		return false, err
	}
	for _, t := range tenants {
		settings, err := privacy.ViewSettings(ctx, s.st.Read(), t)
		if err != nil {
			return false, err
		}
		if r := settings.Retention(privacy.UsageLogs); r > 0 && r < privacy.CommandResultRetention {
			return true, nil
		}
	}
	return false, nil
}

// stripDeviceText returns chain without the descriptions a device wrote,
// as boundedErrorChain keeps it where they are hidden. Entries without a
// domain or a code are Steward's own (why it cancelled or never sent a
// command) and keep theirs. A chain that does not decode is left as it is.
func stripDeviceText(chain string) (string, bool, error) {
	var entries []mdmproto.ErrorChainItem
	if json.Unmarshal([]byte(chain), &entries) != nil {
		return chain, false, nil
	}
	changed := false
	for i, e := range entries {
		if (e.ErrorDomain != "" || e.ErrorCode != 0) && hasDescription(e) {
			entries[i].LocalizedDescription, entries[i].USEnglishDescription = "", ""
			changed = true
		}
	}
	if !changed {
		return chain, false, nil
	}
	out, err := json.Marshal(entries)
	return string(out), true, err
}
