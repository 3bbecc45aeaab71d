package mdm

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/store"
)

// A profile can fail to install after its Authenticate (the connection
// drops, the first TokenUpdate fails): the device rolls the profile back,
// and its record waits, pending, for a TokenUpdate that never comes. Once
// that attempt has been quiet for retryAfter, and until its record is
// swept (a day after the last attempt), the same link may try again: the
// invitation offers the profile, SCEP issues a new identity, and the new
// Authenticate takes over the pending record. An installation takes
// seconds, so the wait keeps anyone else holding the link from cutting in
// on one that is going well. Once a push token came, the enrolment is done.

// retryAfter is how long an unfinished attempt must have been quiet before
// the link may try again.
const retryAfter = 2 * time.Minute

// enrolmentUnfinished is openEnrolment's name for a used enrolment whose
// device never finished and may try again; it is not a stored state.
const enrolmentUnfinished = "unfinished"

// attempt is what became of a used enrolment's device.
type attempt int

const (
	attemptFinished   attempt = iota // enrolled, left, or no channel: the link is used up
	attemptInstalling                // pending, and heard from within retryAfter
	attemptFailed                    // pending and quiet: the link may try again
)

// lastAttempt returns the channel of used enrolment e and what became of
// its device at now.
func lastAttempt(ctx context.Context, q store.Queries, e store.Enrolment, now time.Time) (store.AppleChannel, attempt, error) {
	if e.State != store.EnrolmentUsed {
		return store.AppleChannel{}, attemptFinished, nil
	}
	ch, err := q.AppleChannels().GetByEnrolment(ctx, e.TenantID, e.ID)
	if errors.Is(err, store.ErrNotFound) {
		return ch, attemptFinished, nil
	}
	if err != nil || ch.CheckedOut || ch.PushToken != nil || !ch.TokenAt.IsZero() {
		return ch, attemptFinished, err
	}
	d, err := q.Devices().Get(ctx, e.TenantID, ch.DeviceID)
	if err != nil || d.State != store.DevicePending {
		return ch, attemptFinished, err
	}
	if now.Sub(ch.LastCheckin) < retryAfter {
		return ch, attemptInstalling, nil
	}
	return ch, attemptFailed, nil
}

// errInstalling refuses the link while its last attempt may still finish.
var errInstalling = apperr.Conflict("a device is enrolling with this link right now; if its installation failed, try again in a few minutes")

// authenticateAgain is an Authenticate for used enrolment e: a retry after
// a failed installation takes over the pending record (new identity, and
// the device index and topic it names now, in case another device tries);
// anything else is refused.
func (s *Service) authenticateAgain(ctx context.Context, q store.Queries, e store.Enrolment, rights int, cert *x509.Certificate,
	m *mdmproto.Authenticate) error {
	// The same window as a first Authenticate: a retry downloaded just
	// before the link expired may finish as late as one that went first.
	if !s.clock().Before(installableUntil(e)) {
		return apperr.Conflict("this enrolment link expired before the device finished enrolling; ask your IT team for a new one")
	}
	ch, last, err := lastAttempt(ctx, q, e, s.clock())
	if err != nil {
		return err
	}
	switch last {
	case attemptInstalling:
		return errInstalling
	case attemptFinished:
		return errEnrolmentUsed
	}
	if err := checkGrant(ctx, q, e, rights); err != nil {
		return err
	}
	d, err := q.Devices().Lock(ctx, e.TenantID, ch.DeviceID)
	if err != nil {
		return err
	}
	if d.State != store.DevicePending {
		return errEnrolmentUsed
	}
	idx, err := s.channelIndex(ctx, q, e.TenantID, m.Enrollment)
	if err != nil {
		return err
	}
	now := s.clock()
	moved := store.ChannelCertificate{Fingerprint: Fingerprint(cert), Serial: cert.SerialNumber.String(), NotAfter: cert.NotAfter.UTC()}
	if err := q.AppleChannels().Restart(ctx, e.TenantID, d.ID, ch.CertFingerprint, moved, idx, m.Topic, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errEnrolmentUsed
		}
		return err
	}
	// The first attempt's identity is never used again: not renewable;
	// nor are the tokens it escrowed, in any copy.
	if err := releaseCertificate(ctx, q, e.TenantID, ch.CertSerial); err != nil {
		return err
	}
	if err := s.forgetEscrowKey(ctx, q, e.TenantID, d.ID, ""); err != nil {
		return err
	}
	// The retrying device may be another one, even another person's: its
	// record must not show the first one's name, model or identifiers.
	if d, err = s.priv.StartDeviceOver(ctx, q, d); err != nil {
		return err
	}
	if p := platformOf(m.ProductName, m.Model); p != "" { // an unnamed one keeps what is known
		d.Platform = p
	}
	d.UpdatedAt = now
	if err := q.Devices().Update(ctx, d); err != nil {
		return err
	}
	return s.authenticated(ctx, q, e, d, rights, cert, m, true)
}

var errEnrolmentUsed = apperr.Conflict("this enrolment was already used or revoked")
