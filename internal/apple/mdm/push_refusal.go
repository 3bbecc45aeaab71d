package mdm

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/store"
)

// refusedCertificateProbe is how often a tenant's pushes are offered to APNs
// while it refuses the tenant's certificate. Retrying cannot help until an
// administrator uploads another one (which clears the refusal, and the
// pushes go within pushHold), but once an hour notices a refusal Apple
// lifts on its side without sending Apple every device's push in between.
const refusedCertificateProbe = time.Hour

// pushHold is how long a push waits when no usable certificate is there to
// send it, or it is held back by a refusal.
const pushHold = 15 * time.Minute

// pushRefusalKey is the Settings key of a tenant's standing certificate
// refusal. It lives beside the certificate, so that an upload clears it in
// the transaction that stores the new one, and every node sees it.
func pushRefusalKey(tenantID string) string { return "apns-refusal:" + tenantID }

// storedRefusal is apns.Refusal with the serial of the certificate refused:
// a refusal of a certificate replaced since is no longer the tenant's.
type storedRefusal struct {
	Serial string    `json:"serial"`
	Status int       `json:"status"`
	Reason string    `json:"reason"`
	ID     string    `json:"apns_id"`
	Since  time.Time `json:"since"`
	At     time.Time `json:"at"`
}

func (r storedRefusal) refusal() *apns.Refusal {
	return &apns.Refusal{Status: r.Status, Reason: r.Reason, ID: r.ID, Since: r.Since, At: r.At}
}

// pushRefusal returns the standing refusal of the certificate with serial,
// nil if there is none.
func pushRefusal(ctx context.Context, settings store.SettingStore, tenantID, serial string) (*storedRefusal, error) {
	raw, err := settings.Get(ctx, pushRefusalKey(tenantID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r storedRefusal
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	if r.Serial != serial {
		return nil, nil
	}
	return &r, nil
}

// recordPushRefusal stores APNs' refusal r of the certificate with serial,
// keeping when the refusals in a row began. It reports whether the refusal
// is news (none stood, or another reason), for the log to say once.
func (s *Service) recordPushRefusal(ctx context.Context, tenantID, serial string, r apns.Result) (bool, error) {
	changed := false
	err := s.st.Tx(ctx, func(q store.Queries) error {
		// A node still pushing with a certificate replaced since must not
		// overwrite the standing refusal of the current one.
		current, err := s.loadPushCertificate(ctx, q.Settings(), tenantID)
		if errors.Is(err, ErrNoPushCertificate) || (err == nil && current.Serial != serial) {
			return nil
		}
		if err != nil {
			return err
		}
		now := s.clock()
		previous, err := pushRefusal(ctx, q.Settings(), tenantID, serial)
		if err != nil {
			return err
		}
		next := storedRefusal{Serial: serial, Status: r.Status, Reason: r.Reason, ID: r.ID, Since: now, At: now}
		changed = previous == nil || previous.Status != r.Status || previous.Reason != r.Reason
		if previous != nil {
			next.Since = previous.Since
		}
		raw, err := json.Marshal(next)
		if err != nil {
			return err
		}
		return q.Settings().Put(ctx, pushRefusalKey(tenantID), raw)
	})
	return changed, err
}

// clearPushRefusal drops the refusal of the certificate with serial, once
// APNs accepted a push made with it, and reports whether one stood.
func (s *Service) clearPushRefusal(ctx context.Context, tenantID, serial string) (bool, error) {
	cleared := false
	err := s.st.Tx(ctx, func(q store.Queries) error {
		r, err := pushRefusal(ctx, q.Settings(), tenantID, serial)
		if err != nil || r == nil {
			return err
		}
		cleared = true
		return q.Settings().Delete(ctx, pushRefusalKey(tenantID))
	})
	return cleared, err
}

// deletePushRefusal forgets the tenant's refusal, whichever certificate it
// was of: a new certificate is uploaded, or the tenant is deleted.
func deletePushRefusal(ctx context.Context, q store.Queries, tenantID string) error {
	if err := q.Settings().Delete(ctx, pushRefusalKey(tenantID)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}
