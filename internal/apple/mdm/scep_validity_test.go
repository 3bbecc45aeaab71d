package mdm

import (
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/scep"
)

// TestIdentityRenewalFitsTheValidity: device identities are short-lived,
// each is renewed well into its life, and a device that stays away gets
// several renewals (one per renewalChallengeTTL) before it expires.
func TestIdentityRenewalFitsTheValidity(t *testing.T) {
	validity := scep.DefaultValidity
	if validity > 90*24*time.Hour {
		t.Errorf("device certificates are valid for %v; want at most 90 days", validity)
	}
	if identityRenewalWindow > validity/2 {
		t.Errorf("renewal starts %v before expiry, more than half of the %v validity", identityRenewalWindow, validity)
	}
	if identityRenewalWindow < 3*renewalChallengeTTL {
		t.Errorf("a renewal window of %v leaves fewer than three %v renewal challenges before expiry", identityRenewalWindow, renewalChallengeTTL)
	}
}
