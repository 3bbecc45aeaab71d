package scep

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
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

func purgeRedeemed(ctx context.Context, st store.Store, now time.Time) (int, error) {
	return store.PurgeSettings(ctx, st, redeemedKeyPrefix, func(s store.Setting) bool {
		var rec redeemedRecord
		return json.Unmarshal(s.Value, &rec) != nil || !now.Before(rec.Expires)
	})
}
