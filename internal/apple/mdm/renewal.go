package mdm

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// Apple devices never renew the identity certificate of their enrolment
// profile by SCEP RenewalReq: when it expires they drop out of management.
// Before that, Steward sends each one its enrolment profile again
// (InstallProfile) with a fresh renewal challenge. The device installs it
// over the one it has, obtains a new certificate by SCEP, and its next
// message with that certificate moves its channel over (renewedChannel).

const (
	// identityRenewalWindow is how long before its certificate expires a
	// device is sent a new identity.
	identityRenewalWindow = 30 * 24 * time.Hour
	// renewalChallengeTTL is how long the challenge in that profile stays
	// usable: long enough for a device that is off for a while. A renewal
	// not used by then is sent again, replacing the first.
	renewalChallengeTTL = 7 * 24 * time.Hour
)

// supersededChain finishes a renewal command that a newer one replaces.
const supersededChain = `[{"LocalizedDescription":"cancelled: replaced by a newer identity renewal"}]`

// RenewIdentities queues a re-issued enrolment profile for up to limit
// managed (enrolled or leaving) devices whose identity certificate expires
// within the renewal window, soonest first, and says how many it queued: a
// leaving device is passed over once Steward stopped telling it to leave,
// or while it stays silent too long (hooks.StoppedTellingToLeave). A device
// that did not use its last renewal within renewalChallengeTTL gets a new
// one.
func (s *Service) RenewIdentities(ctx context.Context, limit int) (int, error) {
	now := s.clock()
	due, err := s.st.Read().AppleChannels().ExpiringCertificates(ctx, now, now.Add(identityRenewalWindow), now.Add(-renewalChallengeTTL), limit)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, ch := range due {
		renewed, err := s.renewIdentity(ctx, ch, now)
		if err == nil {
			if renewed {
				queued++
			}
			continue
		}
		if ctx.Err() != nil {
			return queued, ctx.Err()
		}
		// Tried again after renewalChallengeTTL, so that one device that
		// cannot be renewed does not hold up the devices behind it.
		s.log.Warn("a device's identity renewal could not be queued", "tenant", ch.TenantID, "device", ch.DeviceID, "error", err.Error())
		if err := s.st.Tx(ctx, func(q store.Queries) error {
			return q.AppleChannels().RenewalQueued(ctx, ch.TenantID, ch.DeviceID, ch.RenewalCommand, now)
		}); err != nil {
			return queued, err
		}
	}
	return queued, nil
}

// renewIdentity queues the renewal of ch's device and says whether it did:
// a device that needs its channel no more is not renewed.
func (s *Service) renewIdentity(ctx context.Context, ch store.AppleChannel, now time.Time) (bool, error) {
	renewed := false
	err := s.st.Tx(ctx, func(q store.Queries) error {
		// Held until commit, so that a departure either went first and is
		// seen here, or waits and cancels the renewal with the rest.
		d, err := q.Devices().Lock(ctx, ch.TenantID, ch.DeviceID)
		if err != nil {
			return err
		}
		// The channel was listed before the lock. Another pass (the lease
		// may lapse under a long one) can have queued a renewal since,
		// which the lock has waited for: cancelling the one listed would
		// leave that one open with its challenge, beside a second.
		if ch, err = s.channelStillDue(ctx, q, ch); err != nil || ch.DeviceID == "" {
			return err
		}
		// A leaving device renews too: its channel must outlive the
		// removal of its management profile, however long that takes;
		// once Steward stopped sending it, or while the device stays
		// silent too long, the channel lapses with its certificate.
		if d.State != store.DeviceEnrolled && d.State != store.DeviceLeaving {
			return nil
		}
		if d.State == store.DeviceLeaving && s.hooks.StoppedTellingToLeave != nil {
			stopped, err := s.hooks.StoppedTellingToLeave(ctx, q, d)
			if err != nil {
				return err
			}
			if stopped {
				// Its last renewal's challenge expired: it goes, and the
				// channel is looked at again only after renewalChallengeTTL,
				// not ahead of the devices behind it every hour.
				if err := s.cancelRenewal(ctx, q, ch, now); err != nil {
					return err
				}
				return q.AppleChannels().RenewalQueued(ctx, ch.TenantID, ch.DeviceID, ch.RenewalCommand, now)
			}
		}
		e, err := q.Enrolments().Get(ctx, ch.TenantID, ch.EnrolmentID)
		if err != nil {
			return err
		}
		if err := s.cancelRenewal(ctx, q, ch, now); err != nil {
			return err
		}
		settings, _, err := privacy.LoadSettings(ctx, q, e.TenantID)
		if err != nil {
			return err
		}
		inForce, err := consentInForce(ctx, q, e, settings)
		if err != nil {
			return err
		}
		rights := grantableRights(e, settings.Policy, inForce)
		challenge, err := scep.IssueRenewalChallenge(ctx, q.Settings(), ch.TenantID, e.ID, int(rights), now, renewalChallengeTTL)
		if err != nil {
			return err
		}
		profile, err := s.enrolmentProfile(ctx, q, e, challenge, ch.Topic, rights)
		if err != nil {
			return err
		}
		if e.AccessRights != 0 && int(rights) != e.AccessRights {
			// Only ever fewer (grantableRights): what the device holds
			// once it installs this, and all any later profile may grant.
			if err := q.Enrolments().SetAccessRights(ctx, e.TenantID, e.ID, int(rights)); err != nil {
				return err
			}
		}
		// Steward's own enrolment profile holds nothing but the identity
		// and the management the employee already accepted.
		req := mdmproto.InstallProfile{Payload: profile, ReviewedForPersonal: true}
		const reason = "device identity certificate renewal"
		var cmd store.Command
		if d.State == store.DeviceLeaving {
			cmd, err = s.enqueueForLeavingIn(ctx, q, d, req, reason, iam.SystemActor)
		} else {
			var cmds []store.Command
			if cmds, err = s.EnqueueIn(ctx, q, d, []mdmproto.Request{req}, reason, iam.SystemActor); err == nil {
				cmd = cmds[0]
			}
		}
		if err != nil {
			return err
		}
		renewed = true
		return q.AppleChannels().RenewalQueued(ctx, ch.TenantID, ch.DeviceID, cmd.ID, now)
	})
	return renewed && err == nil, err
}

// channelStillDue reads listed's channel again, under its device's lock;
// the zero channel when another pass renewed it since it was listed (or
// deferred it, or the device moved to a new identity or closed it).
func (s *Service) channelStillDue(ctx context.Context, q store.Queries, listed store.AppleChannel) (store.AppleChannel, error) {
	ch, err := q.AppleChannels().Get(ctx, listed.TenantID, listed.DeviceID)
	if errors.Is(err, store.ErrNotFound) {
		return store.AppleChannel{}, nil
	}
	if err != nil {
		return store.AppleChannel{}, err
	}
	if ch.RenewalCommand != listed.RenewalCommand || !ch.RenewalAt.Equal(listed.RenewalAt) ||
		!bytes.Equal(ch.CertFingerprint, listed.CertFingerprint) || ch.CheckedOut {
		return store.AppleChannel{}, nil
	}
	return ch, nil
}

// cancelRenewal finishes the channel's previous renewal command if the
// device never took it: its challenge has expired.
func (s *Service) cancelRenewal(ctx context.Context, q store.Queries, ch store.AppleChannel, now time.Time) error {
	return s.cancelRenewalWith(ctx, q, ch, now, supersededChain)
}

// cancelRenewalWith cancels the channel's renewal command, if still open,
// with chain, and runs its hooks.
func (s *Service) cancelRenewalWith(ctx context.Context, q store.Queries, ch store.AppleChannel, now time.Time, chain string) error {
	if ch.RenewalCommand == "" {
		return nil
	}
	return s.cancelIfOpen(ctx, q, ch.TenantID, ch.DeviceID, ch.RenewalCommand, chain, now)
}

// cancelIfOpen cancels device deviceID's command commandID with chain and
// runs its hooks, unless it is no longer open (or is another device's).
func (s *Service) cancelIfOpen(ctx context.Context, q store.Queries, tenantID, deviceID, commandID, chain string, now time.Time) error {
	cmd, err := q.Commands().Get(ctx, tenantID, commandID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (cmd.DeviceID != deviceID || !store.CommandOpen(cmd.State))) {
		return nil
	}
	if err != nil {
		return err
	}
	// Finished with the counters as stored, not as read: nothing here
	// locks the command against Connect, and another node may deliver it
	// before this write.
	cmd.State, cmd.CompletedAt, cmd.ErrorChain = store.CommandCancelled, now, chain
	if err := q.Commands().Finish(ctx, cmd); errors.Is(err, store.ErrNotFound) {
		return nil // the device answered it meanwhile
	} else if err != nil {
		return err
	}
	return s.finished(ctx, q, cmd)
}
