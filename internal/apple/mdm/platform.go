package mdm

import (
	"context"
	"strings"

	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// platformOf maps what a device names of itself (ProductName; a Mac also
// sends Model) to Steward's platform: ios, ipados or macos, the systems
// Steward manages. It is "" for any other, such as an Apple TV ("AppleTV…"),
// a watch ("Watch…") or a Vision Pro ("RealityDevice…"), which follow their
// own columns of Apple's schema and are refused at enrolment, and "" when
// the device names neither: see platformUnnamed.
func platformOf(productName, model string) string {
	p := strings.ToLower(productName + " " + model)
	switch {
	case strings.Contains(p, "ipad"):
		return "ipados"
	case strings.Contains(p, "iphone"), strings.Contains(p, "ipod"):
		return "ios"
	case strings.Contains(p, "mac"):
		return "macos"
	}
	return ""
}

// platformUnnamed reports an Authenticate that names neither product nor
// model. authenticate.yaml: a Mac always sends Model, but an iPhone or
// iPad sends ProductName only under the device information right, and
// visionOS, which Steward does not manage, takes User Enrollment too. Such
// a device enrols with its platform unknown until a DeviceInformation
// answer names it (learnPlatform); nothing that depends on the platform is
// guessed meanwhile.
func platformUnnamed(productName, model string) bool {
	return strings.TrimSpace(productName) == "" && strings.TrimSpace(model) == ""
}

// The departure of a device that named itself as none Steward manages.
const (
	unsupportedReason = "not an iPhone, iPad or Mac: Steward does not manage it"
	unsupportedNote   = "The device named itself as a kind Steward does not manage; what it had reported was erased, and it was told to remove its management profile."
)

// unmanagedProduct reports a ProductName of a device family Apple's schema
// covers but Steward does not manage: an Apple TV, a watch, a Vision Pro or
// a HomePod. Only such a name sends an enrolled device away; one Steward
// cannot place at all (a part number where a product was asked) waits.
func unmanagedProduct(product string) bool {
	product = strings.TrimSpace(product)
	for _, family := range []string{"AppleTV", "Watch", "RealityDevice", "AudioAccessory"} {
		if strings.HasPrefix(product, family) {
			return true
		}
	}
	return false
}

// learnPlatform sets the platform of a device that enrolled without naming
// itself (platformUnnamed) from what its DeviceInformation answer names,
// and tells the PlatformLearned hook. Only a device read without a platform
// is passed here; one that has a platform keeps it (Authenticate set it).
// It reports whether the answer named a device Steward does not manage,
// which then left: erased, and told to remove its management profile.
func (s *Service) learnPlatform(ctx context.Context, q store.Queries, tenantID, deviceID string, obs []privacy.Observation) (departed bool, err error) {
	var product, model string
	for _, o := range obs {
		switch o.Field {
		case "hardware.product":
			product, _ = o.Value.(string)
		case "hardware.model":
			model, _ = o.Value.(string)
		}
	}
	if platformUnnamed(product, model) {
		return false, nil
	}
	// Locked, and read again: the whole row is written back, and on
	// PostgreSQL a departure (an erasure, a withdrawn consent) may have
	// changed it since this exchange read it.
	d, err := q.Devices().Lock(ctx, tenantID, deviceID)
	if err != nil || d.Platform != "" || d.Gone() {
		return false, err
	}
	platform := platformOf(product, "") // the product names the device; a model name can be generic
	if platform == "" {
		platform = platformOf("", model)
	}
	switch {
	case unmanagedProduct(product):
		// Not one Steward manages (a Vision Pro), which Authenticate
		// would have refused: what it reported is erased and dropped, and
		// it is told to remove its management profile, as on a withdrawn
		// consent.
		s.log.WarnContext(ctx, "a device that enrolled without naming itself is not an iPhone, iPad or Mac; it is told to leave",
			"tenant", tenantID, "device", deviceID, "product", truncateText(product, 64))
		_, err := s.priv.TellToLeaveIn(ctx, q, tenantID, deviceID, unsupportedReason, iam.SystemActor, unsupportedNote)
		return err == nil, err
	case platform == "":
		// Nothing depending on the platform treats it as an iPhone meanwhile.
		s.log.WarnContext(ctx, "a device that enrolled without naming itself named no product Steward knows; its profiles stay pending",
			"tenant", tenantID, "device", deviceID)
		return false, nil
	}
	d.Platform, d.UpdatedAt = platform, s.clock()
	if err := q.Devices().Update(ctx, d); err != nil {
		return false, err
	}
	if s.hooks.PlatformLearned == nil {
		return false, nil
	}
	return false, s.hooks.PlatformLearned(ctx, q, d)
}
