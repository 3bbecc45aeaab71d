package privacy

import (
	"context"
	"errors"
	"time"

	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// UnmanagedPersonRetention is how long a person's record (their name,
// e-mail, department, Apple account) outlives their last managed device:
// the notice promises it is kept while their device is managed. Past it,
// with no device on record that has not left and no enrolment link that
// could still enrol one, the record is erased as an admin's erasure would,
// with a deletion certificate. Someone registered who never had a device
// is left to the admins: no notice applied to them yet.
const UnmanagedPersonRetention = 30 * day

// unmanagedPeopleBatch bounds the erasures of one purge transaction: each
// destroys a key, deletes the person's rows and signs a certificate.
const unmanagedPeopleBatch = 20

// unmanagedPeopleCategory is what such erasures count under in the purge's
// audit entries.
const unmanagedPeopleCategory = "people_without_devices"

// unmanagedReason is the erasure's reason on its certificate and audit entry.
const unmanagedReason = "retention: no managed device for 30 days"

// personUnmanagedIfLast marks the person of device d, which has just left
// management at now, as unmanaged since now, unless another of their
// devices has not left: the retention counts from their last departure.
func personUnmanagedIfLast(ctx context.Context, q store.Queries, d store.Device, now time.Time) error {
	if d.SubjectID == "" {
		return nil
	}
	ds, err := allDevices(ctx, q, d.TenantID, store.DeviceFilter{SubjectID: d.SubjectID})
	if err != nil {
		return err
	}
	for _, other := range ds {
		if other.ID != d.ID && !other.Left() {
			return nil
		}
	}
	err = q.Subjects().MarkUnmanaged(ctx, d.TenantID, d.SubjectID, now)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the person went first
	}
	return err
}

// eraseUnmanagedPeople erases, in q, up to limit people of any tenant
// whose last device left before now less UnmanagedPersonRetention, and
// counts them per tenant.
func (s *Service) eraseUnmanagedPeople(ctx context.Context, q store.Queries, now time.Time, limit int) ([]store.PurgeCount, error) {
	cutoff := now.Add(-UnmanagedPersonRetention)
	due, err := q.Subjects().Unmanaged(ctx, cutoff, now, "", limit)
	if err != nil {
		return nil, err
	}
	erased := map[string]int{}
	for _, candidate := range due {
		sub, err := q.Subjects().Lock(ctx, candidate.TenantID, candidate.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// Checked again under the lock: an enrolment link made meanwhile
		// keeps the person.
		if still, err := q.Subjects().IsUnmanaged(ctx, sub.TenantID, sub.ID, cutoff, now); err != nil || !still {
			if err != nil {
				return nil, err
			}
			continue
		}
		if _, err := s.eraseSubjectTx(ctx, q, sub, unmanagedReason, iam.SystemActor, ""); err != nil {
			return nil, err
		}
		erased[sub.TenantID]++
	}
	var out []store.PurgeCount
	for t, n := range erased {
		out = append(out, store.PurgeCount{TenantID: t, Category: unmanagedPeopleCategory, Rows: n})
	}
	return out, nil
}
