package server

import (
	"context"
	"time"

	"github.com/steward-mdm/steward/internal/fleet"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/notify/mail"
	"github.com/steward-mdm/steward/internal/store"
)

// initManagement wires device management onto the protocol.
func (a *App) initManagement() {
	f := fleet.Wire(a.Store, a.Privacy, a.MDM, a.Sealer, a.Log)
	a.Devices, a.Actions, a.Compliance = f.Devices, f.Actions, f.Compliance
	a.Compliance.SetRecipientCheck(func(ctx context.Context, tenantID, adminID string) (bool, error) {
		perms, err := a.IAM.Permissions(ctx, &iam.Principal{Type: store.ActorAdmin, AdminID: adminID}, tenantID)
		return perms.Has("report.read"), err
	})
	if a.Config.SMTPHost == "" {
		return
	}
	if m, err := mail.New(a.mailConfig()); err != nil {
		a.Log.Error("scheduled reports disabled: the SMTP settings are invalid", "error", err.Error())
	} else {
		a.Compliance.SetMailer(m, a.MDM.PublicURL)
	}
}

// runManagementJobs runs the ladder of every compliance policy, the
// periodic re-evaluation (time-based rules), the stale-device sweep, the
// refresh of dynamic groups on device record facts, the questions that
// keep devices' security and OS facts fresh, the removal sent again to
// leaving devices that refused it, the retry of failed profile installs
// and removals, and the compliance history purge.
// Leases keep each to one node at a time.
func (a *App) runManagementJobs(ctx context.Context, holder string) {
	ladder := time.NewTicker(time.Minute)
	defer ladder.Stop()
	hourly := time.NewTicker(time.Hour)
	defer hourly.Stop()
	a.hourlyManagement(ctx, holder)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ladder.C:
			a.runLadder(ctx, holder)
			a.stripHiddenErrorText(ctx, holder)
		case <-hourly.C:
			a.hourlyManagement(ctx, holder)
		}
	}
}

func (a *App) runLadder(ctx context.Context, holder string) {
	if !a.lease(ctx, "compliance-ladder", holder, 2*time.Minute) {
		return
	}
	if _, err := a.Compliance.RunDueSteps(ctx, 500); err != nil && ctx.Err() == nil {
		a.Log.Warn("compliance ladder failed", "error", err.Error())
	}
	if _, err := a.Compliance.RunDueSchedules(ctx); err != nil && ctx.Err() == nil {
		a.Log.Warn("scheduled reports failed", "error", err.Error())
	}
}

func (a *App) hourlyManagement(ctx context.Context, holder string) {
	if !a.lease(ctx, "device-management-hourly", holder, 50*time.Minute) {
		return
	}
	if err := a.Compliance.EvaluateAll(ctx); err != nil && ctx.Err() == nil {
		a.Log.Warn("periodic compliance evaluation failed", "error", err.Error())
	}
	if res, err := a.Actions.SweepStale(ctx); err != nil && ctx.Err() == nil {
		a.Log.Warn("stale-device sweep failed", "error", err.Error())
	} else if res.Flagged+res.Retired > 0 {
		a.Log.Info("stale devices", "flagged", res.Flagged, "retired", res.Retired)
	}
	// After the pass and the sweep, which change what these rules read.
	if n, err := a.Devices.RefreshRecordGroups(ctx, 5000); err != nil && ctx.Err() == nil {
		a.Log.Warn("refreshing dynamic groups on device record facts failed", "error", err.Error())
	} else if n > 0 {
		a.Log.Info("moved devices between dynamic groups on device record facts", "devices", n)
	}
	// A bounded share per tenant and run: a fleet enrolled in one day
	// spreads its questions, and their pushes, over hours.
	if n, err := a.MDM.RefreshSecurityFacts(ctx, 1000); err != nil && ctx.Err() == nil {
		a.Log.Warn("asking devices for their security and OS facts again failed", "error", err.Error())
	} else if n > 0 {
		a.Log.Info("asked devices for their security and OS facts again", "devices", n)
	}
	if n, err := a.Actions.RetellLeaving(ctx); err != nil && ctx.Err() == nil {
		a.Log.Warn("sending leaving devices their removal again failed", "error", err.Error())
	} else if n > 0 {
		a.Log.Info("sent leaving devices their removal again", "devices", n)
	}
	if n, err := a.Devices.RetryProfiles(ctx); err != nil && ctx.Err() == nil {
		a.Log.Warn("retrying failed profile installs and removals failed", "error", err.Error())
	} else if n > 0 {
		a.Log.Info("retried failed profile installs and removals", "devices", n)
	}
	if n, err := a.MDM.RenewIdentities(ctx, 2000); err != nil && ctx.Err() == nil {
		a.Log.Warn("queuing device identity renewals failed", "error", err.Error())
	} else if n > 0 {
		a.Log.Info("queued device identity renewals", "devices", n)
	}
	if n, err := a.MDM.CloseUnfinishedEnrolments(ctx, 2000); err != nil && ctx.Err() == nil {
		a.Log.Warn("closing unfinished enrolments failed", "error", err.Error())
	} else if n > 0 {
		a.Log.Info("closed enrolments that never finished", "devices", n)
	}
	if n, err := a.MDM.ReplaceSilentRecords(ctx, 2000); err != nil && ctx.Err() == nil {
		a.Log.Warn("replacing the records of devices enrolled again failed", "error", err.Error())
	} else if n > 0 {
		a.Log.Info("replaced the records of devices enrolled again", "devices", n)
	}
	if n, err := a.MDM.CloseDepartedChannels(ctx, 2000); err != nil && ctx.Err() == nil {
		a.Log.Warn("closing the MDM channels of departed devices failed", "error", err.Error())
	} else if n > 0 {
		a.Log.Info("closed the MDM channels of departed devices", "devices", n)
	}
	err := a.Store.Tx(ctx, func(q store.Queries) error {
		if _, err := q.Reports().PurgePublished(ctx, time.Now(), 1000); err != nil {
			return err
		}
		_, err := q.Compliance().PurgeHistory(ctx, time.Now(), 5000)
		return err
	})
	if err != nil && ctx.Err() == nil {
		a.Log.Warn("purging compliance history failed", "error", err.Error())
	}
}

// stripHiddenErrorText runs the queued strip passes of error descriptions
// the policy now hides, up to a minute's bounded share; a pass left
// unfinished goes on at the next tick, on whichever node holds the lease.
func (a *App) stripHiddenErrorText(ctx context.Context, holder string) {
	if !a.lease(ctx, "mdm-error-text", holder, 2*time.Minute) {
		return
	}
	if n, err := a.MDM.StripHiddenErrorText(ctx, 1000, 50); err != nil && ctx.Err() == nil {
		a.Log.Warn("stripping hidden error descriptions failed", "error", err.Error())
	} else if n > 0 {
		a.Log.Info("stripped error descriptions the policy now hides", "commands", n)
	}
}

func (a *App) lease(ctx context.Context, name, holder string, ttl time.Duration) bool {
	ok, err := a.Store.Read().Leases().TryAcquire(ctx, name, holder, time.Now(), ttl)
	if err != nil && ctx.Err() == nil {
		a.Log.Warn("lease check failed", "lease", name, "error", err.Error())
	}
	return ok
}
