package privacy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// ErrFlowOff is returned when something tries to send data through an
// outbound flow the tenant's admins have not consented to.
var ErrFlowOff = errors.New("privacy: this outbound data flow is switched off for the tenant")

// SetFlow records an admin's consent (or its withdrawal) for an outbound flow.
func (s *Service) SetFlow(ctx context.Context, tenantID, flow string, enabled bool, reason string, actor iam.Actor) (Settings, error) {
	if !KnownFlow(flow) {
		return Settings{}, apperr.Invalid("unknown outbound flow %q", flow)
	}
	reason, err := ValidateReason(reason)
	if err != nil {
		return Settings{}, err
	}
	var out Settings
	err = s.st.Tx(ctx, func(q store.Queries) error {
		settings, version, err := LoadSettings(ctx, q, tenantID)
		if err != nil {
			return err
		}
		if settings.Flows == nil {
			settings.Flows = map[string]FlowConsent{}
		}
		settings.Flows[flow] = FlowConsent{Enabled: enabled, By: actor.Ref(), At: s.clock()}
		if err := SaveSettings(ctx, q, tenantID, settings, version, s.clock()); err != nil {
			return conflictRetry(err)
		}
		out = settings
		e := actor.Entry(tenantID, "privacy.flow.set", "flow", flow, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"enabled": enabled}
		return audit.Append(ctx, q, e)
	})
	return out, err
}

// Outbound is the only way Steward sends tenant data to a third party. Every
// request first checks the tenant's consent for the flow, at send time, so a
// flow switched off stops at once, queued work included.
type Outbound struct {
	Service *Service
	Client  *http.Client
}

// Post sends body to url as flow for tenantID; ErrFlowOff when the admins
// have not consented.
func (o *Outbound) Post(ctx context.Context, tenantID, flow, url, contentType string, body []byte) error {
	if !KnownFlow(flow) {
		return fmt.Errorf("privacy: unknown outbound flow %q", flow)
	}
	settings, _, err := LoadSettings(ctx, o.Service.st.Read(), tenantID)
	if err != nil {
		return err
	}
	if !settings.FlowEnabled(flow) {
		return ErrFlowOff
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	c := o.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("privacy: outbound %s: %w", flow, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("privacy: outbound %s: the receiver answered %s", flow, resp.Status)
	}
	return nil
}
