package mdm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// leftChain is the error chain of the commands a departing device never
// answered; checkedOutChain that of the commands a device left unanswered
// when it removed its management profile itself.
const (
	leftChain       = `[{"LocalizedDescription":"cancelled: the device left management before answering"}]`
	checkedOutChain = `[{"LocalizedDescription":"cancelled: the device removed its management profile before answering"}]`
	// leavingChain is that of the commands a device had open when it was
	// told to leave (its consent withdrawn): only the removal goes to it.
	leavingChain = `[{"LocalizedDescription":"cancelled: the device is leaving management"}]`
)

// CancelledByCheckOut reports whether cmd was cancelled because its device
// removed its management profile, which is what a retire asks for.
func CancelledByCheckOut(cmd store.Command) bool {
	return cmd.State == store.CommandCancelled && cmd.ErrorChain == checkedOutChain
}

// DeviceLeft is the privacy core's hook for a device leaving management,
// however it left (CheckOut, deprovisioning, retirement, wipe, the
// employee's erasure, or the end of a withdrawn consent's retire). The channel and its users'
// channels are closed for good: the device's messages are refused, nothing
// is pushed to it, and the secrets it gave (unlock and bootstrap tokens) go.
// Its open commands are cancelled with their payloads, which can hold a
// lock PIN, and their hooks run so that the actions and profiles waiting
// on them are settled.
func (s *Service) DeviceLeft(ctx context.Context, q store.Queries, d store.Device) error {
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not an Apple device, or it never finished Authenticate
	}
	if err != nil {
		return err
	}
	if err := q.AppleChannels().CheckOut(ctx, d.TenantID, d.ID, s.clock()); err != nil {
		return err
	}
	if err := s.forgetEscrowKey(ctx, q, d.TenantID, d.ID, store.KeyDestroyedForDeparture); err != nil {
		return err
	}
	if err := q.AppleUserChannels().CheckOutDevice(ctx, d.TenantID, d.ID, s.clock()); err != nil {
		return err
	}
	// SCEP would refuse to renew its certificate anyway; released, a
	// renewal is refused before anything is signed.
	if err := releaseCertificate(ctx, q, d.TenantID, ch.CertSerial); err != nil {
		return err
	}
	return s.cancelOpen(ctx, q, d.TenantID, d.ID, leftChain)
}

// PrepareToLeave readies device d, whose personal data is being erased, to
// be told to remove its management profile: its users' channels close and
// its open commands are cancelled (their hooks run), while its own channel
// stays open, and keeps getting pushes (or its next TokenUpdate sends
// one), for that one removal. A pending renewal of its identity stays
// queued: cancelled, none would be queued again before its challenge's
// TTL, and a certificate expiring meanwhile would take with it the
// channel the removal needs. It returns
// the profile's identifier; a Conflict when d is not an enrolled Apple
// device, which cannot be told.
func (s *Service) PrepareToLeave(ctx context.Context, q store.Queries, d store.Device) (string, error) {
	if d.State != store.DeviceEnrolled {
		return "", apperr.Conflict("the device is %s, not enrolled", d.State)
	}
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ch.CheckedOut) {
		return "", apperr.Conflict("the device has no open MDM channel to be told through")
	}
	if err != nil {
		return "", err
	}
	if err := q.AppleUserChannels().CheckOutDevice(ctx, d.TenantID, d.ID, s.clock()); err != nil {
		return "", err
	}
	if err := s.cancelOpenExcept(ctx, q, d.TenantID, d.ID, ch.RenewalCommand, leavingChain); err != nil {
		return "", err
	}
	return mdmproto.EnrolmentIdentifier(ch.EnrolmentID), nil
}

// ErrNoChannel is the cause of RetellLeavingIn's Conflict when the device's
// channel closed: nothing can reach the device any more.
var ErrNoChannel = errors.New("mdm: the device has no open channel")

// RetellLeavingIn queues again, inside the caller's transaction, the
// removal of the management profile of device d, which is leaving: its
// earlier removal failed (the device answered Error, or never answered and
// was abandoned). A Conflict when d is not leaving or its channel closed
// (then wrapping ErrNoChannel), or when its command queue is full.
func (s *Service) RetellLeavingIn(ctx context.Context, q store.Queries, d store.Device, reason string, actor iam.Actor) (store.Command, error) {
	if d.State != store.DeviceLeaving {
		return store.Command{}, apperr.Conflict("the device is %s, not leaving", d.State)
	}
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ch.CheckedOut) {
		return store.Command{}, apperr.Wrap(apperr.KindConflict, ErrNoChannel, "the device has no open MDM channel to be told through")
	}
	if err != nil {
		return store.Command{}, err
	}
	return s.enqueueForLeavingIn(ctx, q, d, mdmproto.RemoveProfile{Identifier: mdmproto.EnrolmentIdentifier(ch.EnrolmentID)}, reason, actor)
}

// StopTellingToLeaveIn cancels, inside the caller's transaction, removal
// command commandID of leaving device d: Steward stopped telling the device
// to leave, for the reason why. Its hooks run. Nothing happens when the
// command is no longer open.
func (s *Service) StopTellingToLeaveIn(ctx context.Context, q store.Queries, d store.Device, commandID, why string) error {
	chain, err := cancelledChain("cancelled: Steward stopped telling the device to leave", why)
	if err != nil {
		return err
	}
	return s.cancelIfOpen(ctx, q, d.TenantID, d.ID, commandID, chain, s.clock())
}

// stoppedLeavingChain finishes the identity renewal of a leaving device
// that Steward stopped telling to leave.
const stoppedLeavingChain = `[{"LocalizedDescription":"cancelled: Steward stopped telling the device to leave"}]`

// StopRenewingLeavingIn cancels, inside the caller's transaction, the
// identity renewal still open for leaving device d, whom Steward stopped
// telling to leave: SCEP would refuse it, and its payload goes with it.
// Its hooks run. Nothing happens when none is open. It takes the device's
// lock, as renewIdentity does to queue a renewal: one a concurrent pass
// queued before it could read that Steward stopped is then read here, and
// cancelled too.
func (s *Service) StopRenewingLeavingIn(ctx context.Context, q store.Queries, d store.Device) error {
	if _, err := q.Devices().Lock(ctx, d.TenantID, d.ID); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.cancelRenewalWith(ctx, q, ch, s.clock(), stoppedLeavingChain)
}

// enqueueForLeavingIn queues one of Steward's own requests that a leaving
// device still takes (the removal of its management profile, the renewal of
// its identity). They skip prepare, which refuses a device not enrolled:
// neither depends on the device's rules or facts, and both are built here
// rather than by a caller.
func (s *Service) enqueueForLeavingIn(ctx context.Context, q store.Queries, d store.Device, req mdmproto.Request, reason string, actor iam.Actor) (store.Command, error) {
	c, err := s.buildCommand(d, req, actor)
	if err != nil {
		return c, err
	}
	if err := s.saveCommands(ctx, q, []store.Command{c}); err != nil {
		return c, err
	}
	e := actor.Entry(d.TenantID, "mdm.command.enqueue", "device", d.ID, audit.OutcomeSuccess)
	e.Reason = reason
	e.Details = map[string]any{"commands": 1, "request_type": c.RequestType, "device_leaving": true}
	return c, audit.Append(ctx, q, e)
}

// departedSweptKey marks that no channel of a departed device is open:
// devices that left before departures closed their channels (Steward
// before identity renewal) have been swept.
const departedSweptKey = "mdm.departed-channels-swept"

// CloseDepartedChannels closes up to limit channels still open although
// their devices left management, running DeviceLeft for each as their
// departure would now: tokens dropped, open commands cancelled, the actions
// waiting on them settled. Once a batch comes back short it records that
// the sweep is done, and later calls cost one read. It returns how many
// channels it closed.
func (s *Service) CloseDepartedChannels(ctx context.Context, limit int) (int, error) {
	if _, err := s.st.Read().Settings().Get(ctx, departedSweptKey); err == nil {
		return 0, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	open, err := s.st.Read().AppleChannels().OpenOfDeparted(ctx, limit)
	if err != nil {
		return 0, err
	}
	closed, failed := 0, 0
	for _, ch := range open {
		left := false
		err := s.st.Tx(ctx, func(q store.Queries) error {
			d, err := q.Devices().Lock(ctx, ch.TenantID, ch.DeviceID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && !d.Gone()) {
				return nil // purged, or back under management, meanwhile
			}
			if err != nil {
				return err
			}
			left = true
			return s.DeviceLeft(ctx, q, d)
		})
		if ctx.Err() != nil {
			return closed, ctx.Err()
		}
		// One channel that cannot be closed does not hold up the others.
		if err != nil {
			failed++
			s.log.Warn("closing a departed device's MDM channel failed", "device", ch.DeviceID, "error", err.Error())
			continue
		}
		if left {
			closed++
		}
	}
	if len(open) == limit || failed > 0 {
		return closed, nil
	}
	return closed, s.st.Tx(ctx, func(q store.Queries) error {
		return q.Settings().Put(ctx, departedSweptKey, []byte(s.clock().UTC().Format(time.RFC3339)))
	})
}

// unfinishedAfter is how long a device that sent Authenticate has to send
// its first TokenUpdate. Installing the profile takes seconds: one that
// failed after Authenticate (a TokenUpdate refused, the device gone) would
// otherwise stay pending for good, with what Authenticate reported.
const unfinishedAfter = 24 * time.Hour

// CloseUnfinishedEnrolments deprovisions up to limit devices, across
// tenants, whose enrolment stopped between Authenticate and TokenUpdate
// more than unfinishedAfter ago: their data goes as on any deprovisioning,
// and the employee enrols with a new link. It returns how many it closed.
func (s *Service) CloseUnfinishedEnrolments(ctx context.Context, limit int) (int, error) {
	stuck, err := s.st.Read().AppleChannels().Unfinished(ctx, s.clock().Add(-unfinishedAfter), limit)
	if err != nil {
		return 0, err
	}
	closed, failed := 0, 0
	for _, ch := range stuck {
		left := false
		err := s.st.Tx(ctx, func(q store.Queries) error {
			d, err := q.Devices().Lock(ctx, ch.TenantID, ch.DeviceID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && d.State != store.DevicePending) {
				return nil // gone, or finished meanwhile
			}
			if err != nil {
				return err
			}
			left = true
			_, err = s.priv.DeprovisionIn(ctx, q, ch.TenantID, ch.DeviceID,
				"its enrolment never completed: no TokenUpdate within a day of Authenticate", iam.SystemActor)
			return err
		})
		if ctx.Err() != nil {
			return closed, ctx.Err()
		}
		if err != nil { // one device that cannot be closed does not hold up the others
			failed++
			s.log.Warn("closing an unfinished enrolment failed", "device", ch.DeviceID, "error", err.Error())
		} else if left {
			closed++
		}
	}
	if failed > 0 {
		return closed, fmt.Errorf("mdm: %d of %d unfinished enrolments could not be closed", failed, len(stuck))
	}
	return closed, nil
}

// changeChannel writes what a message of ch's device changes on its
// channel; a channel closed meanwhile (the device left), or taken over by
// another identity, is an unknown device.
func (s *Service) changeChannel(ctx context.Context, q store.Queries, ch store.AppleChannel, c store.ChannelChange) error {
	// ch was found by the message's certificate: if another identity took
	// the channel over since (on PostgreSQL, between that read and this
	// write), the message no longer speaks for it.
	c.Signer = ch.CertFingerprint
	err := q.AppleChannels().Change(ctx, ch.TenantID, ch.DeviceID, c)
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownDevice
	}
	return err
}

// cancelOpen cancels the device's open commands with chain and runs their
// finished hooks.
func (s *Service) cancelOpen(ctx context.Context, q store.Queries, tenantID, deviceID, chain string) error {
	cancelled, err := q.Commands().CancelOpen(ctx, tenantID, deviceID, chain, s.clock())
	if err != nil {
		return err
	}
	return s.finishedAll(ctx, q, cancelled)
}

// cancelOpenExcept is cancelOpen leaving command keepID open.
func (s *Service) cancelOpenExcept(ctx context.Context, q store.Queries, tenantID, deviceID, keepID, chain string) error {
	cancelled, err := q.Commands().CancelOpenExcept(ctx, tenantID, deviceID, keepID, chain, s.clock())
	if err != nil {
		return err
	}
	return s.finishedAll(ctx, q, cancelled)
}

// finishedAll runs the finished hooks of cancelled, in order.
func (s *Service) finishedAll(ctx context.Context, q store.Queries, cancelled []store.Command) error {
	for _, cmd := range cancelled {
		if err := s.finished(ctx, q, cmd); err != nil {
			return err
		}
	}
	return nil
}
