package mdm

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
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
// certificate (PEM or PKCS#12), sealed under the master key, and checks its
// dates on the service's clock. Only a certificate for a channel's topic can
// wake that device, so a certificate for another topic than the stored one
// is refused while open device channels carry the stored one, unless
// replaceTopic says the admin means it: those devices would lose their
// pushes and have to enrol again. Only the devices the upload would cut off
// count: after a deliberate replacement, the devices left on the old topic
// can no longer be woken anyway, so they hold up neither the new topic's
// renewal nor, while no device enrolled under the new topic, the old
// certificate going back. With no certificate stored, every channel on
// another topic counts.
func (s *Service) SetPushCertificate(ctx context.Context, tenantID string, data []byte, password string, replaceTopic bool, actor iam.Actor) (apns.CertStatus, error) {
	now := s.clock()
	cert, err := apns.ParsePushCertificate(data, password, now)
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
		previous, err := s.loadPushCertificate(ctx, q.Settings(), tenantID)
		if err != nil && !errors.Is(err, ErrNoPushCertificate) {
			return err
		}
		// Counted in the transaction that writes: what is judged is what
		// the channels are as the certificate is stored, not what another
		// upload found earlier. (A profile handed out before the upload can
		// still bring a device on the old topic later; no check here can
		// stop that.)
		topics, err := q.AppleChannels().OpenTopics(ctx, tenantID)
		if err != nil {
			return err
		}
		stranded, others := 0, []string{}
		for topic, n := range topics {
			if topic != cert.Topic && (previous == nil || topic == previous.Topic) {
				stranded += n
				others = append(others, topic)
			}
		}
		slices.Sort(others)
		if stranded > 0 && !replaceTopic {
			return apperr.Conflict("this certificate is for topic %s, but the %d enrolled Apple devices on %s would stop "+
				"receiving pushes and would have to enrol again. Upload the certificate for their topic, renewed with Apple "+
				"using the same Apple Account, or set replace_topic to replace it anyway", cert.Topic, stranded, strings.Join(others, ", "))
		}
		if err := q.Settings().Put(ctx, pushCertKey(tenantID), sealed); err != nil {
			return err
		}
		// The upload is the administrator's answer to a refusal: the new
		// certificate (or the same one, to try again) gets a fresh start.
		if err := deletePushRefusal(ctx, q, tenantID); err != nil {
			return err
		}
		e := actor.Entry(tenantID, "mdm.push_certificate.set", "tenant", tenantID, audit.OutcomeSuccess)
		e.Details = map[string]any{"topic": cert.Topic, "not_after": cert.NotAfter.Format(time.RFC3339), "serial": cert.Serial}
		if previous != nil && previous.Topic != cert.Topic {
			e.Details["replaced_topic"] = previous.Topic
		}
		if stranded > 0 {
			e.Details["stranded_devices"] = stranded
		}
		return audit.Append(ctx, q, e)
	})
	if err != nil {
		return apns.CertStatus{}, err
	}
	s.dropPushClients(tenantID)
	return cert.Status(now), nil
}

// ErrNoPushCertificate means the tenant has not uploaded one yet.
var ErrNoPushCertificate = apperr.Conflict("upload the organisation's Apple push certificate first")

// PushCertificate returns the tenant's push certificate, expired or not.
func (s *Service) PushCertificate(ctx context.Context, tenantID string) (*apns.PushCertificate, error) {
	return s.loadPushCertificate(ctx, s.st.Read().Settings(), tenantID)
}

// PushCertificateStatus is the tenant's push certificate as the API shows
// it, its expiry judged on the service's clock, with APNs' standing refusal
// of it if there is one.
func (s *Service) PushCertificateStatus(ctx context.Context, tenantID string) (apns.CertStatus, error) {
	c, err := s.PushCertificate(ctx, tenantID)
	if err != nil {
		return apns.CertStatus{}, err
	}
	st := c.Status(s.clock())
	r, err := pushRefusal(ctx, s.st.Read().Settings(), tenantID, c.Serial)
	if err != nil {
		return apns.CertStatus{}, err
	}
	if r != nil {
		st.Refused = r.refusal()
	}
	return st, nil
}

func (s *Service) loadPushCertificate(ctx context.Context, settings store.SettingStore, tenantID string) (*apns.PushCertificate, error) {
	sealed, err := settings.Get(ctx, pushCertKey(tenantID))
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
