package device

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
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

// DeleteApp removes an app and its assignments (installed copies stay).
func (s *Service) DeleteApp(ctx context.Context, tenantID, appID string, actor iam.Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		if _, err := q.Apps().Get(ctx, tenantID, appID); err != nil {
			return notFound(err, "app")
		}
		if err := q.Apps().Delete(ctx, tenantID, appID); err != nil {
			return err
		}
		return audit.Append(ctx, q, actor.Entry(tenantID, "device.app.delete", "app", appID, audit.OutcomeSuccess))
	})
}

// AssignApp targets an approved app at a group as required (installed on
// every member) or available (offered); unassign with mode "".
func (s *Service) AssignApp(ctx context.Context, tenantID, appID, groupID, mode string, actor iam.Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Apps().Get(ctx, tenantID, appID)
		if err != nil {
			return notFound(err, "app")
		}
		if _, err := s.group(ctx, q, tenantID, groupID); err != nil {
			return err
		}
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
			return nil
		}
		members, err := q.Groups().AllMembers(ctx, tenantID, groupID)
		if err != nil {
			return err
		}
		return s.reconcileDevices(ctx, q, tenantID, members)
	})
}

// installRequiredApps queues InstallApplication for each required app of
// the device's groups that its last app list does not show. It runs when
// membership or assignments change, not on every check-in, so an app the
// employee removed is offered again only on the next change.
func (s *Service) installRequiredApps(ctx context.Context, q store.Queries, d store.Device, groups []string) error {
	if len(groups) == 0 {
		return nil
	}
	assigned, err := q.Apps().ForGroups(ctx, d.TenantID, groups)
	if err != nil {
		return err
	}
	var required []string
	for _, a := range assigned {
		if a.Mode == store.AppRequired && !slices.Contains(required, a.AppID) {
			required = append(required, a.AppID)
		}
	}
	if len(required) == 0 {
		return nil
	}
	installed, _, err := s.priv.AppIdentifiers(ctx, q, d.TenantID, d.ID, nil)
	if err != nil {
		return err
	}
	var reqs []mdmproto.Request
	for _, id := range required {
		a, err := q.Apps().Get(ctx, d.TenantID, id)
		if err != nil {
			return err
		}
		if slices.Contains(installed, a.Identifier) {
			continue
		}
		// Managed apps leave with the management profile: retiring a device
		// takes the organisation's apps and their data with it.
		install := mdmproto.InstallApplication{ITunesStoreID: a.StoreID, ManagementFlags: mdmproto.ManagementFlagRemoveWithMDM}
		if a.StoreID == 0 {
			install = mdmproto.InstallApplication{ManifestURL: a.ManifestURL, ManagementFlags: mdmproto.ManagementFlagRemoveWithMDM}
		}
		reqs = append(reqs, install)
	}
	if len(reqs) == 0 {
		return nil
	}
	_, err = s.mdm.EnqueueIn(ctx, q, d, reqs, "required apps of the device's groups", profileActor)
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Kind != apperr.KindInternal {
		s.log.Warn("required apps not queued", "device", d.ID, "error", ae.Message)
		return nil // a full queue: the next change tries again
	}
	return err
}

func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound(what)
	}
	return err
}
