package scep

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"time"

	"github.com/smallstep/scep"

	"github.com/steward-mdm/steward/internal/store"
)

// A client that lost the reply to its PKCSReq sends the same request again
// (RFC 8894 section 3.3.1): same transaction, same request, same challenge. The
// challenge is spent by then, so the certificate issued the first time is
// kept for a while under the challenge's hash and sent again.

const redeemedKeyPrefix = "scep-redeemed:"

// resendWindow is how long a redeemed challenge's certificate can be sent
// again.
const resendWindow = time.Hour

type redeemedRecord struct {
	TenantID      string    `json:"tenant"`
	TransactionID string    `json:"transaction"`
	CSRHash       []byte    `json:"csr_sha256"`
	Certificate   []byte    `json:"certificate"`
	Expires       time.Time `json:"expires"`
}

func redeemedSettingKey(challenge string) string {
	sum := sha256.Sum256([]byte(challenge))
	return redeemedKeyPrefix + hex.EncodeToString(sum[:])
}

// rememberIssued keeps cert for resends of msg.
func rememberIssued(ctx context.Context, settings store.SettingStore, tenantID string, msg *scep.PKIMessage, cert *x509.Certificate, now time.Time) error {
	csrHash := sha256.Sum256(msg.CSR.Raw)
	value, err := json.Marshal(redeemedRecord{TenantID: tenantID, TransactionID: string(msg.TransactionID), CSRHash: csrHash[:],
		Certificate: cert.Raw, Expires: now.Add(resendWindow).UTC()})
	if err != nil {
		return err
	}
	return settings.Put(ctx, redeemedSettingKey(msg.ChallengePassword), value)
}

// resentCertificate returns the certificate issued to an earlier sending of
// msg, or nil when msg is not such a resend.
func resentCertificate(ctx context.Context, settings store.SettingStore, tenantID string, msg *scep.PKIMessage, now time.Time) (*x509.Certificate, error) {
	if msg.ChallengePassword == "" {
		return nil, nil
	}
	raw, err := settings.Get(ctx, redeemedSettingKey(msg.ChallengePassword))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec redeemedRecord
	if json.Unmarshal(raw, &rec) != nil {
		return nil, nil
	}
	csrHash := sha256.Sum256(msg.CSR.Raw)
	if rec.TenantID != tenantID || rec.TransactionID != string(msg.TransactionID) || !bytes.Equal(rec.CSRHash, csrHash[:]) || !now.Before(rec.Expires) {
		return nil, nil
	}
	return x509.ParseCertificate(rec.Certificate)
}

// A RenewalReq is resent the same way, signed by the certificate it renews.
// The first sending spent that certificate's claim (issued.go), so the
// certificate issued for it is kept for resendWindow under the renewed
// certificate's serial, and sent again to a request with the same
// transaction, signed by the same certificate, for the same key.

const renewedKeyPrefix = "scep-renewed:"

type renewedRecord struct {
	TransactionID string `json:"transaction"`
	// Renews is the SHA-256 of the certificate that signed the renewal,
	// KeyHash that of the request's SubjectPublicKeyInfo.
	Renews      []byte    `json:"renews_sha256"`
	KeyHash     []byte    `json:"key_sha256"`
	Certificate []byte    `json:"certificate"`
	Expires     time.Time `json:"expires"`
}

func renewedSettingPrefix(tenantID string) string { return renewedKeyPrefix + tenantID + ":" }

func renewedSettingKey(tenantID string, serial *big.Int) string {
	return renewedSettingPrefix(tenantID) + serial.Text(16)
}

// rememberRenewed keeps cert, issued to msg signed by old, for resends of msg.
func rememberRenewed(ctx context.Context, settings store.SettingStore, tenantID string, msg *scep.PKIMessage, old, cert *x509.Certificate, now time.Time) error {
	renews, keyHash := sha256.Sum256(old.Raw), sha256.Sum256(msg.CSR.RawSubjectPublicKeyInfo)
	value, err := json.Marshal(renewedRecord{TransactionID: string(msg.TransactionID), Renews: renews[:], KeyHash: keyHash[:],
		Certificate: cert.Raw, Expires: now.Add(resendWindow).UTC()})
	if err != nil {
		return err
	}
	return settings.Put(ctx, renewedSettingKey(tenantID, old.SerialNumber), value)
}

// renewedCertificate returns the certificate issued to an earlier sending of
// msg, a RenewalReq signed by old, or nil when msg is not such a resend.
func renewedCertificate(ctx context.Context, settings store.SettingStore, tenantID string, msg *scep.PKIMessage, old *x509.Certificate, now time.Time) (*x509.Certificate, error) {
	raw, err := settings.Get(ctx, renewedSettingKey(tenantID, old.SerialNumber))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec renewedRecord
	if json.Unmarshal(raw, &rec) != nil {
		return nil, nil
	}
	renews, keyHash := sha256.Sum256(old.Raw), sha256.Sum256(msg.CSR.RawSubjectPublicKeyInfo)
	if rec.TransactionID != string(msg.TransactionID) || !bytes.Equal(rec.Renews, renews[:]) || !bytes.Equal(rec.KeyHash, keyHash[:]) || !now.Before(rec.Expires) {
		return nil, nil
	}
	return x509.ParseCertificate(rec.Certificate)
}

// purgeResends deletes the certificates kept for resends, of challenges and
// of renewals, once their window has passed, and any that cannot be read.
func purgeResends(ctx context.Context, st store.Store, now time.Time) (int, error) {
	redeemed, err := store.PurgeSettings(ctx, st, redeemedKeyPrefix, func(s store.Setting) bool {
		var rec redeemedRecord
		return json.Unmarshal(s.Value, &rec) != nil || !now.Before(rec.Expires)
	})
	if err != nil {
		return redeemed, err
	}
	renewed, err := store.PurgeSettings(ctx, st, renewedKeyPrefix, func(s store.Setting) bool {
		var rec renewedRecord
		return json.Unmarshal(s.Value, &rec) != nil || !now.Before(rec.Expires)
	})
	return redeemed + renewed, err
}
