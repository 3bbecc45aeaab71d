package mdm

import (
	"context"
	"errors"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// challengeTTL is how long the SCEP challenge in a downloaded profile
// stays usable: the device installs it right away or the employee
// downloads again.
const challengeTTL = time.Hour

// installGrace is how long after SCEP a device may take to authenticate: it
// does so as soon as the profile's identity is installed.
const installGrace = 15 * time.Minute

// installableUntil is when nothing handed out for enrolment e can finish
// enrolling any more: a profile downloaded just before the link expired
// carries a challenge good for challengeTTL, and its device authenticates
// within installGrace of using it. An identity obtained with the link that
// first authenticates later is refused, whatever a restored backup says.
func installableUntil(e store.Enrolment) time.Time {
	return e.ExpiresAt.Add(challengeTTL + installGrace)
}

// personalRights are what every personal device's enrolment grants: those
// of the commands Steward sends a personal device (profiles, lock, device
// and security queries, app lists and installs), and none of the rest
// (provisioning profiles, restriction queries, settings), which a
// compromised server could otherwise use. The rights its queries need
// beyond them come with the policy of the day (accessRights).
const personalRights = mdmproto.AccessProfileInspection | mdmproto.AccessProfileInstallRemove | mdmproto.AccessDeviceLock |
	mdmproto.AccessDeviceInformation | mdmproto.AccessApplicationInspection | mdmproto.AccessSecurityQueries |
	mdmproto.AccessAppManagement

// accessRights grants what the ownership class needs and no more. On a
// personal device the network information right (MAC addresses, phone
// and SIM numbers) comes only with a policy that collects such fields.
func accessRights(o privacy.Ownership, p privacy.Policy, fullWipeConsented bool) mdmproto.AccessRights {
	switch o {
	case privacy.Corporate, privacy.Shared:
		return mdmproto.AccessAll
	case privacy.UserEnrolled:
		return 0 // devices ignore AccessRights on User Enrollment
	}
	r := personalRights
	for _, q := range DeviceInformationQueries(p, o) {
		r |= mdmproto.QueryRight(q)
	}
	if p[o].FullWipe && fullWipeConsented {
		r |= mdmproto.AccessDeviceErase
	}
	return r
}

// checkHandOut refuses a User Enrollment's profile to a plain download.
// Its profile names the Managed Apple Account with AssignedManagedAppleID,
// which devices take only in account-driven enrolment (iOS 15 and macOS 14
// on); profile-based User Enrollment is gone since iOS 18 and macOS 15.
func checkHandOut(e store.Enrolment, byAccount bool) error {
	if e.UserEnrollment && !byAccount {
		return apperr.Conflict("this is a User Enrollment: it starts on the device itself. " +
			"Open Settings > General > VPN & Device Management (on a Mac: System Settings > General > Device Management), " +
			"choose Sign In to Work or School Account, and enter your work e-mail address and the enrolment code from your invitation")
	}
	return nil
}

// Profile returns the signed enrolment profile of an accepted enrolment e,
// which its caller opened (openEnrolment) and may hand out (checkHandOut):
// SCEP payload (with a fresh single-use challenge) then the MDM payload.
func (s *Service) Profile(ctx context.Context, e store.Enrolment, topic string) ([]byte, error) {
	q := s.st.Read()
	settings, _, err := privacy.LoadSettings(ctx, q, e.TenantID)
	if err != nil {
		return nil, err
	}
	ok, err := consentInForce(ctx, q, e, settings)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errConsentNeeded
	}
	rights := grantableRights(e, settings.Policy, ok)
	// The challenge carries what the profile grants: the certificate it
	// obtains is refused if that became more than the enrolment may have,
	// and the rights are recorded when the device authenticates with it.
	challenge, err := scep.IssueChallenge(ctx, q.Settings(), e.TenantID, e.ID, int(rights), s.clock(), challengeTTL)
	if err != nil {
		return nil, err
	}
	return s.enrolmentProfile(ctx, q, e, challenge, topic, rights)
}

// grantableRights are the access rights a profile built now for e may
// grant. A first installation gets what the ownership class and the policy
// allow, the erase right only with the person's full-wipe answer in force
// (consentInForce). A device that installed one (an identity renewal, a
// retry) is granted what it was granted before, as Apple refuses an update
// that adds a right, less the erase right once its person took their
// answer back, which nothing gives again. Other narrowing of the policy is
// enforced by the server rather than taken off the device, which no later
// profile could give back.
func grantableRights(e store.Enrolment, policy privacy.Policy, consentInForce bool) mdmproto.AccessRights {
	o := privacy.Ownership(e.Ownership)
	if e.State != store.EnrolmentUsed || e.AccessRights == 0 {
		return accessRights(o, policy, wipeConsented(e, consentInForce))
	}
	r := mdmproto.AccessRights(e.AccessRights)
	if o == privacy.Personal && !e.AllowFullWipe {
		r &^= mdmproto.AccessDeviceErase
	}
	return r
}

// enrolmentProfile builds and signs e's enrolment profile around a SCEP
// challenge, granting rights (grantableRights). A device that installs it
// again over its installed one (same PayloadIdentifier, server and topic,
// no right added) keeps its management and gets a new identity.
func (s *Service) enrolmentProfile(ctx context.Context, q store.Queries, e store.Enrolment, challenge, topic string,
	rights mdmproto.AccessRights) ([]byte, error) {
	tenant, err := q.Tenants().Get(ctx, e.TenantID)
	if err != nil {
		return nil, err
	}
	trust, err := s.tenantTrust(ctx, tenant.ID, true)
	if err != nil {
		return nil, err
	}
	o := privacy.Ownership(e.Ownership)
	base := s.cfg.PublicURL + "/mdm/" + tenant.ID
	p := mdmproto.EnrolmentProfile{
		Identifier: mdmproto.EnrolmentIdentifier(e.ID), DisplayName: tenant.Name + " device management", Organization: tenant.Name,
		Description: "Lets " + tenant.Name + " manage this device as described in the notice you accepted.",
		SCEP: mdmproto.SCEPSettings{URL: s.cfg.PublicURL + "/scep/" + tenant.ID, Name: "Steward",
			Challenge: mdmproto.SecretString(challenge), Subject: []mdmproto.SubjectAttribute{{Type: "CN", Value: deviceCommonName(e.ID)}}},
		ServerURL: base + "/connect", CheckInURL: base + "/checkin", Topic: topic,
		AccessRights: rights, EscrowsBootstrapToken: keepsBootstrapToken(o),
	}
	if e.UserEnrollment {
		sub, err := s.priv.Subject(ctx, q, e.TenantID, e.SubjectID)
		if err != nil {
			return nil, err
		}
		prof, err := s.priv.OpenProfile(ctx, q, sub)
		if err != nil {
			return nil, err
		}
		p.AssignedManagedAppleID = prof.AppleAccount()
	}
	raw, err := mdmproto.BuildEnrolmentProfile(p)
	if err != nil {
		return nil, err
	}
	signer, key, chain, err := s.enrolmentSigner(trust, s.clock())
	if err != nil {
		return nil, err
	}
	return mdmproto.SignProfile(raw, signer, key, chain)
}

// EnrolmentProfileIdentifier is the PayloadIdentifier of the management
// profile device d installed: removing it retires the device.
func (s *Service) EnrolmentProfileIdentifier(ctx context.Context, q store.Queries, d store.Device) (string, error) {
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return "", apperr.Conflict("the device has no management profile on record")
	}
	if err != nil {
		return "", err
	}
	return mdmproto.EnrolmentIdentifier(ch.EnrolmentID), nil
}
