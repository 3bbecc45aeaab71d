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
// certificate (PEM or PKCS#12), sealed under the master key. A certificate
// for another topic than the current one is refused while devices are
// enrolled, unless replaceTopic says the admin means it: every enrolled
// device would lose its pushes and have to enrol again.
func (s *Service) SetPushCertificate(ctx context.Context, tenantID string, data []byte, password string, replaceTopic bool, actor iam.Actor) (apns.CertStatus, error) {
	cert, err := apns.ParsePushCertificate(data, password)
	if err != nil {
		return apns.CertStatus{}, apperr.Invalid("%v", err)
	}
	current, err := s.PushCertificate(ctx, tenantID)
	if err != nil && !errors.Is(err, ErrNoPushCertificate) {
		return apns.CertStatus{}, err
	}
	previousTopic := ""
	if current != nil && current.Topic != cert.Topic {
		previousTopic = current.Topic
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
		if previousTopic != "" && !replaceTopic {
			enrolled, err := q.AppleChannels().CountOpen(ctx, tenantID)
			if err != nil {
				return err
			}
			if enrolled > 0 {
				return apperr.Conflict("this certificate is for topic %s, not %s: the %d enrolled Apple devices would stop "+
					"receiving pushes and would have to enrol again. Renew the current certificate with Apple, using the "+
					"same Apple Account, or set replace_topic to replace it anyway", cert.Topic, previousTopic, enrolled)
			}
		}
		if err := q.Settings().Put(ctx, pushCertKey(tenantID), sealed); err != nil {
			return err
		}
		e := actor.Entry(tenantID, "mdm.push_certificate.set", "tenant", tenantID, audit.OutcomeSuccess)
		e.Details = map[string]any{"topic": cert.Topic, "not_after": cert.NotAfter.Format(time.RFC3339), "serial": cert.Serial}
		if previousTopic != "" {
			e.Details["replaced_topic"] = previousTopic
		}
		return audit.Append(ctx, q, e)
	})
	return cert.Status(s.clock()), err
}

// ErrNoPushCertificate means the tenant has not uploaded one yet.
var ErrNoPushCertificate = apperr.Conflict("upload the organisation's Apple push certificate first")

// PushCertificate returns the tenant's push certificate, expired or not.
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
	return apns.LoadPushCertificate(sc.Data, sc.Password)
}

// ErrPushCertificateExpired refuses new enrolments while the tenant's push
// certificate is expired: the device could never be woken.
var ErrPushCertificateExpired = apperr.Conflict("this organisation's Apple push certificate has expired; ask your IT team to renew it")

// Topic is the APNs topic enrolment profiles carry.
func (s *Service) Topic(ctx context.Context, tenantID string) (string, error) {
	c, err := s.PushCertificate(ctx, tenantID)
	if err != nil {
		return "", err
	}
	if c.Expired(s.clock()) {
		return "", ErrPushCertificateExpired
	}
	return c.Topic, nil
}
