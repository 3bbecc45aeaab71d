package scep

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// challengeRecord is what a challenge grants. Only the SHA-256 of the
// challenge is stored, so a database dump holds no usable challenge.
type challengeRecord struct {
	TenantID    string    `json:"tenant"`
	EnrolmentID string    `json:"enrolment"`
	Expires     time.Time `json:"expires"`
	// Renewal: the certificate replaces the identity of a device already
	// enrolled (OnIssued is told so), rather than starting an enrolment.
	Renewal bool `json:"renewal,omitempty"`
	// Grant is what the profile carrying the challenge granted, handed to
	// OnIssued (Issuance.Grant); 0 for challenges stored before it was.
	Grant int `json:"grant,omitempty"`
}

const challengeKeyPrefix = "scep-challenge:"

func challengeSettingKey(challenge string) string {
	sum := sha256.Sum256([]byte(challenge))
	return challengeKeyPrefix + hex.EncodeToString(sum[:])
}

// IssueChallenge returns a fresh single-use SCEP challenge for one
// enrolment of tenantID, valid for ttl from now. It goes into the enrolment
// profile, and grant, what that profile grants, goes to OnIssued with the
// certificate the challenge obtains. now must come from the clock the
// server checks challenges against (Config.Now).
func IssueChallenge(ctx context.Context, settings store.SettingStore, tenantID, enrolmentID string, grant int, now time.Time, ttl time.Duration) (string, error) {
	return issueChallenge(ctx, settings, challengeRecord{TenantID: tenantID, EnrolmentID: enrolmentID, Grant: grant, Expires: now.Add(ttl)})
}

// IssueRenewalChallenge is IssueChallenge for a device of the enrolment
// that is already managed and gets a new identity through a re-issued
// enrolment profile: the certificate it obtains is reported to OnIssued as
// a renewal.
func IssueRenewalChallenge(ctx context.Context, settings store.SettingStore, tenantID, enrolmentID string, grant int, now time.Time, ttl time.Duration) (string, error) {
	return issueChallenge(ctx, settings, challengeRecord{TenantID: tenantID, EnrolmentID: enrolmentID, Grant: grant, Expires: now.Add(ttl), Renewal: true})
}

func issueChallenge(ctx context.Context, settings store.SettingStore, rec challengeRecord) (string, error) {
	tenantID, enrolmentID := rec.TenantID, rec.EnrolmentID
	if tenantID == "" || enrolmentID == "" {
		return "", errors.New("scep: a challenge needs a tenant and an enrolment")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("scep: generating challenge: %w", err)
	}
	challenge := base64.RawURLEncoding.EncodeToString(b)
	rec.Expires = rec.Expires.UTC()
	value, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("scep: encoding challenge: %w", err)
	}
	stored, err := settings.PutIfAbsent(ctx, challengeSettingKey(challenge), value)
	if err != nil {
		return "", fmt.Errorf("scep: storing challenge for enrolment %s: %w", enrolmentID, err)
	}
	if !stored { // 256 random bits colliding means the random source is broken
		return "", errors.New("scep: challenge collided with an existing one")
	}
	return challenge, nil
}

// errChallenge is the one answer for every unusable challenge, so a client
// learns nothing about which challenges exist.
var errChallenge = refusal(failBadRequest, "challenge_unusable", "challenge password is missing, unknown, already used, expired or for another tenant")

// readChallenge returns what a challenge grants tenantID, if it is one
// of the tenant's and has not expired.
func readChallenge(ctx context.Context, settings store.SettingStore, tenantID, challenge string, now time.Time) (challengeRecord, error) {
	if challenge == "" {
		return challengeRecord{}, errChallenge
	}
	raw, err := settings.Get(ctx, challengeSettingKey(challenge))
	if errors.Is(err, store.ErrNotFound) {
		return challengeRecord{}, errChallenge
	}
	if err != nil {
		return challengeRecord{}, fmt.Errorf("scep: reading challenge: %w", err)
	}
	var rec challengeRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return challengeRecord{}, fmt.Errorf("scep: decoding stored challenge: %w", err)
	}
	// Another tenant's challenge is left alone: this tenant has no say over
	// it. An expired one stays until the purge.
	if rec.TenantID != tenantID || !now.Before(rec.Expires) {
		return challengeRecord{}, errChallenge
	}
	return rec, nil
}

// consumeChallenge redeems a challenge for tenantID and returns what it
// grants. Redeeming is deleting: when two requests race with the same
// challenge, the store lets exactly one Delete succeed.
func consumeChallenge(ctx context.Context, settings store.SettingStore, tenantID, challenge string, now time.Time) (challengeRecord, error) {
	rec, err := readChallenge(ctx, settings, tenantID, challenge, now)
	if err != nil {
		return rec, err
	}
	err = settings.Delete(ctx, challengeSettingKey(challenge))
	if errors.Is(err, store.ErrNotFound) {
		return challengeRecord{}, errChallenge // a concurrent request redeemed it first
	}
	if err != nil {
		return challengeRecord{}, fmt.Errorf("scep: redeeming challenge: %w", err)
	}
	return rec, nil
}

// PurgeExpiredChallenges deletes the challenges that expired before now,
// and any that cannot be read (they could never be redeemed either): a
// profile downloaded but never installed leaves its challenge behind. The
// certificates kept for resends of redeemed challenges and of renewals go
// after an hour, and the entries of issued certificates once they expired.
// It says how many records it deleted.
func PurgeExpiredChallenges(ctx context.Context, st store.Store, now time.Time) (int, error) {
	n, err := store.PurgeSettings(ctx, st, challengeKeyPrefix, func(s store.Setting) bool {
		var rec challengeRecord
		return json.Unmarshal(s.Value, &rec) != nil || !now.Before(rec.Expires)
	})
	if err != nil {
		return n, fmt.Errorf("scep: %w", err)
	}
	redeemed, err := purgeResends(ctx, st, now)
	n += redeemed
	if err != nil {
		return n, fmt.Errorf("scep: %w", err)
	}
	expired, err := store.PurgeSettings(ctx, st, issuedKeyPrefix, func(s store.Setting) bool {
		rec := readIssued(s.Value)
		return !rec.NotAfter.IsZero() && !now.Before(rec.NotAfter)
	})
	n += expired
	if err != nil {
		return n, fmt.Errorf("scep: %w", err)
	}
	return n, nil
}
