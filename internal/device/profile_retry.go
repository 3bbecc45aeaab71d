package device

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// A profile install or removal can fail for a while only: the device's
// queue was full, or the device refused it at a bad moment. Nothing else
// would send it again until an admin changed the profile or the device's
// groups, so the hourly management job does (RetryProfiles), after a delay
// that grows with the failures, up to a bound. The count lives on the
// state, so the back-off survives restarts; a new version or assignment,
// or a success, starts it again.

// profileRetryDelays is how long after its n-th failed send in a row (n
// from 1) a state is sent again. Steward stops after the last delay's
// attempt fails.
var profileRetryDelays = []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour}

// failedAttempt counts one more failed send on st and sets when it is sent
// again, or says in its error that Steward stopped trying.
func (s *Service) failedAttempt(st *store.DeviceProfile) {
	st.Attempts++
	if st.Attempts > len(profileRetryDelays) {
		st.RetryAt = time.Time{}
		st.Error += fmt.Sprintf("; Steward stopped retrying after %d failed attempts", st.Attempts)
		return
	}
	st.RetryAt = s.clock().Add(profileRetryDelays[st.Attempts-1])
}

// RetryProfiles sends again, in every tenant, the failed profile installs
// and removals whose back-off is over, and says on how many devices. One
// device that cannot be retried does not hold up the others.
func (s *Service) RetryProfiles(ctx context.Context) (int, error) {
	tenants, err := privacy.TenantIDs(ctx, s.st.Read())
	if err != nil {
		return 0, err
	}
	now := s.clock()
	retried, failed := 0, 0
	for _, t := range tenants {
		page := store.Page{Limit: 500}
		for {
			ids, err := s.st.Read().DeviceProfiles().DueForRetry(ctx, t, now, page)
			if err != nil {
				return retried, err
			}
			for _, id := range ids {
				err := s.retryDevice(ctx, t, id, now)
				if ctx.Err() != nil {
					return retried, ctx.Err()
				}
				if err != nil {
					failed++
					s.log.Warn("retrying a device's failed profiles failed", "tenant", t, "device", id, "error", err.Error())
				} else {
					retried++
				}
			}
			if len(ids) < page.Limit {
				break
			}
			page.After = ids[len(ids)-1]
		}
	}
	if failed > 0 {
		return retried, fmt.Errorf("device: the failed profiles of %d devices could not be retried", failed)
	}
	return retried, nil
}

// retryDevice sends the device's due states again, under its lock: a
// command result or a report may be settling them meanwhile, and it may
// have left. The reconciliation applies a first send's rules; a device not
// enrolled (leaving, retired, deprovisioned) is sent nothing, and its
// retries end. The profiles retried are held against edits first, in the
// order an edit takes them (the profile, then a device): on PostgreSQL an
// edit under way would otherwise commit between the retry's read of the
// earlier version and its state, which would then name the version not
// sent last.
func (s *Service) retryDevice(ctx context.Context, tenantID, deviceID string, now time.Time) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		states, err := q.DeviceProfiles().ForDevice(ctx, tenantID, deviceID)
		if err != nil {
			return err
		}
		var due []string
		for _, st := range states {
			if !st.RetryAt.IsZero() {
				due = append(due, st.ProfileID)
			}
		}
		slices.Sort(due)
		if err := q.Profiles().Share(ctx, tenantID, due); err != nil {
			return err
		}
		d, err := q.Devices().Lock(ctx, tenantID, deviceID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.State == store.DeviceEnrolled {
			return s.reconcileProfiles(ctx, q, tenantID, []string{deviceID}, reconcilePass{retryDue: now})
		}
		if states, err = q.DeviceProfiles().ForDevice(ctx, tenantID, deviceID); err != nil {
			return err
		}
		for _, st := range states {
			if st.RetryAt.IsZero() {
				continue
			}
			st.RetryAt = time.Time{}
			if err := q.DeviceProfiles().Put(ctx, st); err != nil {
				return err
			}
		}
		return nil
	})
}
