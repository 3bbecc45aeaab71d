package scep

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// Each current device certificate has one Settings entry naming its
// enrolment. A renewal needs it (so a renewal is bound to the enrolment the
// first certificate was issued for) and deletes it, so one certificate renews
// at most once. An entry whose certificate was never used (an installation
// that failed, a profile downloaded twice) goes once the certificate
// expired: it can renew nothing then (PurgeExpiredChallenges).
func issuedSettingKey(tenantID string, serial *big.Int) string {
	return issuedSettingPrefix(tenantID) + serial.Text(16)
}

const issuedKeyPrefix = "scep-cert:"

func issuedSettingPrefix(tenantID string) string { return issuedKeyPrefix + tenantID + ":" }

// issuedRecord is an issued certificate's entry. Entries written before it
// held the expiry are the enrolment ID alone, and stay until their tenant
// is deleted.
type issuedRecord struct {
	EnrolmentID string    `json:"enrolment"`
	NotAfter    time.Time `json:"not_after"`
}

func recordIssued(ctx context.Context, settings store.SettingStore, tenantID string, cert *x509.Certificate, enrolmentID string) error {
	value, err := json.Marshal(issuedRecord{EnrolmentID: enrolmentID, NotAfter: cert.NotAfter.UTC()})
	if err == nil {
		err = settings.Put(ctx, issuedSettingKey(tenantID, cert.SerialNumber), value)
	}
	if err != nil {
		return fmt.Errorf("scep: recording issued certificate for enrolment %s: %w", enrolmentID, err)
	}
	return nil
}

// readIssued decodes an issued certificate's entry, either form.
func readIssued(value []byte) issuedRecord {
	var rec issuedRecord
	if json.Unmarshal(value, &rec) != nil || rec.EnrolmentID == "" {
		return issuedRecord{EnrolmentID: string(value)}
	}
	return rec
}

var errNotCurrent = refusal(failBadMessageCheck, "renewal_signer_not_current", "the signing certificate is not current: already renewed, released or never issued here")

// claimRenewal takes the entry of the certificate being renewed; exactly one
// of several racing renewals gets it.
func claimRenewal(ctx context.Context, settings store.SettingStore, tenantID string, serial *big.Int) (string, error) {
	key := issuedSettingKey(tenantID, serial)
	value, err := settings.Get(ctx, key)
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
	return readIssued(value).EnrolmentID, nil
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
