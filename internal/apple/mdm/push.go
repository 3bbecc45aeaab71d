package mdm

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// pushCertKey is the Settings key of a tenant's sealed push certificate.
func pushCertKey(tenantID string) string { return "apns-cert:" + tenantID }

type storedPushCert struct {
	Data     []byte `json:"data"`
	Password string `json:"password"`
}

// SetPushCertificate validates and stores the tenant's APNs push
// certificate (PEM or PKCS#12), sealed under the master key.
func (s *Service) SetPushCertificate(ctx context.Context, tenantID string, data []byte, password string, actor iam.Actor) (apns.CertStatus, error) {
	cert, err := apns.ParsePushCertificate(data, password)
	if err != nil {
		return apns.CertStatus{}, apperr.Invalid("%v", err)
	}
	raw, err := json.Marshal(storedPushCert{Data: data, Password: password})
	if err != nil {
		return apns.CertStatus{}, err
	}
	sealed, err := s.sealer.Seal(raw, []byte(pushCertKey(tenantID)))
	if err != nil {
		return apns.CertStatus{}, err
	}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		if _, err := q.Tenants().Get(ctx, tenantID); err != nil {
			return err
		}
		if err := q.Settings().Put(ctx, pushCertKey(tenantID), sealed); err != nil {
			return err
		}
		e := actor.Entry(tenantID, "mdm.push_certificate.set", "tenant", tenantID, audit.OutcomeSuccess)
		e.Details = map[string]any{"topic": cert.Topic, "not_after": cert.NotAfter.Format(time.RFC3339), "serial": cert.Serial}
		return audit.Append(ctx, q, e)
	})
	return cert.Status(s.clock()), err
}

// ErrNoPushCertificate means the tenant has not uploaded one yet.
var ErrNoPushCertificate = apperr.Conflict("upload the organisation's Apple push certificate first")

// PushCertificate returns the tenant's push certificate.
func (s *Service) PushCertificate(ctx context.Context, tenantID string) (*apns.PushCertificate, error) {
	sealed, err := s.st.Read().Settings().Get(ctx, pushCertKey(tenantID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoPushCertificate
	}
	if err != nil {
		return nil, err
	}
	raw, err := s.sealer.Open(sealed, []byte(pushCertKey(tenantID)))
	if err != nil {
		return nil, err
	}
	var sc storedPushCert
	if err := json.Unmarshal(raw, &sc); err != nil {
		return nil, err
	}
	return apns.ParsePushCertificate(sc.Data, sc.Password)
}

// Topic is the APNs topic enrolment profiles carry.
func (s *Service) Topic(ctx context.Context, tenantID string) (string, error) {
	c, err := s.PushCertificate(ctx, tenantID)
	if err != nil {
		return "", err
	}
	return c.Topic, nil
}
