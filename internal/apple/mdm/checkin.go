package mdm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// Device-facing refusals. None is ever a 401: an Apple device may unenrol
// on a 401.
var (
	// ErrUnknownDevice: the certificate belongs to no enrolment or channel.
	ErrUnknownDevice = apperr.Forbidden("this device is not enrolled here")
	// ErrWrongDevice: a certificate speaking for another device's UDID.
	ErrWrongDevice = apperr.Forbidden("this certificate belongs to another device")
	// ErrDeviceLeft: the certificate is that of a device which left
	// management here (checked out, retired, wiped or deprovisioned). Unlike
	// an unknown device it is told to unenrol (unrecognizedDevice): its
	// signature proves it is that device, and a profile it kept would give
	// rights over it to a server that no longer manages it.
	ErrDeviceLeft = apperr.Forbidden("this device left management here")
)

// Fingerprint is the SHA-256 of a certificate, how channels find devices.
func Fingerprint(cert *x509.Certificate) []byte {
	sum := sha256.Sum256(cert.Raw)
	return sum[:]
}

// channelIndex is the keyed index of the identifier a device channel is
// keyed on (UDID, or EnrollmentID for User Enrollment).
func (s *Service) channelIndex(ctx context.Context, q store.Queries, tenantID string, e mdmproto.Enrollment) ([]byte, error) {
	return s.priv.Vault().BlindIndex(ctx, q, tenantID, "apple.channel", e.DeviceID())
}

// Checkin handles a check-in message from a device whose identity
// certificate the HTTP layer verified (signature and chain to its tenant's
// CA). It returns the response body, nil for an empty 200.
func (s *Service) Checkin(ctx context.Context, cert *x509.Certificate, body []byte) ([]byte, error) {
	msg, err := mdmproto.DecodeCheckin(body)
	if err != nil {
		return nil, apperr.Invalid("%v", err)
	}
	if msg.Sender().IsUserChannel() {
		return s.userCheckin(ctx, cert, msg)
	}
	if m, ok := msg.(*mdmproto.Authenticate); ok {
		return nil, s.authenticate(ctx, cert, m)
	}
	var out []byte
	err = s.st.Tx(ctx, func(q store.Queries) error {
		ch, d, err := s.channelAndDevice(ctx, q, cert, msg.Sender())
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *mdmproto.TokenUpdate:
			return s.tokenUpdate(ctx, q, ch, m)
		case *mdmproto.CheckOut:
			return s.checkOut(ctx, q, ch)
		case *mdmproto.SetBootstrapToken:
			return s.setBootstrapToken(ctx, q, ch, d, m)
		case *mdmproto.GetBootstrapToken:
			out, err = s.getBootstrapToken(ctx, q, ch, d)
			return err
		case *mdmproto.DeclarativeManagement:
			out, err = declarativeResponse(m)
			return err
		}
		return nil
	})
	return out, err
}

// setBootstrapToken escrows the Bootstrap Token a Mac sends, or removes the
// one kept when it sends none.
func (s *Service) setBootstrapToken(ctx context.Context, q store.Queries, ch store.AppleChannel, d store.Device, m *mdmproto.SetBootstrapToken) error {
	if err := sentByAMac(d, m.MessageType()); err != nil {
		return err
	}
	// The lock a GetBootstrapToken moving an older escrow into the vault
	// takes: neither undoes the other's write.
	d, err := q.Devices().Lock(ctx, d.TenantID, d.ID)
	if err != nil {
		return err
	}
	var escrowed []byte // empty: the device removed its token
	// As with unlock tokens, the organisation holds no key to an
	// employee's own Mac: its token is not kept, and one kept before this
	// rule goes now.
	if len(m.BootstrapToken) > 0 && keepsBootstrapToken(privacy.Ownership(d.Ownership)) {
		if escrowed, err = s.escrow(ctx, q, d, bootstrapToken, m.BootstrapToken.Reveal()); err != nil {
			return err
		}
	}
	if err := s.changeChannel(ctx, q, ch, store.ChannelChange{At: s.clock(), Bootstrap: &escrowed}); err != nil {
		return err
	}
	switch {
	case escrowed != nil:
		return auditBootstrap(ctx, q, d, "mdm.bootstrap_token.escrowed")
	case ch.Bootstrap != nil:
		return auditBootstrap(ctx, q, d, "mdm.bootstrap_token.cleared")
	}
	return nil
}

// getBootstrapToken answers a Mac asking for its Bootstrap Token (at
// setup), with the token when one is kept and still opens. One escrowed
// under the master key alone moves into the vault now.
func (s *Service) getBootstrapToken(ctx context.Context, q store.Queries, ch store.AppleChannel, d store.Device) ([]byte, error) {
	if err := sentByAMac(d, mdmproto.MessageGetBootstrapToken); err != nil {
		return nil, err
	}
	var token []byte
	// A personal Mac's is never handed back, even if kept before the rule.
	if ch.Bootstrap != nil && keepsBootstrapToken(privacy.Ownership(d.Ownership)) {
		var err error
		token, err = s.openEscrowed(ctx, q, ch.TenantID, ch.DeviceID, bootstrapToken, ch.Bootstrap)
		switch {
		case escrowGone(err): // erased with its key: none is kept
		case err != nil:
			return nil, err
		case !inVault(ch.Bootstrap):
			if err := s.moveBootstrapToVault(ctx, q, ch, token); err != nil {
				return nil, err
			}
		}
	}
	out, err := bootstrapResponse(token)
	if err != nil || token == nil {
		return out, err
	}
	return out, auditBootstrap(ctx, q, d, "mdm.bootstrap_token.released")
}

// moveBootstrapToVault escrows again, under the device's secrets key, the
// token read from ch under the master key, unless a SetBootstrapToken
// replaced it meanwhile.
func (s *Service) moveBootstrapToVault(ctx context.Context, q store.Queries, ch store.AppleChannel, token []byte) error {
	d, err := q.Devices().Lock(ctx, ch.TenantID, ch.DeviceID)
	if err != nil {
		return err
	}
	if now, err := q.AppleChannels().Get(ctx, ch.TenantID, ch.DeviceID); err != nil || !bytes.Equal(now.Bootstrap, ch.Bootstrap) {
		return err
	}
	escrowed, err := s.escrow(ctx, q, d, bootstrapToken, token)
	if err != nil {
		return err
	}
	return s.changeChannel(ctx, q, ch, store.ChannelChange{At: s.clock(), Bootstrap: &escrowed})
}

// sentByAMac refuses a message only a Mac sends (setbootstraptoken.yaml,
// getbootstraptoken.yaml: macOS alone) from another device, before
// anything is kept or audited. An unknown platform is not guessed
// (platformUnnamed).
func sentByAMac(d store.Device, what mdmproto.MessageType) error {
	if d.Platform != "" && d.Platform != "macos" {
		return apperr.Invalid("%s is sent by a Mac only, not by this %s device", what, d.Platform)
	}
	return nil
}

// auditBootstrap records what became of device d's Bootstrap Token, a
// credential that unlocks its Mac's SecureToken: kept, cleared, or handed
// back (to the Mac itself, at setup). The entry holds no token material.
func auditBootstrap(ctx context.Context, q store.Queries, d store.Device, action string) error {
	return audit.Append(ctx, q, iam.Actor{Type: store.ActorDevice, ID: d.ID}.Entry(d.TenantID, action, "device", d.ID, audit.OutcomeSuccess))
}

// keepsBootstrapToken says whether Steward escrows the Bootstrap Token of
// a Mac of ownership class o; only those Macs are asked for one (the
// enrolment profile's ServerCapabilities).
func keepsBootstrapToken(o privacy.Ownership) bool { return !o.PersonallyOwned() }

// channelFor finds the channel of a certificate and checks the message
// names the device the certificate was bound to, and that the device is
// still managed: a checked-out or deprovisioned device needs a new enrolment.
func (s *Service) channelFor(ctx context.Context, q store.Queries, cert *x509.Certificate, sender mdmproto.Enrollment) (store.AppleChannel, error) {
	ch, _, err := s.channelAndDevice(ctx, q, cert, sender)
	return ch, err
}

func (s *Service) channelAndDevice(ctx context.Context, q store.Queries, cert *x509.Certificate, sender mdmproto.Enrollment) (store.AppleChannel, store.Device, error) {
	ch, d, err := q.AppleChannels().GetByCertWithDevice(ctx, Fingerprint(cert))
	if errors.Is(err, store.ErrNotFound) {
		if ch, err = s.renewedChannel(ctx, q, cert); err == nil {
			d, err = q.Devices().Get(ctx, ch.TenantID, ch.DeviceID)
		}
	}
	if err != nil {
		return ch, d, err
	}
	if err := s.checkManaged(ctx, q, ch, d, sender); err != nil {
		return ch, d, err
	}
	if ch.CertSerial == "" {
		// A channel from before serials were kept: recorded now, so that
		// the certificate is released when the device renews it.
		ch.CertSerial = cert.SerialNumber.String()
		return ch, d, s.changeChannel(ctx, q, ch, store.ChannelChange{At: s.clock(), CertSerial: ch.CertSerial})
	}
	return ch, d, nil
}

// checkManaged refuses a message unless the channel's device is still
// managed and the message names it. A device that left is refused whatever
// it names, and told to unenrol: its certificate can do nothing any more.
func (s *Service) checkManaged(ctx context.Context, q store.Queries, ch store.AppleChannel, d store.Device, sender mdmproto.Enrollment) error {
	// A leaving device still talks, to receive the removal of its
	// management profile (sendNext) and report nothing (the gate).
	if d.Left() {
		return ErrDeviceLeft
	}
	return s.checkSender(ctx, q, ch, sender)
}

// checkUserChannel vets a user-channel message that writes nothing: its
// certificate must still be the device channel's, for the device the
// message names, and that device must be managed. A read does, unless the
// certificate is a renewed one the channel has not moved to yet: moving it
// takes the write transaction. It returns the device channel and device.
func (s *Service) checkUserChannel(ctx context.Context, cert *x509.Certificate, sender mdmproto.Enrollment) (store.AppleChannel, store.Device, error) {
	q := s.st.Read()
	ch, d, err := q.AppleChannels().GetByCertWithDevice(ctx, Fingerprint(cert))
	if errors.Is(err, store.ErrNotFound) {
		err = s.st.Tx(ctx, func(q store.Queries) error {
			ch, d, err = s.channelAndDevice(ctx, q, cert, sender)
			return err
		})
		return ch, d, err
	}
	if err != nil {
		return ch, d, err
	}
	return ch, d, s.checkManaged(ctx, q, ch, d, sender)
}

// checkSender refuses a message whose channel checked out, or whose
// sender is not the device the certificate's channel belongs to. A closed
// channel is checked first: it keeps no index to compare (a departure
// clears it), and a device still talking after it left is no misuse of
// its identity.
func (s *Service) checkSender(ctx context.Context, q store.Queries, ch store.AppleChannel, sender mdmproto.Enrollment) error {
	if ch.CheckedOut {
		return ErrUnknownDevice
	}
	idx, err := s.channelIndex(ctx, q, ch.TenantID, sender)
	if err != nil {
		return err
	}
	if !bytes.Equal(idx, ch.ChannelIndex) {
		return ErrWrongDevice
	}
	return nil
}

// authenticate creates the device and its channel the first time a device
// presents a certificate issued for an accepted enrolment, or takes over the
// record of an earlier attempt that failed to install (retry.go).
func (s *Service) authenticate(ctx context.Context, cert *x509.Certificate, m *mdmproto.Authenticate) error {
	if len(m.Topic) > maxPushStringLen { // kept as the channel's topic
		return apperr.Invalid("Authenticate with a Topic longer than %d", maxPushStringLen)
	}
	if platformOf(m.ProductName, m.Model) == "" && !platformUnnamed(m.ProductName, m.Model) {
		// Before anything is created: the profile fails to install, and
		// the invitation stays open for an iPhone, iPad or Mac.
		product := truncateText(firstNonEmpty(m.ProductName, m.Model), 64)
		s.log.WarnContext(ctx, "an enrolment was refused: Steward manages iPhones, iPads and Macs only; send the invitation to one of them",
			"product", product)
		return apperr.Forbidden("Steward manages iPhones, iPads and Macs only; this device (%q) is none of them", product)
	}
	fp := Fingerprint(cert)
	return s.st.Tx(ctx, func(q store.Queries) error {
		if _, err := q.AppleChannels().GetByCert(ctx, fp); err == nil {
			// The same device authenticating again: fine while it is still
			// managed; after a check-out it needs a new enrolment.
			_, err := s.channelFor(ctx, q, cert, m.Enrollment)
			return err
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		raw, err := q.Settings().Get(ctx, certBindingKey(fp))
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnknownDevice
		}
		if err != nil {
			return err
		}
		var b certBinding
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("mdm: certificate binding: %w", err)
		}
		if b.Renewal {
			_, err := s.channelFor(ctx, q, cert, m.Enrollment) // a renewed certificate re-authenticating
			return err
		}
		e, err := q.Enrolments().Get(ctx, b.TenantID, b.EnrolmentID)
		if err != nil {
			return err
		}
		if e.UserEnrollment != m.IsUserEnrollment() {
			return apperr.Forbidden("the device enrolled differently from the enrolment it was invited to (user enrollment: %v)", e.UserEnrollment)
		}
		switch e.State {
		case EnrolmentAccepted:
			if !s.clock().Before(installableUntil(e)) {
				return apperr.Conflict("this enrolment link expired before the device finished enrolling; ask your IT team for a new one")
			}
		case store.EnrolmentUsed:
			return s.authenticateAgain(ctx, q, e, b.Rights, cert, m)
		case store.EnrolmentRevoked:
			return errEnrolmentRevoked
		default:
			return errEnrolmentUsed
		}
		if err := checkGrant(ctx, q, e, b.Rights); err != nil {
			return err
		}
		actor := iam.Actor{Type: store.ActorDevice, ID: "enrolment:" + e.ID}
		d, err := s.priv.RegisterDeviceIn(ctx, q, e.TenantID, privacy.DeviceInput{SubjectID: e.SubjectID, Ownership: e.Ownership,
			Platform: platformOf(m.ProductName, m.Model), PlatformUnknown: platformUnnamed(m.ProductName, m.Model)}, actor)
		if err != nil {
			return err
		}
		idx, err := s.channelIndex(ctx, q, e.TenantID, m.Enrollment)
		if err != nil {
			return err
		}
		now := s.clock()
		ch := store.AppleChannel{DeviceID: d.ID, TenantID: e.TenantID, CertFingerprint: fp, CertSerial: cert.SerialNumber.String(),
			CertNotAfter: cert.NotAfter.UTC(), EnrolmentID: e.ID, ChannelIndex: idx, Topic: m.Topic, LastCheckin: now, CreatedAt: now,
			UpdatedAt: now}
		// Used once, even by racing devices: the conditional update lets one
		// win, and the channel's unique enrolment backs it up.
		if err := q.Enrolments().Use(ctx, e.TenantID, e.ID, d.ID, now); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errEnrolmentUsed
			}
			return err
		}
		if err := q.AppleChannels().Create(ctx, ch); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("this enrolment or certificate is already in use")
			}
			return err
		}
		return s.authenticated(ctx, q, e, d, b.Rights, cert, m, false)
	})
}

// checkGrant refuses the first Authenticate of a profile that may no
// longer be installed (grantRefusal): SCEP checked it seconds before, but
// a consent withdrawn in between must not let the device in. The person's
// consents are held first: a withdrawal under way on another node is
// waited for, and one that comes later waits for the device, which it
// then finds and retires.
func checkGrant(ctx context.Context, q store.Queries, e store.Enrolment, rights int) error {
	if e.SubjectID != "" {
		if err := q.Consents().HoldForSubject(ctx, e.TenantID, e.SubjectID); err != nil {
			return err
		}
	}
	refusal, err := grantRefusal(ctx, q, e, rights)
	if err != nil || refusal == nil {
		return err
	}
	return apperr.Forbidden("%s", refusal.Reason)
}

// authenticated finishes an Authenticate that created (or, again, took
// over) device d's channel from a profile granting rights (0: not known),
// which are recorded for the renewals: the certificate's binding goes, and
// what the device reported passes the privacy gate.
func (s *Service) authenticated(ctx context.Context, q store.Queries, e store.Enrolment, d store.Device, rights int, cert *x509.Certificate,
	m *mdmproto.Authenticate, again bool) error {
	if err := q.Settings().Delete(ctx, certBindingKey(Fingerprint(cert))); err != nil {
		return err
	}
	// Only a personal device's rights vary (accessRights); the others'
	// are their class's, and recording them would cost every enrolment a
	// write.
	if rights != 0 && rights != e.AccessRights && privacy.Ownership(e.Ownership) == privacy.Personal {
		if err := q.Enrolments().SetAccessRights(ctx, e.TenantID, e.ID, rights); err != nil {
			return err
		}
	}
	now := s.clock()
	if _, err := s.priv.Gate().Admit(ctx, q, privacy.Report{TenantID: e.TenantID, DeviceID: d.ID, Source: "apple-mdm/Authenticate",
		Values: authenticateObservations(m), At: now}); err != nil {
		return err
	}
	r := iam.Actor{Type: store.ActorDevice, ID: "enrolment:" + e.ID}.Entry(e.TenantID, "mdm.authenticate", "device", d.ID, audit.OutcomeSuccess)
	r.Details = map[string]any{"enrolment": e.ID, "user_enrollment": e.UserEnrollment}
	if again {
		r.Details["again"] = true // the earlier attempt's profile failed to install
	}
	return audit.Append(ctx, q, r)
}

// tokenUpdate stores how to wake the device; the first one completes the
// enrolment and queues the initial inventory.
func (s *Service) tokenUpdate(ctx context.Context, q store.Queries, ch store.AppleChannel, m *mdmproto.TokenUpdate) error {
	if err := checkPushRegistration(m); err != nil {
		return err
	}
	d, earlier, err := s.lockForTokenUpdate(ctx, q, ch)
	if err != nil {
		return err
	}
	// Read again under the device's lock, which every TokenUpdate takes:
	// whether a token is held may have changed since the first read, and a
	// retry of a failed installation may have taken the channel over.
	signer := ch.CertFingerprint
	if ch, err = q.AppleChannels().Get(ctx, ch.TenantID, ch.DeviceID); err != nil {
		return err
	}
	if !bytes.Equal(ch.CertFingerprint, signer) {
		return ErrUnknownDevice
	}
	// A new registration (a token after APNs dropped the last, or a changed
	// token, PushMagic or topic) needs a push for the commands waiting: one
	// in flight goes where the device no longer listens, yet APNs may
	// accept it. Scheduling moves the due time off the pusher's claim, so
	// recording that push clears nothing, whichever commits first; and,
	// unlike PushDone checking the token pushed, the new one is pushed at
	// the next run, not once the claim lapses.
	renewed := !bytes.Equal(ch.PushToken, m.Token) || ch.PushMagic != m.PushMagic || ch.Topic != m.Topic
	now := s.clock()
	change := store.ChannelChange{At: now, Push: &store.PushRegistration{Token: m.Token, Magic: m.PushMagic, Topic: m.Topic, At: now}}
	// Only a corporate device's unlock token is kept: clearing the
	// passcode of a personal device is never allowed, so escrowing its
	// token would only hold a secret for nothing.
	if len(m.UnlockToken) > 0 && !privacy.Ownership(d.Ownership).PersonallyOwned() {
		token := m.UnlockToken.Reveal()
		// Devices repeat their token in later TokenUpdates: only a token
		// newly kept, or another than the one kept, is escrowed again and
		// audited (it lets the organisation clear the passcode).
		same := s.escrowedEquals(ctx, q, ch.TenantID, ch.DeviceID, unlockToken, ch.UnlockToken, token)
		if !same || !inVault(ch.UnlockToken) {
			if change.UnlockToken, err = s.escrow(ctx, q, d, unlockToken, token); err != nil {
				return err
			}
		}
		if !same {
			r := iam.Actor{Type: store.ActorDevice, ID: d.ID}.Entry(d.TenantID, "mdm.unlock_token.escrowed", "device", d.ID, audit.OutcomeSuccess)
			r.Details = map[string]any{"replaced": ch.UnlockToken != nil}
			if err := audit.Append(ctx, q, r); err != nil {
				return err
			}
		}
	} else if ch.UnlockToken != nil && !inVault(ch.UnlockToken) {
		// Escrowed under the master key alone, before tokens went into the
		// vault: moved there, under the device's lock taken above. One that
		// does not open is left for ClearPasscode to report; the push
		// registration does not wait on it.
		if token, err := s.sealer.Open(ch.UnlockToken, unlockToken.masterAD(ch.DeviceID)); err == nil {
			if change.UnlockToken, err = s.escrow(ctx, q, d, unlockToken, token); err != nil {
				return err
			}
		}
	}
	if err := s.changeChannel(ctx, q, ch, change); err != nil {
		return err
	}
	if d.State != store.DevicePending {
		if renewed {
			return s.pushIfPending(ctx, q, d.TenantID, d.ID)
		}
		return nil
	}
	d.State, d.EnrolledAt, d.UpdatedAt = store.DeviceEnrolled, s.clock(), s.clock()
	if err := q.Devices().Update(ctx, d); err != nil {
		return err
	}
	actor := iam.Actor{Type: store.ActorDevice, ID: d.ID}
	if err := audit.Append(ctx, q, actor.Entry(d.TenantID, "mdm.enrolled", "device", d.ID, audit.OutcomeSuccess)); err != nil {
		return err
	}
	initial, err := s.initialInventory(ctx, q, d)
	if err != nil {
		return err
	}
	if len(initial) > 0 {
		if _, err := s.EnqueueInventoryIn(ctx, q, d, initial, "initial inventory", iam.SystemActor); err != nil {
			return err
		}
	}
	// Earlier records are asked through EnqueueIn, which locks a record's
	// queue before it writes the record's channel, as every path does: a
	// bulk enqueue holding the tenant's queue lock never waits on a row
	// this transaction holds (it cannot include this device, still pending,
	// and takes no device row locks).
	if err := s.checkEarlierEnrolments(ctx, q, d, earlier); err != nil {
		return err
	}
	if s.hooks.Enrolled == nil {
		return nil
	}
	e, err := q.Enrolments().Get(ctx, d.TenantID, ch.EnrolmentID)
	if err != nil {
		return err
	}
	return s.hooks.Enrolled(ctx, q, d, e)
}

// maxPushStringLen bounds the PushMagic and Topic a device registers, far
// above what Apple sends (a UUID; "com.apple.mgmt." and a UUID): Steward
// keeps them as sent, and sends the PushMagic back with every push.
const maxPushStringLen = 256

// checkPushRegistration vets what a TokenUpdate registers, on the device
// channel or a user channel: a token and a PushMagic, none of them (nor the
// topic) longer than a real device sends.
func checkPushRegistration(m *mdmproto.TokenUpdate) error {
	if len(m.Token) == 0 || m.PushMagic == "" {
		return apperr.Invalid("TokenUpdate without a token or PushMagic")
	}
	if len(m.Token) > apns.MaxTokenLen || len(m.PushMagic) > maxPushStringLen || len(m.Topic) > maxPushStringLen {
		return apperr.Invalid("TokenUpdate with a Token longer than %d bytes, or a PushMagic or Topic longer than %d",
			apns.MaxTokenLen, maxPushStringLen)
	}
	return nil
}

// initialInventory is what a newly enrolled device is asked first. A
// policy that drops every DeviceInformation query, or all a list reports
// (keepsNothingOf), leaves that one out; the enrolment still completes,
// asked nothing if the policy keeps nothing, as it does when Apple's rules
// refuse a list on the device (EnqueueInventoryIn).
func (s *Service) initialInventory(ctx context.Context, q store.Queries, d store.Device) ([]mdmproto.Request, error) {
	settings, err := privacy.ViewSettings(ctx, q, d.TenantID)
	if err != nil {
		return nil, err
	}
	policy, err := privacy.EffectivePolicy(ctx, q, settings, d)
	if err != nil {
		return nil, err
	}
	o := privacy.Ownership(d.Ownership)
	var reqs []mdmproto.Request
	if len(DeviceInformationQueries(policy, o)) > 0 {
		reqs = append(reqs, mdmproto.DeviceInformation{})
	}
	for _, list := range []mdmproto.Request{mdmproto.SecurityInfo{}, mdmproto.InstalledApplicationList{}} {
		if !keepsNothingOf(list, policy, o) {
			reqs = append(reqs, list)
		}
	}
	return reqs, nil
}

// pushIfPending makes a device channel due a push now if commands wait on it.
func (s *Service) pushIfPending(ctx context.Context, q store.Queries, tenantID, deviceID string) error {
	open, err := q.Commands().OpenCounts(ctx, tenantID, []string{deviceID})
	if err != nil || open[deviceID] == 0 {
		return err
	}
	_, err = q.AppleChannels().SchedulePush(ctx, tenantID, []string{deviceID}, s.clock())
	return err
}

// checkOut: the device removed its MDM profile. Its personal data is erased
// as on any deprovisioning (DeviceLeft closes the channel and releases its
// identity certificate, whose serial channelAndDevice made sure is known),
// and the signed certificate records why.
func (s *Service) checkOut(ctx context.Context, q store.Queries, ch store.AppleChannel) error {
	// The device before its channel, in the order every other writer of
	// both takes them (a retry's takeover, a TokenUpdate, an erasure):
	// taken the other way round, a CheckOut racing a retry deadlocked.
	d, err := q.Devices().Lock(ctx, ch.TenantID, ch.DeviceID)
	if err != nil {
		return err
	}
	// Its last sign of life: a Mac that removes its profile is past any
	// lock it took, whose PIN then goes with its record.
	if err := q.Devices().Touch(ctx, ch.TenantID, ch.DeviceID, s.clock()); err != nil {
		return err
	}
	if err := s.changeChannel(ctx, q, ch, store.ChannelChange{At: s.clock()}); err != nil {
		return err
	}
	// Cancelled here, before DeviceLeft, so that their hooks know the
	// device removed its profile itself: a retire's removal among them
	// finishes as if acknowledged, and the device has then left, retired.
	if err := s.cancelOpen(ctx, q, ch.TenantID, ch.DeviceID, checkedOutChain); err != nil {
		return err
	}
	if d, err = q.Devices().Get(ctx, ch.TenantID, ch.DeviceID); err != nil || d.Left() {
		return err
	}
	actor := iam.Actor{Type: store.ActorDevice, ID: ch.DeviceID}
	if d.State == store.DeviceLeaving {
		// Told to leave, it did (its removal failed earlier, or was never
		// answered): retired, as a retire's CheckOut is.
		_, err = s.priv.LeaveIn(ctx, q, ch.TenantID, ch.DeviceID, store.DeviceRetired,
			"the device removed its management profile (CheckOut) after consent for it was withdrawn", actor)
	} else {
		_, err = s.priv.DeprovisionIn(ctx, q, ch.TenantID, ch.DeviceID, "the device removed its management profile (CheckOut)", actor)
	}
	if apperr.IsKind(err, apperr.KindConflict) {
		return nil // a concurrent message took it out already
	}
	return err
}

// bootstrapResponse answers GetBootstrapToken with token, nil when none is
// kept.
func bootstrapResponse(token []byte) ([]byte, error) {
	// getbootstraptoken.yaml: the key is optional; without a token it is
	// left out rather than sent empty.
	answer := map[string]any{}
	if len(token) > 0 {
		answer["BootstrapToken"] = token
	}
	return plist.Marshal(answer, plist.XMLFormat)
}

// declarativeResponse answers declarative management with an empty,
// consistent configuration until Steward manages declarations.
func declarativeResponse(m *mdmproto.DeclarativeManagement) ([]byte, error) {
	const token = "steward-ddm-empty-v1"
	switch m.Endpoint {
	case "tokens":
		return json.Marshal(map[string]any{"SyncTokens": map[string]any{"DeclarationsToken": token, "Timestamp": "2026-01-01T00:00:00Z"}})
	case "declaration-items":
		return json.Marshal(map[string]any{"Declarations": map[string]any{"Activations": []any{}, "Assets": []any{},
			"Configurations": []any{}, "Management": []any{}}, "DeclarationsToken": token})
	case "status":
		return nil, nil
	}
	return nil, apperr.NotFound("declarative management endpoint")
}

// Why auditRefusal records a device's certificate refused.
const (
	namedAnotherDevice = "a request signed with this device's certificate named another device"
	withAnotherDevice  = "a request presented this device's certificate together with another device's"
)

// auditRefusal records a certificate speaking for another device, or
// presented with another device's (why): a stolen or copied identity is a
// security event the tenant must see. While it goes on, one entry per
// misuseAuditInterval says how many refusals came since the last; the ones
// in between are logged only, and counted into the next entry, or into the
// one AuditClosedMisuse writes when they stop. The entry is written whether
// or not the device stays for the answer: one that hangs up at once must
// not leave the interval unaudited.
func (s *Service) auditRefusal(ctx context.Context, tenantID string, cert *x509.Certificate, ip, why string) {
	fp := Fingerprint(cert)
	// The enrolment its subject names finds the device's channel for the
	// closing entry after the channel moved on to a renewed certificate.
	refusal := misuseRefusal{tenantID: tenantID, ip: ip, why: why, enrolmentID: strings.TrimPrefix(cert.Subject.CommonName, deviceCommonName(""))}
	audited, unaudited, reservation := s.misuse.admit(string(fp), s.clock(), refusal)
	if !audited {
		s.log.DebugContext(ctx, "a device certificate was refused again ("+why+"); audited at most every "+misuseAuditInterval.String(),
			"tenant", tenantID, "certificate_serial", cert.SerialNumber.String())
		return
	}
	written, err := s.writeRefusal(ctx, fp, refusal, unaudited)
	if err != nil || !written {
		reservation.undo()
	}
	if err != nil {
		s.log.Error("auditing a refused device request", "error", err.Error())
	}
}

// AuditClosedMisuse writes, for each certificate whose interval ended with
// refusals not yet audited, the entry that counts them. Each node counts
// its own refusals, so each runs it (the pusher's loop does, every tick).
func (s *Service) AuditClosedMisuse(ctx context.Context) {
	now := s.clock()
	for _, c := range s.misuse.closedIntervals(now) {
		if c.scepCode != "" {
			if err := s.writeSCEPRefusal(ctx, c.misuseRefusal, c.count); err != nil {
				s.misuse.giveBack(c, now)
				s.log.Error("auditing refused SCEP requests", "error", err.Error())
			}
			continue
		}
		written, err := s.writeRefusal(ctx, []byte(c.fp), c.misuseRefusal, c.count)
		if err != nil {
			s.misuse.giveBack(c, now)
			s.log.Error("auditing refused device requests", "error", err.Error())
		} else if !written {
			s.log.Debug("refused device requests not audited: their device is gone", "tenant", c.tenantID, "count", c.count)
		}
	}
}

// writeRefusal appends the mdm.identity_mismatch entry for the device whose
// certificate (fingerprint fp) was refused, counting unaudited refusals
// before it; written is false when that device is not the tenant's (gone).
// A certificate no channel holds any more (the device renewed it since)
// is the device's that its enrolment (r.enrolmentID) enrolled.
func (s *Service) writeRefusal(ctx context.Context, fp []byte, r misuseRefusal, unaudited int) (written bool, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditRefusalTimeout)
	defer cancel()
	err = s.st.Tx(ctx, func(q store.Queries) error {
		written = false
		ch, err := q.AppleChannels().GetByCert(ctx, fp)
		renewed := errors.Is(err, store.ErrNotFound)
		if renewed {
			ch, err = renewalTarget(ctx, q, fp)
		}
		if errors.Is(err, store.ErrNotFound) && r.enrolmentID != "" {
			ch, err = q.AppleChannels().GetByEnrolment(ctx, r.tenantID, r.enrolmentID)
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil // the device is gone: nothing to name, nothing to retry
		}
		if err != nil || ch.TenantID != r.tenantID {
			return err
		}
		written = true
		e := iam.Actor{Type: store.ActorDevice, ID: ch.DeviceID, SourceIP: r.ip}.Entry(r.tenantID, "mdm.identity_mismatch", "device", ch.DeviceID, audit.OutcomeDenied)
		e.Reason = r.why
		e.Details = map[string]any{"refusals_since_last_entry": unaudited}
		if renewed {
			e.Details["renewed_certificate"] = true
		}
		return audit.Append(ctx, q, e)
	})
	return written, err
}

// auditRefusalTimeout bounds the write of a refusal's audit entry, which
// outlives the request.
const auditRefusalTimeout = 10 * time.Second

// renewalTarget is the channel a renewed certificate is bound to move, read
// from its binding without moving it: a refused request rolls the move
// back, and the certificate is only the device's once it speaks for it.
func renewalTarget(ctx context.Context, q store.Queries, fp []byte) (store.AppleChannel, error) {
	raw, err := q.Settings().Get(ctx, certBindingKey(fp))
	if err != nil {
		return store.AppleChannel{}, err
	}
	var b certBinding
	if err := json.Unmarshal(raw, &b); err != nil || !b.Renewal {
		return store.AppleChannel{}, store.ErrNotFound
	}
	return q.AppleChannels().GetByEnrolment(ctx, b.TenantID, b.EnrolmentID)
}
