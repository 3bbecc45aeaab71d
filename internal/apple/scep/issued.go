package scep

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/steward-mdm/steward/internal/store"
)

// Each current device certificate has one Settings entry naming its
// enrolment. A renewal needs it (so a renewal is bound to the enrolment the
// first certificate was issued for) and deletes it, so one certificate renews
// at most once and the entries stay one per enrolled device.
func issuedSettingKey(tenantID string, serial *big.Int) string {
	return issuedSettingPrefix(tenantID) + serial.Text(16)
}

func issuedSettingPrefix(tenantID string) string { return "scep-cert:" + tenantID + ":" }

func recordIssued(ctx context.Context, settings store.SettingStore, tenantID string, serial *big.Int, enrolmentID string) error {
	if err := settings.Put(ctx, issuedSettingKey(tenantID, serial), []byte(enrolmentID)); err != nil {
		return fmt.Errorf("scep: recording issued certificate for enrolment %s: %w", enrolmentID, err)
	}
	return nil
}

var errNotCurrent = refusal(failBadMessageCheck, "the signing certificate is not current: already renewed, released or never issued here")

// claimRenewal takes the entry of the certificate being renewed; exactly one
// of several racing renewals gets it.
func claimRenewal(ctx context.Context, settings store.SettingStore, tenantID string, serial *big.Int) (string, error) {
	key := issuedSettingKey(tenantID, serial)
	enrolmentID, err := settings.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return "", errNotCurrent
	}
	if err != nil {
		return "", fmt.Errorf("scep: reading issued certificate: %w", err)
	}
	err = settings.Delete(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return "", errNotCurrent
	}
	if err != nil {
		return "", fmt.Errorf("scep: claiming certificate for renewal: %w", err)
	}
	return string(enrolmentID), nil
}

// ReleaseCertificate stops the certificate with this serial from being
// renewed, for example when its enrolment ends. Releasing an unknown or
// already released certificate is not an error.
func ReleaseCertificate(ctx context.Context, settings store.SettingStore, tenantID string, serial *big.Int) error {
	err := settings.Delete(ctx, issuedSettingKey(tenantID, serial))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("scep: releasing certificate: %w", err)
	}
	return nil
}
