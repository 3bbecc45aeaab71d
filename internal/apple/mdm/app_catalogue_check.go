package mdm

import (
	"context"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// errUncataloguedApp refuses an install on a personally owned device of an
// app the catalogue does not approve. The device's answer to any install
// tells whether the employee has their own copy of the app (Apple's
// AppAlreadyInstalled, a status of UserInstalledApp), so a free choice of
// app would let an admin probe an employee's phone for a dating or health
// app one command at a time. The catalogue is audited and seen by every
// admin and the privacy officer.
var errUncataloguedApp = apperr.Forbidden("on a personally owned device Steward installs only apps the catalogue approves, "+
	"named as the catalogue names them: approve the app first (the catalogue is audited)").With("reason", SkipOwnership)

// installCheck decides, once per request, whether an InstallApplication
// may go to personally owned devices: it must install an app the tenant's
// catalogue approves. Any other request passes.
type installCheck struct{ uncatalogued bool }

func newInstallCheck(ctx context.Context, q store.Queries, tenantID string, req mdmproto.Request) (installCheck, error) {
	install, ok := req.(mdmproto.InstallApplication)
	if !ok {
		return installCheck{}, nil
	}
	approved, err := catalogueApproves(ctx, q, tenantID, install)
	return installCheck{uncatalogued: !approved}, err
}

// refuses returns the refusal for device d, or nil.
func (c installCheck) refuses(d store.Device) error {
	if c.uncatalogued && privacy.Ownership(d.Ownership).PersonallyOwned() {
		return errUncataloguedApp
	}
	return nil
}

// catalogueApproves says whether r installs an approved catalogue app: the
// source r names (App Store ID, manifest or bundle ID) is that app's.
func catalogueApproves(ctx context.Context, q store.Queries, tenantID string, r mdmproto.InstallApplication) (bool, error) {
	if r.ITunesStoreID == 0 && r.ManifestURL == "" && r.Identifier == "" {
		return false, nil
	}
	approved := false
	err := eachCatalogueApp(ctx, q, tenantID, func(a store.CatalogueApp) bool {
		approved = a.Kind == store.AppApproved && (r.ITunesStoreID == 0 || r.ITunesStoreID == a.StoreID) &&
			(r.ManifestURL == "" || r.ManifestURL == a.ManifestURL) && (r.Identifier == "" || r.Identifier == a.Identifier)
		return !approved
	})
	return approved, err
}
