package device

import (
	"context"
	"crypto/x509"

	"github.com/steward-mdm/steward/internal/apple/payloads"
	"github.com/steward-mdm/steward/internal/store"
)

// ProfileCertificates is the mdm hook for a personally owned device's
// certificate list: the certificates carried by the profiles Steward has
// installed, or is installing, on d. That is every profile state but
// failed and not applicable: a refused or withheld profile never reached
// the device, and one being removed is there until the device says it is
// gone. Only the current version's content is kept, so a state of another
// version vouches for nothing: the not_applicable_removal states (an
// earlier version is on the device, the current one never went there) and
// an earlier version kept while the current one waits. A profile that does
// not open vouches for nothing, and says so in the log.
func (s *Service) ProfileCertificates(ctx context.Context, q store.Queries, d store.Device) ([]*x509.Certificate, error) {
	states, err := q.DeviceProfiles().ForDevice(ctx, d.TenantID, d.ID)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, st := range states {
		if !st.OnDevice() || st.Status == store.ProfileNotApplicableRemovalPending || st.Status == store.ProfileNotApplicableRemovalFailed {
			continue
		}
		cp, err := q.Profiles().Get(ctx, d.TenantID, st.ProfileID)
		if err != nil {
			return nil, err
		}
		if st.Digest != cp.Digest {
			continue
		}
		certs, err := s.carriedCertificates(cp)
		if err != nil {
			s.log.Warn("a profile's certificates could not be read; personal devices keep none of them in their certificate list",
				"tenant", d.TenantID, "profile", cp.ID, "error", err.Error())
			continue
		}
		out = append(out, certs...)
	}
	return out, nil
}

// carriedCertificates returns the certificates profile cp installs.
func (s *Service) carriedCertificates(cp store.ConfigProfile) ([]*x509.Certificate, error) {
	if cp.Kind == store.ProfileCustom {
		upload, err := s.sealer.Open(cp.Sealed, profileAD(cp.TenantID, cp.ID))
		if err != nil {
			return nil, err
		}
		return payloads.CarriedCertificates(upload)
	}
	def, err := s.openDefinition(cp)
	if err != nil {
		return nil, err
	}
	return def.CarriedCertificates(), nil
}
