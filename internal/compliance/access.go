package compliance

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/store"
)

// AccessDecision answers "may this device reach corporate data?".
type AccessDecision struct {
	Allowed bool   `json:"allowed"`
	State   string `json:"state,omitempty"`
	// Reasons tell the employee what to fix; never personal data.
	Reasons  []string `json:"reasons,omitempty"`
	DeviceID string   `json:"-"`
}

// accessToken is what the settings store keeps of a device token: never
// the token itself, only the device it names, under the token's hash.
type accessToken struct {
	TenantID  string    `json:"tenant_id"`
	DeviceID  string    `json:"device_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

func tokenKey(hash []byte) string { return "device-access-token:" + hex.EncodeToString(hash) }

// IssueAccessToken mints a bearer token that identifies an enrolled device
// to conditional access, for apps and proxies that cannot use the device's
// certificate. It is shown once and stored only as a hash.
func (e *Engine) IssueAccessToken(ctx context.Context, tenantID, deviceID string, ttl time.Duration, actor iam.Actor) (string, time.Time, error) {
	if ttl <= 0 || ttl > 365*24*time.Hour {
		return "", time.Time{}, apperr.Invalid("a device token lives between 1 second and 365 days")
	}
	secret, hash, err := credential.New(credential.DeviceAccessToken)
	if err != nil {
		return "", time.Time{}, err
	}
	expires := e.clock().Add(ttl)
	err = e.st.Tx(ctx, func(q store.Queries) error {
		d, err := q.Devices().Get(ctx, tenantID, deviceID)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.NotFound("device")
		}
		if err != nil {
			return err
		}
		if d.State != store.DeviceEnrolled {
			return apperr.Conflict("the device is %s, not enrolled", d.State)
		}
		doc, err := json.Marshal(accessToken{TenantID: tenantID, DeviceID: deviceID, ExpiresAt: expires})
		if err != nil {
			return err
		}
		if err := q.Settings().Put(ctx, tokenKey(hash), doc); err != nil {
			return err
		}
		return audit.Append(ctx, q, actor.Entry(tenantID, "device.access_token.issue", "device", deviceID, audit.OutcomeSuccess))
	})
	return secret, expires, err
}

// CheckAccess identifies the device by its identity certificate (the one
// it enrolled with) or by a device token, and allows it when every policy
// that covers it is satisfied (or still in its grace period). A device no
// policy has evaluated is refused: unknown is not compliant.
func (e *Engine) CheckAccess(ctx context.Context, tenantID string, cert *x509.Certificate, token string) (AccessDecision, error) {
	q := e.st.Read()
	var deviceID string
	switch {
	case cert != nil:
		fp := sha256.Sum256(cert.Raw)
		ch, err := q.AppleChannels().GetByCert(ctx, fp[:])
		if errors.Is(err, store.ErrNotFound) || (err == nil && ch.TenantID != tenantID) {
			return AccessDecision{Reasons: []string{"This device is not managed by your organisation."}}, nil
		}
		if err != nil {
			return AccessDecision{}, err
		}
		if e.clock().After(cert.NotAfter) {
			return AccessDecision{Reasons: []string{"The device's certificate expired; keep it online so it can renew."}}, nil
		}
		deviceID = ch.DeviceID
	case token != "":
		kind, hash, err := credential.Parse(token)
		if err != nil || kind != credential.DeviceAccessToken {
			return AccessDecision{Reasons: []string{"The device token is unknown or expired."}}, nil
		}
		raw, err := q.Settings().Get(ctx, tokenKey(hash))
		var t accessToken
		if err == nil {
			err = json.Unmarshal(raw, &t)
		}
		if errors.Is(err, store.ErrNotFound) || (err == nil && (t.TenantID != tenantID || !e.clock().Before(t.ExpiresAt))) {
			return AccessDecision{Reasons: []string{"The device token is unknown or expired."}}, nil
		}
		if err != nil {
			return AccessDecision{}, err
		}
		deviceID = t.DeviceID
	default:
		return AccessDecision{Reasons: []string{"No device identity was presented (client certificate or device token)."}}, nil
	}
	d, err := q.Devices().Get(ctx, tenantID, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return AccessDecision{Reasons: []string{"This device is not managed by your organisation."}}, nil
	}
	if err != nil {
		return AccessDecision{}, err
	}
	out := AccessDecision{DeviceID: d.ID, State: d.Compliance}
	if d.State != store.DeviceEnrolled {
		out.Reasons = []string{"This device is no longer managed by your organisation."}
		return out, nil
	}
	switch d.Compliance {
	case store.ComplianceCompliant, InGrace:
		out.Allowed = true
	case store.ComplianceUnknown:
		// The standings say what is not known yet, or never will be on
		// this kind of device (a rule its system does not report on).
	}
	standings, err := q.Compliance().Standings(ctx, tenantID, d.ID)
	if err != nil {
		return AccessDecision{}, err
	}
	for _, s := range standings {
		if s.State == store.ComplianceCompliant {
			continue
		}
		var vs []Violation
		_ = json.Unmarshal(s.Violations, &vs)
		for _, v := range vs {
			out.Reasons = append(out.Reasons, v.Reason)
		}
	}
	if d.Compliance == store.ComplianceUnknown && len(out.Reasons) == 0 {
		out.Reasons = []string{"The device has not been checked against your organisation's requirements yet; keep it online for a few minutes."}
	}
	return out, nil
}
