package mdm

import (
	"context"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/store"
)

// What a ManagedApplicationList status says about an installed copy of the
// app, after Apple's meanings of them. Statuses in neither set (an install
// queued, prompting or failed, or unknown) say nothing about the copy.
var (
	// The copy is the organisation's: managed, being installed or updated
	// as a managed app, or reinstalled after the employee removed it (Apple
	// reinstates such a copy as managed).
	organisationCopy = map[string]bool{"Managed": true, "ManagedButUninstalled": true, "Installing": true,
		"Updating": true, "ValidatingUpdate": true, "PromptingForUpdate": true, "PromptingForUpdateLogin": true, "UpdateRejected": true}
	// The copy is the employee's own: installed before the organisation's
	// install could happen, and its management refused or not yet accepted.
	employeeCopy = map[string]bool{"UserInstalledApp": true, "ManagementRejected": true, "PromptingForManagement": true}
)

// notManaged is what a personally owned device's apps.managed keeps of a
// status that says the copy is the employee's own (employeeCopy) or that
// they declined the organisation's install (UserRejected): in each, the
// organisation's install did not make the app managed. Declining leaves
// no copy, so the status no longer tells whether the employee has one;
// and in each, a copy the device lists is the employee's (organisationApps).
const notManaged = "NotManaged"

// personalStatus is the status a personally owned device's apps.managed
// keeps for status.
func personalStatus(status string) string {
	if employeeCopy[status] || status == "UserRejected" {
		return notManaged
	}
	return status
}

// organisationApps keeps, of the apps a personally owned device reported,
// those the organisation manages on it. Steward asks such a device for
// managed apps only, but Apple's answer marks no app as managed: a device
// that ignores the request (an older or faulty OS, or a tampered one) would
// hand over the employee's whole app list. So Steward decides itself. An
// app is the organisation's when
//   - the device's latest managed-app list (apps.managed) says its copy is
//     managed, or
//   - Steward installs it: the catalogue approves it with an App Store ID
//     or manifest URL, and that list does not say the copy is the
//     employee's own (nor notManaged, which a list stored since says
//     instead). Steward rarely asks for the managed-app list, so this
//     keeps the apps it deployed known between two such lists.
//
// The others are dropped before the gate; only their number is logged, as
// their names are the employee's personal data.
func (s *Service) organisationApps(ctx context.Context, q store.Queries, tenantID, deviceID string, reported []mdmproto.InstalledApplication) ([]mdmproto.InstalledApplication, error) {
	states, err := s.priv.ManagedApps(ctx, q, tenantID, deviceID)
	if err != nil {
		return nil, err
	}
	ours, theirs := map[string]bool{}, map[string]bool{}
	for _, a := range states {
		ours[a.ID], theirs[a.ID] = organisationCopy[a.Status], employeeCopy[a.Status] || a.Status == notManaged
	}
	deployable, err := deployableApps(ctx, q, tenantID)
	if err != nil {
		return nil, err
	}
	kept := make([]mdmproto.InstalledApplication, 0, len(reported))
	for _, a := range reported {
		if ours[a.Identifier] || (deployable[a.Identifier] && !theirs[a.Identifier]) {
			kept = append(kept, a)
		}
	}
	if dropped := len(reported) - len(kept); dropped > 0 {
		s.log.Warn("a personally owned device reported apps the organisation does not manage; they were dropped",
			"device", deviceID, "dropped", dropped)
	}
	return kept, nil
}

// deployableApps returns the bundle IDs of the tenant's catalogue apps that
// Steward can install: approved, with an App Store ID or a manifest URL.
func deployableApps(ctx context.Context, q store.Queries, tenantID string) (map[string]bool, error) {
	out := map[string]bool{}
	err := eachCatalogueApp(ctx, q, tenantID, func(a store.CatalogueApp) bool {
		if a.Kind == store.AppApproved && (a.StoreID != 0 || a.ManifestURL != "") {
			out[a.Identifier] = true
		}
		return true
	})
	return out, err
}

// eachCatalogueApp calls fn with the tenant's catalogue apps, a page at a
// time, until fn returns false.
func eachCatalogueApp(ctx context.Context, q store.Queries, tenantID string, fn func(store.CatalogueApp) bool) error {
	const page = 1000
	for after := ""; ; {
		apps, err := q.Apps().List(ctx, tenantID, store.Page{After: after, Limit: page})
		if err != nil {
			return err
		}
		for _, a := range apps {
			if !fn(a) {
				return nil
			}
		}
		if len(apps) < page {
			return nil
		}
		after = apps[len(apps)-1].ID
	}
}
