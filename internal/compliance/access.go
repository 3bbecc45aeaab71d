package compliance

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
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
// that covers it is satisfied (or still in its grace period); a device no
// policy covers is allowed while the tenant has a policy. Unknown is not
// compliant: a rule the device has not reported on refuses it, even when
// another rule failing in grace makes its overall state in_grace.
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
	standings, err := q.Compliance().Standings(ctx, tenantID, d.ID)
	if err != nil {
		return AccessDecision{}, err
	}
	refusing, others, unknown := accessReasons(standings)
	out.Allowed = (d.Compliance == store.ComplianceCompliant || d.Compliance == InGrace) && !unknown
	// The refusing reasons first: a proxy's header carries only the first.
	out.Reasons = append(refusing, others...)
	if d.Compliance == store.ComplianceUnknown && len(out.Reasons) == 0 {
		some, err := hasEnabledPolicy(ctx, q, tenantID)
		if err != nil {
			return AccessDecision{}, err
		}
		if some {
			out.Reasons = []string{"The device has not been checked against your organisation's requirements yet; keep it online for a few minutes."}
		} else {
			out.Reasons = []string{"Your organisation has set no compliance requirements yet, so the device cannot be checked against them."}
		}
	}
	return out, nil
}

// accessReasons sorts the reasons of a device's standings: refusing are
// those of a noncompliant standing and of any rule not reported on
// (unknown says so, whatever the other standings); others are failures
// still in grace and warnings, said but not refusing.
func accessReasons(standings []store.DeviceCompliance) (refusing, others []string, unknown bool) {
	for _, s := range standings {
		if s.State == store.ComplianceCompliant {
			continue
		}
		unknown = unknown || s.State == store.ComplianceUnknown
		var vs []Violation
		_ = json.Unmarshal(s.Violations, &vs)
		for _, v := range vs {
			switch {
			case v.Warning:
				others = append(others, v.Reason)
			case v.Unknown:
				unknown = true
				refusing = append(refusing, v.Reason)
			case s.State == store.ComplianceNoncompliant:
				refusing = append(refusing, v.Reason)
			default:
				others = append(others, v.Reason)
			}
		}
	}
	return refusing, others, unknown
}

// hasEnabledPolicy reports whether the tenant has a policy in force.
func hasEnabledPolicy(ctx context.Context, q store.Queries, tenantID string) (bool, error) {
	page := store.Page{Limit: 1000}
	for {
		ps, err := q.Compliance().ListPolicies(ctx, tenantID, page)
		if err != nil {
			return false, err
		}
		if slices.ContainsFunc(ps, func(p store.CompliancePolicy) bool { return p.Enabled }) {
			return true, nil
		}
		if len(ps) < page.Limit {
			return false, nil
		}
		page.After = ps[len(ps)-1].ID
	}
}
