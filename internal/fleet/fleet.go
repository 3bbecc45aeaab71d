// Package fleet assembles device management (devices and groups, remote
// actions, compliance) and hooks it onto the privacy gate and the MDM
// protocol, so the server and tests wire it the same way.
package fleet

import (
	"context"
	"log/slog"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// Services are the device management services.
type Services struct {
	Devices    *device.Service
	Actions    *actions.Service
	Compliance *compliance.Engine
}

// Wire builds the services and installs their hooks: inventory changes
// move groups and compliance, enrolments join groups, command results
// settle profiles and actions, a Mac leaving keeps the PIN it may still
// ask for, and profiles vouch for the certificates personal devices report.
func Wire(st store.Store, priv *privacy.Service, m *mdm.Service, sealer secrets.Sealer, log *slog.Logger) Services {
	s := Services{
		Devices: device.New(st, priv, m, sealer, log),
		Actions: actions.New(st, m, priv, sealer, log),
	}
	priv.OnTellToLeave(s.Actions.TellToLeave)
	priv.OnDeparting(s.Actions.KeepPINPastDeparture)
	priv.OnDeviceExport(s.Actions.ExportDevice)
	s.Compliance = compliance.NewEngine(st, priv, s.Actions, sealer, log)
	s.Devices.MembershipChanged = s.Compliance.EvaluateDevices
	s.Compliance.SummaryChanged = s.Devices.ComplianceChanged
	priv.Gate().Changed = func(ctx context.Context, q store.Queries, d store.Device, current []store.InventoryValue, changed []string) error {
		d, err := s.Devices.InventoryChanged(ctx, q, d, current, changed)
		if err != nil {
			return err
		}
		return s.Compliance.EvaluateDevice(ctx, q, d, current)
	}
	m.SetHooks(mdm.Hooks{
		Enrolled: func(ctx context.Context, q store.Queries, d store.Device, e store.Enrolment) error {
			if err := s.Devices.Enrolled(ctx, q, d, e); err != nil {
				return err
			}
			return s.Compliance.EvaluateDevice(ctx, q, d, nil)
		},
		CommandFinished: func(ctx context.Context, q store.Queries, cmd store.Command) error {
			if err := s.Devices.CommandFinished(ctx, q, cmd); err != nil {
				return err
			}
			if err := s.Actions.CommandFinished(ctx, q, cmd); err != nil {
				return err
			}
			if cmd.RequestType != string(mdmproto.RequestInstallProfile) && cmd.RequestType != string(mdmproto.RequestRemoveProfile) {
				return nil
			}
			// Required profiles are compliance rules.
			d, err := q.Devices().Get(ctx, cmd.TenantID, cmd.DeviceID)
			if err != nil {
				return err
			}
			return s.Compliance.EvaluateDevice(ctx, q, d, nil)
		},
		ProfileCertificates:   s.Devices.ProfileCertificates,
		StoppedTellingToLeave: s.Actions.StoppedTellingToLeave,
		PlatformLearned:       s.Devices.PlatformLearned,
	})
	return s
}
