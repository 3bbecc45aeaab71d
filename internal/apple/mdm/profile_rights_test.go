package mdm

import (
	"slices"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
)

// TestAccessRightsFollowThePolicy: a personal device's profile grants the
// network information right only while the policy collects a network or
// telephony field, which needs it; the device information right and the
// full wipe follow their own rules.
func TestAccessRightsFollowThePolicy(t *testing.T) {
	p := privacy.DefaultPolicy()
	personal := accessRights(privacy.Personal, p, false)
	if personal&mdmproto.AccessNetworkInformation == 0 || personal&mdmproto.AccessDeviceInformation == 0 {
		t.Errorf("personal under the default policy (network hidden) = %d, want the device and network information rights", personal)
	}
	if personal&mdmproto.AccessDeviceErase != 0 {
		t.Errorf("personal without a full wipe allowed = %d, grants erase", personal)
	}
	p[privacy.Personal].Modes[privacy.Network] = privacy.Drop
	p[privacy.Personal].Modes[privacy.Telephony] = privacy.Drop
	if r := accessRights(privacy.Personal, p, false); r&mdmproto.AccessNetworkInformation != 0 {
		t.Errorf("personal with network and telephony dropped = %d, still grants network information", r)
	}
	// Nothing Steward never sends a personal device: no provisioning
	// profiles, restriction queries or settings.
	unused := mdmproto.AccessProvisioningProfileInspection | mdmproto.AccessProvisioningProfileInstallRemove |
		mdmproto.AccessRestrictionQueries | mdmproto.AccessSettings
	if r := accessRights(privacy.Personal, privacy.DefaultPolicy(), true); r&unused != 0 {
		t.Errorf("personal = %d, grants rights no command Steward sends needs (%d)", r, r&unused)
	}
	if r := accessRights(privacy.Corporate, p, false); r != mdmproto.AccessAll {
		t.Errorf("corporate = %d, want every right", r)
	}
	if r := accessRights(privacy.UserEnrolled, p, false); r != 0 {
		t.Errorf("user enrolled = %d, want none (devices ignore them)", r)
	}
}

// TestUserEnrollmentIsNotAskedForHiddenIdentifiers: even a policy that
// would keep them never sends a User Enrollment queries Apple does not
// answer there.
func TestUserEnrollmentIsNotAskedForHiddenIdentifiers(t *testing.T) {
	p := privacy.DefaultPolicy()
	for _, c := range privacy.Categories {
		p[privacy.UserEnrolled].Modes[c.Category] = privacy.Show
	}
	q := DeviceInformationQueries(p, privacy.UserEnrolled)
	for _, hidden := range []string{"UDID", "SerialNumber", "IMEI", "MEID", "WiFiMAC", "BluetoothMAC", "PhoneNumber", "ICCID",
		"CurrentCarrierNetwork", "IsActivationLockEnabled"} {
		if slices.Contains(q, hidden) {
			t.Errorf("a User Enrollment is asked for %s", hidden)
		}
	}
	for _, asked := range []string{"OSVersion", "DeviceName", "ProductName"} {
		if !slices.Contains(q, asked) {
			t.Errorf("a User Enrollment under a policy showing everything is not asked for %s: %v", asked, q)
		}
	}
	if corp := DeviceInformationQueries(p, privacy.Corporate); !slices.Contains(corp, "SerialNumber") || !slices.Contains(corp, "WiFiMAC") {
		t.Errorf("corporate queries lost the identifiers: %v", corp)
	}
}

// TestEveryCatalogueQueryHasItsRule: a DeviceInformation key added to the
// data catalogue needs its access right and User Enrollment rule written
// down from Apple's schema, not assumed.
func TestEveryCatalogueQueryHasItsRule(t *testing.T) {
	for _, f := range privacy.Catalogue {
		for _, src := range f.Sources {
			if src.Protocol == "apple-mdm" && src.Payload == "DeviceInformation" && !mdmproto.KnownQuery(src.Key) {
				t.Errorf("%s (%s) has no rule in mdmproto's query table", src.Key, f.Key)
			}
		}
	}
}
