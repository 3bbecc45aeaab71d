package mdm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// A certificate SCEP issues is bound to its enrolment until the device
// first uses it: then Authenticate creates the device's channel, or, for a
// renewal, the channel moves over to it.

// certBindingPrefix starts the Settings key binding an issued identity
// certificate to its enrolment until the device authenticates with it.
const certBindingPrefix = "mdm-cert:"

func certBindingKey(fp []byte) string { return certBindingPrefix + hex.EncodeToString(fp) }

type certBinding struct {
	TenantID    string `json:"tenant_id"`
	EnrolmentID string `json:"enrolment_id"`
	Renewal     bool   `json:"renewal,omitempty"`
	// Renews is the fingerprint of the certificate the channel held when
	// a renewal was issued: the renewal takes the channel over only from
	// it. Renewal bindings written before it existed have none.
	Renews []byte `json:"renews,omitempty"`
	// NotAfter is the certificate's expiry: past it, the binding can never
	// be used and is purged. Bindings written before it existed have none
	// and stay until their tenant is deleted.
	NotAfter time.Time `json:"not_after,omitzero"`
	// Rights are the access rights of the profile that obtained a first
	// certificate (scep.Issuance.Grant), recorded on the enrolment when
	// the device authenticates; 0 when none were carried.
	Rights int `json:"rights,omitempty"`
}

// BindIssuedCertificate is the SCEP server's OnIssued hook: it remembers
// which enrolment a new identity certificate belongs to. A renewal moves an
// existing channel to the new certificate when the device uses it. It
// refuses (a CertRep FAILURE) a subject other than the one the enrolment
// profile names, a first certificate for an enrolment not accepted, and a
// renewal for a device that left management or signed by a certificate
// other than its channel's.
func (s *Service) BindIssuedCertificate(ctx context.Context, q store.Queries, issued scep.Issuance) error {
	cert := issued.Certificate
	if cert.Subject.CommonName != deviceCommonName(issued.EnrolmentID) {
		return scep.Refuse("subject_mismatch", "the certificate request's subject is not the one the enrolment profile names")
	}
	binding := certBinding{TenantID: issued.TenantID, EnrolmentID: issued.EnrolmentID, Renewal: issued.Renewal, NotAfter: cert.NotAfter.UTC()}
	deviceID := "" // until its first Authenticate, a device has no record
	if issued.Renewal {
		ch, err := s.checkRenewable(ctx, q, issued.TenantID, issued.EnrolmentID, issued.Renews)
		if err != nil {
			return err
		}
		binding.Renews, deviceID = ch.CertFingerprint, ch.DeviceID
	} else if err := checkAccepted(ctx, q, issued, s.clock()); err != nil {
		return err
	} else {
		binding.Rights = issued.Grant
	}
	b, err := json.Marshal(binding)
	if err != nil {
		return err
	}
	if err := q.Settings().Put(ctx, certBindingKey(Fingerprint(cert)), b); err != nil {
		return err
	}
	return auditIssued(ctx, q, issued, deviceID)
}

// auditIssued records a device identity the tenant's CA issued, in the
// issuance's transaction: an issuance undone leaves no entry. A device
// without a record yet (deviceID "") is named by its enrolment, as at
// Authenticate. The entry holds the serial, never the challenge or key.
func auditIssued(ctx context.Context, q store.Queries, issued scep.Issuance, deviceID string) error {
	actor := iam.Actor{Type: store.ActorDevice, ID: "enrolment:" + issued.EnrolmentID, SourceIP: issued.SourceIP}
	if deviceID != "" {
		actor.ID = deviceID
	}
	r := actor.Entry(issued.TenantID, "scep.certificate.issued", "enrolment", issued.EnrolmentID, audit.OutcomeSuccess)
	r.Details = map[string]any{"certificate_serial": issued.Certificate.SerialNumber.String(), "renewal": issued.Renewal}
	return audit.Append(ctx, q, r)
}

// deviceCommonName is the subject common name an enrolment's profile asks
// the device to put in its certificate request.
func deviceCommonName(enrolmentID string) string { return "steward-device-" + enrolmentID }

// checkAccepted refuses a first certificate unless its enrolment was
// accepted, or used by a device whose installation failed (retry.go), and
// not revoked since, and the profile that obtained it may still be
// installed (grantRefusal).
func checkAccepted(ctx context.Context, q store.Queries, issued scep.Issuance, now time.Time) error {
	e, err := q.Enrolments().Get(ctx, issued.TenantID, issued.EnrolmentID)
	if errors.Is(err, store.ErrNotFound) {
		return scep.Refuse("enrolment_gone", "the enrolment no longer exists")
	}
	if err != nil {
		return err
	}
	if e.State == store.EnrolmentRevoked { // whatever became of its last attempt
		return scep.Refuse("enrolment_revoked", "the enrolment link was revoked")
	}
	if e.State != EnrolmentAccepted {
		_, last, err := lastAttempt(ctx, q, e, now)
		if err != nil {
			return err
		}
		if last != attemptFailed {
			return scep.Refuse("enrolment_not_accepted", "the enrolment is "+e.State+", not accepted")
		}
	}
	refusal, err := grantRefusal(ctx, q, e, issued.Grant)
	if err != nil || refusal == nil {
		return err
	}
	return refusal
}

// grantRefusal says why a profile of enrolment e granting rights may no
// longer be installed, or nil when it may: a profile downloaded stays
// usable for its challenge's hour, in which its person may have withdrawn
// their consent, the notice may have changed, or the rights it grants may
// have become more than the enrolment may have (the full wipe taken back,
// the policy narrowed). rights 0: none were recorded with it; a profile
// downloaded before its challenge carried them grants what was recorded
// at its download.
func grantRefusal(ctx context.Context, q store.Queries, e store.Enrolment, rights int) (*scep.RefusalError, error) {
	if rights == 0 && e.State == EnrolmentAccepted {
		rights = e.AccessRights
	}
	o := privacy.Ownership(e.Ownership)
	if e.SubjectID == "" && o != privacy.Personal {
		return nil, nil // nobody's consent, and every right its class has
	}
	settings, _, err := privacy.LoadSettings(ctx, q, e.TenantID)
	if err != nil {
		return nil, err
	}
	inForce, err := consentInForce(ctx, q, e, settings)
	if err != nil {
		return nil, err
	}
	if !inForce {
		return scep.Refuse("consent_not_in_force", "the person's consent to the current notice is not in force (withdrawn, or the notice changed since the profile was downloaded)"), nil
	}
	if mdmproto.AccessRights(rights)&^grantableRights(e, settings.Policy, true) != 0 {
		return scep.Refuse("grant_exceeds_enrolment", "the profile grants more than the enrolment now allows (the policy, or the answer on a full wipe, changed since it was downloaded)"), nil
	}
	return nil, nil
}

// checkRenewable refuses to renew the certificate of a device that left
// management: CheckOut releases its certificate, but a device deprovisioned,
// retired or wiped from the console may still try. A RenewalReq must be
// signed by the channel's own certificate (renews): while an enrolment is
// accepted, every profile download yields a certificate, and the ones its
// device never used must not move its channel elsewhere. A renewal
// challenge (renews nil) was sent to the channel's device itself.
func (s *Service) checkRenewable(ctx context.Context, q store.Queries, tenantID, enrolmentID string, renews *x509.Certificate) (store.AppleChannel, error) {
	ch, err := q.AppleChannels().GetByEnrolment(ctx, tenantID, enrolmentID)
	if errors.Is(err, store.ErrNotFound) {
		return ch, scep.Refuse("no_enrolled_device", "the enrolment has no enrolled device")
	}
	if err != nil {
		return ch, err
	}
	d, err := q.Devices().Get(ctx, tenantID, ch.DeviceID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return ch, err
	}
	// A leaving device may renew: until it removes its management profile
	// it needs the channel, which takes it nothing but that removal.
	if ch.CheckedOut || err != nil || d.Left() {
		return ch, scep.Refuse("device_left", "the device left management")
	}
	if d.State == store.DeviceLeaving && s.hooks.StoppedTellingToLeave != nil {
		// Once Steward gave up telling it to leave, or while it stays
		// silent too long, its channel lapses with its certificate.
		stopped, err := s.hooks.StoppedTellingToLeave(ctx, q, d)
		if err != nil {
			return ch, err
		}
		if stopped {
			return ch, scep.Refuse("device_told_to_leave", "the device was told to leave management and its identity is no longer renewed")
		}
	}
	if renews != nil && !bytes.Equal(ch.CertFingerprint, Fingerprint(renews)) {
		return ch, scep.Refuse("renewal_not_by_current_certificate", "the renewal is not signed by the certificate the device uses")
	}
	return ch, nil
}

// renewedChannel moves a channel to the certificate its device renewed by
// SCEP, the first time the device uses it.
func (s *Service) renewedChannel(ctx context.Context, q store.Queries, cert *x509.Certificate) (store.AppleChannel, error) {
	fp := Fingerprint(cert)
	raw, err := q.Settings().Get(ctx, certBindingKey(fp))
	if errors.Is(err, store.ErrNotFound) {
		return store.AppleChannel{}, ErrUnknownDevice
	}
	if err != nil {
		return store.AppleChannel{}, err
	}
	var b certBinding
	if err := json.Unmarshal(raw, &b); err != nil || !b.Renewal {
		return store.AppleChannel{}, ErrUnknownDevice
	}
	ch, err := q.AppleChannels().GetByEnrolment(ctx, b.TenantID, b.EnrolmentID)
	if errors.Is(err, store.ErrNotFound) {
		return ch, ErrUnknownDevice
	}
	if err != nil {
		return ch, err
	}
	if b.Renews != nil && !bytes.Equal(ch.CertFingerprint, b.Renews) {
		// The channel moved on since this renewal was issued (another
		// renewal, or a retried installation): whoever holds the key of
		// the certificate it renewed must not take the channel back.
		return ch, ErrUnknownDevice
	}
	replaced, from := ch.CertSerial, ch.CertFingerprint
	ch.CertFingerprint, ch.CertSerial, ch.CertNotAfter, ch.UpdatedAt = fp, cert.SerialNumber.String(), cert.NotAfter.UTC(), s.clock()
	err = q.AppleChannels().MoveCertificate(ctx, ch.TenantID, ch.DeviceID, from,
		store.ChannelCertificate{Fingerprint: fp, Serial: ch.CertSerial, NotAfter: ch.CertNotAfter}, ch.UpdatedAt)
	if errors.Is(err, store.ErrConflict) {
		// Moved meanwhile: by another message of the device with this
		// certificate, which is then the channel's, or closed.
		if ch, err = q.AppleChannels().GetByCert(ctx, fp); errors.Is(err, store.ErrNotFound) {
			return ch, ErrUnknownDevice
		}
		return ch, err
	}
	if err != nil {
		return ch, err
	}
	// The certificate it replaces can no longer be renewed: whoever holds
	// its key could otherwise get a certificate and take the channel back.
	if err := releaseCertificate(ctx, q, ch.TenantID, replaced); err != nil {
		return ch, err
	}
	if err := q.Settings().Delete(ctx, certBindingKey(fp)); err != nil {
		return ch, err
	}
	// The device's identity changed hands: audited with the move, so a
	// request refused after it (which rolls it back) leaves no entry.
	r := iam.Actor{Type: store.ActorDevice, ID: ch.DeviceID}.Entry(ch.TenantID, "mdm.identity.renewed", "device", ch.DeviceID, audit.OutcomeSuccess)
	r.Details = map[string]any{"enrolment": ch.EnrolmentID, "old_certificate_serial": replaced, "new_certificate_serial": ch.CertSerial}
	return ch, audit.Append(ctx, q, r)
}

// auditSCEPRefusal records a SCEP request refused: the tenant's CA was
// asked for a device identity it did not give. Like a certificate's misuse
// (auditRefusal), one entry per misuseAuditInterval counts the refusals
// alike (same code and enrolment) since the last, so that a flood of
// requests, which need no credential, cannot grow the audit log without
// bound. The first is audited at once.
func (s *Service) auditSCEPRefusal(ctx context.Context, refused scep.Refused) {
	r := misuseRefusal{tenantID: refused.TenantID, ip: refused.SourceIP, why: refused.Reason, scepCode: refused.Code, enrolmentID: refused.EnrolmentID}
	audited, unaudited, reservation := s.misuse.admit(scepRefusalKey(r), s.clock(), r)
	if !audited {
		return // scep logs each refusal
	}
	if err := s.writeSCEPRefusal(ctx, r, unaudited); err != nil {
		reservation.undo()
		s.log.Error("auditing a refused SCEP request", "tenant", refused.TenantID, "error", err.Error())
	}
}

// scepRefusalKey is what SCEP refusals are counted by in s.misuse, which
// also counts certificates by their fingerprint: it is always longer than
// one, so the two never meet.
func scepRefusalKey(r misuseRefusal) string {
	key := "scep.refused\x00" + r.tenantID + "\x00" + r.scepCode + "\x00" + r.enrolmentID
	if len(key) <= sha256.Size {
		key += strings.Repeat("\x00", sha256.Size+1-len(key))
	}
	return key
}

// writeSCEPRefusal appends the scep.refused entry for r, counting
// unaudited refusals alike before it. The request proved no identity: its
// actor is anonymous, and its target the enrolment it named, if any.
func (s *Service) writeSCEPRefusal(ctx context.Context, r misuseRefusal, unaudited int) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditRefusalTimeout)
	defer cancel()
	e := iam.Actor{Type: store.ActorAnonymous, SourceIP: r.ip}.Entry(r.tenantID, "scep.refused", "", "", audit.OutcomeDenied)
	if r.enrolmentID != "" {
		e.TargetType, e.TargetID = "enrolment", r.enrolmentID
	}
	e.Reason = r.why
	e.Details = map[string]any{"code": r.scepCode, "refusals_since_last_entry": unaudited}
	return s.st.Tx(ctx, func(q store.Queries) error { return audit.Append(ctx, q, e) })
}

// releaseCertificate stops SCEP renewing the certificate with serial, a
// channel's CertSerial ("" for channels from before it was kept: nothing
// is released).
func releaseCertificate(ctx context.Context, q store.Queries, tenantID, serial string) error {
	n, ok := new(big.Int).SetString(serial, 10)
	if !ok {
		return nil
	}
	return scep.ReleaseCertificate(ctx, q.Settings(), tenantID, n)
}
