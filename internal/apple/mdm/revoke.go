package mdm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// An admin revokes a link sent to the wrong person, or forwarded: until it
// expires, whoever holds it could otherwise accept the notice as its person
// and enrol a device. Every step that takes a link refuses a revoked one:
// the invitation, its acceptance and profile, account-driven sign-in
// (openEnrolment), SCEP (checkAccepted) and Authenticate. Challenges of
// profiles downloaded before are stored by their hash alone, so they stay
// until they expire, but the certificate they would obtain is refused.

// errEnrolmentRevoked is what anyone holding a revoked link is told.
var errEnrolmentRevoked = apperr.Conflict("this enrolment link was revoked by your organisation; ask your IT team if you need a new one")

// RevokeEnrolment closes enrolment id for good. It may be open, accepted,
// or used by a device whose installation failed (retry.go): that device's
// pending record is deprovisioned with it, so the identity it obtained
// cannot finish enrolling either. A link a device enrolled with is refused:
// retiring that device is what takes it out. Revoking a revoked link
// returns it unchanged, so a retried request is not an error.
func (s *Service) RevokeEnrolment(ctx context.Context, tenantID, id string, actor iam.Actor) (store.Enrolment, error) {
	var e store.Enrolment
	err := s.st.Tx(ctx, func(q store.Queries) error {
		var err error
		e, err = q.Enrolments().Get(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.NotFound("enrolment")
		}
		if err != nil || e.State == store.EnrolmentRevoked {
			return err
		}
		details := map[string]any{"previous_state": e.State}
		if e.State == store.EnrolmentUsed {
			deviceID, err := s.revokeFailedAttempt(ctx, q, e, actor)
			if err != nil {
				return err
			}
			details["deprovisioned_device"] = deviceID
		} else {
			err := q.Enrolments().Revoke(ctx, tenantID, id, store.EnrolmentOpen, EnrolmentAccepted)
			if errors.Is(err, store.ErrConflict) {
				// A device used it, or another admin revoked it, since it
				// was read (PostgreSQL): say which.
				if e, err = q.Enrolments().Get(ctx, tenantID, id); err != nil || e.State == store.EnrolmentRevoked {
					return err
				}
				return errEnrolmentEnrolled(e)
			}
			if err != nil {
				return err
			}
		}
		e.State = store.EnrolmentRevoked
		if err := q.Tombstones().Put(ctx, revokedLinkTombstone(e, s.clock())); err != nil {
			return err
		}
		r := actor.Entry(tenantID, "enrolment.revoke", "enrolment", e.ID, audit.OutcomeSuccess)
		r.Details = details
		return audit.Append(ctx, q, r)
	})
	if err != nil {
		return store.Enrolment{}, err
	}
	return e, nil
}

// revokedLinkTombstone lets the vault remember the revocation of e until
// nothing handed out with it could finish enrolling any more
// (installableUntil): a backup taken before it would otherwise open the
// link again.
func revokedLinkTombstone(e store.Enrolment, now time.Time) store.Tombstone {
	return store.Tombstone{Kind: store.TombstoneEnrolmentRevoked, SubjectID: e.ID, ScopeID: e.TenantID,
		DecidedAt: now, Until: installableUntil(e)}
}

// ReconcileRevokedLinks revokes again the enrolment links a restored backup
// opened again: revoked after the backup was taken, they came back open or
// accepted, usable by whoever holds them until they expire. A device whose
// failed attempt the revocation deprovisioned comes back pending; the
// vault's record of its departure deprovisions it again
// (privacy.ReconcileErasures). It runs after every restore and at start-up,
// and returns how many links it revoked.
func (s *Service) ReconcileRevokedLinks(ctx context.Context) (int, error) {
	now := s.clock()
	done := 0
	var failed []error
	for p := (store.Page{Limit: 500}); ; {
		stones, err := s.st.Read().Tombstones().List(ctx, store.TombstoneEnrolmentRevoked, now, p)
		if err != nil {
			return done, err
		}
		for _, stone := range stones {
			// Almost every link is still revoked: read, do not lock.
			if e, err := s.st.Read().Enrolments().Get(ctx, stone.ScopeID, stone.SubjectID); errors.Is(err, store.ErrNotFound) ||
				err == nil && e.State == store.EnrolmentRevoked {
				continue // the backup predates the link, or its revocation
			}
			revoked, err := s.revokeAgain(ctx, stone)
			if err != nil {
				// One link's failure does not hold the others back.
				failed = append(failed, fmt.Errorf("enrolment link %s: %w", stone.SubjectID, err))
			} else if revoked {
				done++
			}
		}
		if len(stones) < p.Limit {
			break
		}
		p.After = stones[len(stones)-1].SubjectID
	}
	return done, errors.Join(failed...)
}

// revokeAgain revokes the link of stone unless it is revoked already (by
// another node running the same pass), and reports whether it did.
func (s *Service) revokeAgain(ctx context.Context, stone store.Tombstone) (bool, error) {
	revoked := false
	err := s.st.Tx(ctx, func(q store.Queries) error {
		revoked = false
		e, err := q.Enrolments().Get(ctx, stone.ScopeID, stone.SubjectID)
		if errors.Is(err, store.ErrNotFound) || err == nil && e.State == store.EnrolmentRevoked {
			return nil
		}
		if err != nil {
			return err
		}
		if err := q.Enrolments().Revoke(ctx, e.TenantID, e.ID, e.State); errors.Is(err, store.ErrConflict) {
			// Its state moved since it was read (PostgreSQL): revoked by
			// another node, or used by a device; the next pass retries that.
			if again, err := q.Enrolments().Get(ctx, e.TenantID, e.ID); err != nil || again.State == store.EnrolmentRevoked {
				return err
			}
			return fmt.Errorf("its state changed while it was being revoked again: %w", store.ErrConflict)
		} else if err != nil {
			return err
		}
		revoked = true
		r := iam.SystemActor.Entry(e.TenantID, "enrolment.revoke", "enrolment", e.ID, audit.OutcomeSuccess)
		r.Details = map[string]any{"previous_state": e.State, "reapplied_after_restore": true,
			"revoked_at": stone.DecidedAt.UTC().Format(time.RFC3339)}
		return audit.Append(ctx, q, r)
	})
	return revoked, err
}

// PurgeEndedRevocations deletes the tombstones of revoked links that could
// not be used any more even if a restore opened them again.
func (s *Service) PurgeEndedRevocations(ctx context.Context) (n int, err error) {
	err = s.st.Tx(ctx, func(q store.Queries) error {
		n, err = q.Tombstones().PurgeEnded(ctx, s.clock())
		return err
	})
	return n, err
}

// revokeFailedAttempt revokes used enrolment e if its device's installation
// failed, and deprovisions that device's pending record; it returns the
// record's ID. It holds the device's lock, which a retry's takeover and a
// first TokenUpdate take too: the attempt can neither finish nor start
// again while it is judged and closed.
func (s *Service) revokeFailedAttempt(ctx context.Context, q store.Queries, e store.Enrolment, actor iam.Actor) (string, error) {
	ch, err := q.AppleChannels().GetByEnrolment(ctx, e.TenantID, e.ID)
	if errors.Is(err, store.ErrNotFound) {
		return "", errEnrolmentEnrolled(e)
	}
	if err != nil {
		return "", err
	}
	if _, err := q.Devices().Lock(ctx, e.TenantID, ch.DeviceID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", errEnrolmentEnrolled(e)
		}
		return "", err
	}
	_, last, err := lastAttempt(ctx, q, e, s.clock())
	switch {
	case err != nil:
		return "", err
	case last == attemptInstalling:
		return "", apperr.Conflict("a device is enrolling with this link right now; if its installation fails, revoke the link in a few minutes, "+
			"or once it has enrolled (device %s), retire that device instead", ch.DeviceID)
	case last == attemptFinished:
		return "", errEnrolmentEnrolled(e)
	}
	if err := q.Enrolments().Revoke(ctx, e.TenantID, e.ID, store.EnrolmentUsed); err != nil {
		return "", err
	}
	if _, err := s.priv.DeprovisionIn(ctx, q, e.TenantID, ch.DeviceID,
		"its enrolment link was revoked before the device finished enrolling", actor); err != nil {
		return "", err
	}
	return ch.DeviceID, nil
}

// errEnrolmentEnrolled refuses to revoke enrolment e, which a device
// enrolled with: the link is used up already, and the device is what to act on.
func errEnrolmentEnrolled(e store.Enrolment) error {
	return apperr.Conflict("a device enrolled with this link, which cannot be used again; to take that device (%s) out of management, "+
		"retire it instead", e.DeviceID)
}
