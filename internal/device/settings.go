package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// Settings are a tenant's device management settings.
type Settings struct {
	// StaleAfterDays flags a device that has not checked in for this long.
	StaleAfterDays int `json:"stale_after_days"`
	// RetireStaleAfterDays retires (selective wipe) a device flagged stale
	// this many days ago; 0 never retires automatically.
	RetireStaleAfterDays int `json:"retire_stale_after_days"`
	// BulkApprovalThreshold: an action on more devices than this needs a
	// second admin's approval, whatever the action.
	BulkApprovalThreshold int `json:"bulk_approval_threshold"`
	// ApprovalHours is how long a request waits for its second admin.
	ApprovalHours int `json:"approval_hours"`
	// ComplianceHistoryDays is how long a device's compliance history is
	// kept (changes already recorded keep the period they were given).
	ComplianceHistoryDays int `json:"compliance_history_days"`
}

// DefaultSettings are the settings of a tenant that changed none.
func DefaultSettings() Settings {
	return Settings{StaleAfterDays: 30, RetireStaleAfterDays: 0, BulkApprovalThreshold: 25, ApprovalHours: 72, ComplianceHistoryDays: 365}
}

// Validate checks the settings make sense together.
func (s Settings) Validate() error {
	// The bounds keep one admin's setting from doing what would otherwise
	// need a second admin: retiring devices that were only offline for a
	// weekend, or turning the bulk rule off.
	switch {
	case s.StaleAfterDays < 7 || s.StaleAfterDays > 3650:
		return apperr.Invalid("stale_after_days must be between 7 and 3650")
	case s.RetireStaleAfterDays != 0 && (s.RetireStaleAfterDays < 7 || s.RetireStaleAfterDays > 3650):
		return apperr.Invalid("retire_stale_after_days must be 0 (never) or between 7 and 3650")
	case s.BulkApprovalThreshold < 1 || s.BulkApprovalThreshold > 1000:
		return apperr.Invalid("bulk_approval_threshold must be between 1 and 1000")
	case s.ApprovalHours < 1 || s.ApprovalHours > 24*14:
		return apperr.Invalid("approval_hours must be between 1 and 336 (14 days)")
	case s.ComplianceHistoryDays < 30 || s.ComplianceHistoryDays > 3650:
		return apperr.Invalid("compliance_history_days must be between 30 and 3650")
	}
	return nil
}

func settingsKey(tenantID string) string { return "device-management:" + tenantID }

// LoadSettings returns the tenant's settings, or the defaults.
func LoadSettings(ctx context.Context, q store.Queries, tenantID string) (Settings, error) {
	raw, err := q.Settings().Get(ctx, settingsKey(tenantID))
	if errors.Is(err, store.ErrNotFound) {
		return DefaultSettings(), nil
	}
	if err != nil {
		return Settings{}, err
	}
	s := DefaultSettings()
	if err := json.Unmarshal(raw, &s); err != nil {
		return Settings{}, fmt.Errorf("device: tenant %s has unreadable settings: %w", tenantID, err)
	}
	return s, nil
}

// SaveSettings validates and stores the tenant's settings.
func SaveSettings(ctx context.Context, q store.Queries, tenantID string, s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return q.Settings().Put(ctx, settingsKey(tenantID), raw)
}

// PutSettings validates, stores and audits the tenant's settings.
func (s *Service) PutSettings(ctx context.Context, tenantID string, in Settings, actor iam.Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		if err := SaveSettings(ctx, q, tenantID, in); err != nil {
			return err
		}
		e := actor.Entry(tenantID, "device.settings.update", "tenant", tenantID, audit.OutcomeSuccess)
		e.Details = map[string]any{"stale_after_days": in.StaleAfterDays, "retire_stale_after_days": in.RetireStaleAfterDays,
			"bulk_approval_threshold": in.BulkApprovalThreshold, "approval_hours": in.ApprovalHours, "compliance_history_days": in.ComplianceHistoryDays}
		return audit.Append(ctx, q, e)
	})
}
