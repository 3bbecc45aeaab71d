package device

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// AppInput adds an app to the tenant's catalogue or changes it.
type AppInput struct {
	Identifier string `json:"identifier"` // bundle ID
	Name       string `json:"name"`
	Kind       string `json:"kind"` // approved or blocked
	// StoreID (App Store) or ManifestURL (in-house, https) make an approved
	// app installable; without either it is only allowed.
	StoreID     int64  `json:"store_id,omitempty"`
	ManifestURL string `json:"manifest_url,omitempty"`
}

var bundleIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.\-]{0,254}$`)

func (in AppInput) validate() error {
	switch {
	case !bundleIDPattern.MatchString(in.Identifier):
		return apperr.Invalid("identifier must be a bundle ID such as com.example.app")
	case strings.TrimSpace(in.Name) == "" || utf8.RuneCountInString(in.Name) > 200:
		return apperr.Invalid("an app needs a name of 1 to 200 characters")
	case in.Kind != store.AppApproved && in.Kind != store.AppBlocked:
		return apperr.Invalid("kind must be approved or blocked")
	case in.Kind == store.AppBlocked && (in.StoreID != 0 || in.ManifestURL != ""):
		return apperr.Invalid("a blocked app has nothing to install: leave store_id and manifest_url out")
	case in.StoreID < 0 || (in.StoreID != 0 && in.ManifestURL != ""):
		return apperr.Invalid("give a positive store_id or a manifest_url, not both")
	}
	if in.ManifestURL != "" {
		u, err := url.Parse(in.ManifestURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return apperr.Invalid("manifest_url must be an https URL")
		}
	}
	return nil
}

// CreateApp adds an app to the catalogue. Blocking an app makes every
// compliance policy forbid it, so the tenant is re-evaluated by the caller.
func (s *Service) CreateApp(ctx context.Context, tenantID string, in AppInput, actor iam.Actor) (store.CatalogueApp, error) {
	if err := in.validate(); err != nil {
		return store.CatalogueApp{}, err
	}
	now := s.clock()
	a := store.CatalogueApp{ID: store.NewID(), TenantID: tenantID, Identifier: in.Identifier, Name: strings.TrimSpace(in.Name), Kind: in.Kind,
		StoreID: in.StoreID, ManifestURL: in.ManifestURL, CreatedAt: now, UpdatedAt: now}
	err := s.st.Tx(ctx, func(q store.Queries) error {
		if err := q.Apps().Create(ctx, a); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("the catalogue lists %s already", a.Identifier)
			}
			return err
		}
		e := actor.Entry(tenantID, "device.app.create", "app", a.ID, audit.OutcomeSuccess)
		e.Details = map[string]any{"identifier": a.Identifier, "kind": a.Kind}
		return audit.Append(ctx, q, e)
	})
	return a, err
}

// DeleteApp removes an app and its assignments (installed copies stay;
// installs queued for it and not yet delivered are cancelled).
func (s *Service) DeleteApp(ctx context.Context, tenantID, appID string, actor iam.Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		if _, err := q.Apps().Get(ctx, tenantID, appID); err != nil {
			return notFound(err, "app")
		}
		assignments, err := q.Apps().Assignments(ctx, tenantID, appID)
		if err != nil {
			return err
		}
		var requiredBy []string
		for _, as := range assignments {
			if as.Mode == store.AppRequired {
				requiredBy = append(requiredBy, as.GroupID)
			}
		}
		if err := q.Apps().Delete(ctx, tenantID, appID); err != nil {
			return err
		}
		if err := audit.Append(ctx, q, actor.Entry(tenantID, "device.app.delete", "app", appID, audit.OutcomeSuccess)); err != nil {
			return err
		}
		return s.reconcileAppsOfGroups(ctx, q, tenantID, requiredBy)
	})
}

// reconcileAppsOfGroups brings the required apps of the groups' members
// to what their groups now require (installRequiredApps), after an app
// stopped being required by those groups: its undelivered installs go.
func (s *Service) reconcileAppsOfGroups(ctx context.Context, q store.Queries, tenantID string, groupIDs []string) error {
	var members []string
	for _, g := range groupIDs {
		ids, err := q.Groups().AllMembers(ctx, tenantID, g)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if !slices.Contains(members, id) {
				members = append(members, id)
			}
		}
	}
	for _, id := range members {
		d, err := q.Devices().Get(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if d.State != store.DeviceEnrolled || d.Platform == "" {
			continue // as reconcileProfiles: apps follow once it enrols and names its platform
		}
		groups, err := q.Groups().GroupsOf(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if err := s.installRequiredApps(ctx, q, d, groups); err != nil {
			return err
		}
	}
	return nil
}

// AssignApp targets an approved app at a group as required (installed on
// every member) or available (recorded only: nothing offers it to the
// devices); unassign with mode "". An app no longer required has its
// undelivered installs cancelled on members no other group requires it of.
func (s *Service) AssignApp(ctx context.Context, tenantID, appID, groupID, mode string, actor iam.Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Apps().Get(ctx, tenantID, appID)
		if err != nil {
			return notFound(err, "app")
		}
		if _, err := s.group(ctx, q, tenantID, groupID); err != nil {
			return err
		}
		before, err := q.Apps().Assignments(ctx, tenantID, appID)
		if err != nil {
			return err
		}
		wasRequired := slices.ContainsFunc(before, func(as store.AppAssignment) bool { return as.GroupID == groupID && as.Mode == store.AppRequired })
		action := "device.app.assign"
		switch mode {
		case "":
			action = "device.app.unassign"
			if err := q.Apps().Unassign(ctx, tenantID, appID, groupID); err != nil {
				return notFound(err, "assignment")
			}
		case store.AppRequired, store.AppAvailable:
			if a.Kind != store.AppApproved {
				return apperr.Conflict("%s is blocked; approve it before assigning it", a.Identifier)
			}
			if mode == store.AppRequired && a.StoreID == 0 && a.ManifestURL == "" {
				return apperr.Invalid("a required app needs a store_id or manifest_url to install from")
			}
			if err := q.Apps().Assign(ctx, store.AppAssignment{TenantID: tenantID, AppID: appID, GroupID: groupID, Mode: mode}); err != nil {
				return err
			}
		default:
			return apperr.Invalid("mode must be required or available")
		}
		e := actor.Entry(tenantID, action, "app", appID, audit.OutcomeSuccess)
		e.Details = map[string]any{"group": groupID, "mode": mode}
		if err := audit.Append(ctx, q, e); err != nil {
			return err
		}
		if mode != store.AppRequired {
			if !wasRequired {
				return nil
			}
			return s.reconcileAppsOfGroups(ctx, q, tenantID, []string{groupID})
		}
		members, err := q.Groups().AllMembers(ctx, tenantID, groupID)
		if err != nil {
			return err
		}
		return s.reconcileDevices(ctx, q, tenantID, members)
	})
}

// requiredAppReason is the reason of the InstallApplication Steward
// queues for required app a: it names the app, so that an install the
// device acknowledged is known to be a's once its payload is dropped.
func requiredAppReason(a store.CatalogueApp) string {
	return "required app " + a.Identifier + " of the device's groups"
}

// installsApp says whether an InstallApplication installing target
// installs catalogue app a.
func installsApp(target mdmproto.InstallApplication, a store.CatalogueApp) bool {
	return (a.StoreID != 0 && target.ITunesStoreID == a.StoreID) || (a.ManifestURL != "" && target.ManifestURL == a.ManifestURL) ||
		(target.Identifier != "" && target.Identifier == a.Identifier)
}

// installRequiredApps brings device d's InstallApplication commands to the
// required apps of its groups. An app is queued when its last app list
// does not show it and no install of it is under way: one still open on
// the device's queue (Steward's, or one an admin sent), or one the device
// acknowledged since that list. Acknowledged is not installed (the
// employee may decline the app, or its install fail): once a later app
// list (a sync, or an admin's request) still lacks it, the next change of
// the device's groups or of the assignments queues it again, as for an
// app the employee removed; nothing is queued again on mere check-ins.
// Each app is prepared on its own: one the device cannot take (a package
// for a personally owned Mac) does not hold back the others. Installs
// Steward queued for an app no group requires any more are cancelled
// while the device has not been handed them.
func (s *Service) installRequiredApps(ctx context.Context, q store.Queries, d store.Device, groups []string) error {
	required, err := s.requiredApps(ctx, q, d.TenantID, groups)
	if err != nil {
		return err
	}
	open, err := q.Commands().OpenOnChannel(ctx, d.TenantID, d.ID, "")
	if err != nil || (len(required) == 0 && open == 0) {
		return err
	}
	current, err := q.Inventory().CurrentOf(ctx, d.TenantID, d.ID, []string{"apps.installed"})
	if err != nil {
		return err
	}
	installed, _, err := s.priv.AppIdentifiers(ctx, q, d.TenantID, d.ID, current)
	if err != nil {
		return err
	}
	var listedAt time.Time // zero: no list, and every acknowledged install is still to be seen in one
	for _, v := range current {
		listedAt = v.CollectedAt
	}
	missing := slices.DeleteFunc(slices.Clone(required), func(a store.CatalogueApp) bool { return slices.Contains(installed, a.Identifier) })
	if len(missing) == 0 && open == 0 {
		return nil // nothing to queue, nothing to cancel: the device's history is not read
	}
	cmds, err := s.mdm.RecentCommands(ctx, q, d, listedAt)
	if err != nil {
		return err
	}
	underway := map[string]bool{} // catalogue app IDs
	for _, c := range cmds {
		if c.RequestType != string(mdmproto.RequestInstallApplication) {
			continue
		}
		if !store.CommandOpen(c.State) {
			for _, a := range missing {
				if c.State == store.CommandAcknowledged && c.Reason == requiredAppReason(a) {
					underway[a.ID] = true
				}
			}
			continue
		}
		target, err := s.mdm.InstalledAppOf(c)
		if err != nil {
			s.log.Warn("an open InstallApplication could not be read", "device", d.ID, "command", c.ID, "error", err.Error())
			continue
		}
		wanted := false
		for _, a := range required {
			if installsApp(target, a) {
				underway[a.ID], wanted = true, true
			}
		}
		if !wanted && c.RequestedBy == profileActor.Ref() {
			if _, err := s.mdm.CancelUndeliveredIn(ctx, q, d, c.ID, "no group of the device requires the app any more", profileActor); err != nil {
				return err
			}
		}
	}
	for _, a := range missing {
		if underway[a.ID] {
			continue
		}
		if err := s.installApp(ctx, q, d, a); err != nil {
			return err
		}
	}
	return nil
}

// requiredApps returns the catalogue apps that groups require, each once.
func (s *Service) requiredApps(ctx context.Context, q store.Queries, tenantID string, groups []string) ([]store.CatalogueApp, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	assigned, err := q.Apps().ForGroups(ctx, tenantID, groups)
	if err != nil {
		return nil, err
	}
	var out []store.CatalogueApp
	for _, as := range assigned {
		if as.Mode != store.AppRequired || slices.ContainsFunc(out, func(a store.CatalogueApp) bool { return a.ID == as.AppID }) {
			continue
		}
		a, err := q.Apps().Get(ctx, tenantID, as.AppID)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// installApp queues the InstallApplication of required app a for d. A
// rule's refusal (the device cannot take it, or its queue is full) is
// logged and leaves the app for the next change; the log names the app's
// catalogue entry and the rule, nothing of the device's person.
func (s *Service) installApp(ctx context.Context, q store.Queries, d store.Device, a store.CatalogueApp) error {
	// Managed apps leave with the management profile: retiring a device
	// takes the organisation's apps and their data with it.
	install := mdmproto.InstallApplication{ITunesStoreID: a.StoreID, ManagementFlags: mdmproto.ManagementFlagRemoveWithMDM}
	if a.StoreID == 0 {
		install = mdmproto.InstallApplication{ManifestURL: a.ManifestURL, ManagementFlags: mdmproto.ManagementFlagRemoveWithMDM}
	}
	_, err := s.mdm.EnqueueIn(ctx, q, d, []mdmproto.Request{install}, requiredAppReason(a), profileActor)
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Kind != apperr.KindInternal {
		reason, _ := ae.Details["reason"].(string)
		s.log.Warn("a required app was not queued", "device", d.ID, "app", a.ID, "reason", reason)
		return nil
	}
	return err
}

func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound(what)
	}
	return err
}
