package mdm

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/store"
)

// A profile can fail to install after its Authenticate (the connection
// drops, the first TokenUpdate fails): the device rolls the profile back,
// and its record waits, pending, for a TokenUpdate that never comes. Until
// that record finishes or is swept (a day later), the same link may try
// again: the invitation offers the profile, SCEP issues a new identity, and
// the new Authenticate takes over the pending record. Nothing else can be
// taken over: once a push token came, the enrolment is done.

// enrolmentUnfinished is openEnrolment's name for a used enrolment whose
// device never finished; it is not a stored state.
const enrolmentUnfinished = "unfinished"

// unfinishedChannel returns the channel of used enrolment e, and true, if
// its device sent Authenticate and never a push token.
func unfinishedChannel(ctx context.Context, q store.Queries, e store.Enrolment) (store.AppleChannel, bool, error) {
	if e.State != store.EnrolmentUsed {
		return store.AppleChannel{}, false, nil
	}
	ch, err := q.AppleChannels().GetByEnrolment(ctx, e.TenantID, e.ID)
	if errors.Is(err, store.ErrNotFound) {
		return ch, false, nil
	}
	if err != nil || ch.CheckedOut || ch.PushToken != nil || !ch.TokenAt.IsZero() {
		return ch, false, err
	}
	d, err := q.Devices().Get(ctx, e.TenantID, ch.DeviceID)
	if err != nil {
		return ch, false, err
	}
	return ch, d.State == store.DevicePending, nil
}

// authenticateAgain is an Authenticate for used enrolment e: a retry after
// a failed installation takes over the pending record (new identity, and
// the device index and topic it names now, in case another device tries);
// anything else is refused.
func (s *Service) authenticateAgain(ctx context.Context, q store.Queries, e store.Enrolment, cert *x509.Certificate, m *mdmproto.Authenticate) error {
	ch, ok, err := unfinishedChannel(ctx, q, e)
	if err != nil {
		return err
	}
	if !ok {
		return errEnrolmentUsed
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
	// The first attempt's identity is never used again: not renewable.
	if err := releaseCertificate(ctx, q, e.TenantID, ch.CertSerial); err != nil {
		return err
	}
	if p := platformOf(m.ProductName, m.Model); p != d.Platform {
		d.Platform, d.UpdatedAt = p, now
		if err := q.Devices().Update(ctx, d); err != nil {
			return err
		}
	}
	return s.authenticated(ctx, q, e, d, cert, m, true)
}

var errEnrolmentUsed = apperr.Conflict("this enrolment was already used or revoked")
