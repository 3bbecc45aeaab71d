package privacy

import (
	"context"
	"errors"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/store"
)

// Portal token lifetimes.
const (
	DefaultPortalTTL = 30 * 24 * time.Hour
	MaxPortalTTL     = 90 * 24 * time.Hour
)

var errPortalCredential = apperr.New(apperr.KindUnauthenticated, "this portal link is invalid or has expired; ask your IT team for a new one")

// PortalAccessKind is the notification that carries a portal access key.
const PortalAccessKind = "portal_access"

// KeyPlaceholder is where the outbox puts a key it mints at send time
// (KeyMinter): the key itself is never stored, not even in the outbox.
const KeyPlaceholder = "{{access_key}}"

// IssuePortalToken gives a person access to the employee portal, where they
// read what Steward holds about them (devices, consents, access record, an
// export). With notify, the key is minted when the mail goes out and only
// ever exists in that mail; otherwise it is returned once to the admin (the
// caller checks they may see everything the portal shows). Only the key's
// hash is stored.
func (s *Service) IssuePortalToken(ctx context.Context, tenantID, subjectID string, ttl time.Duration, notify bool, actor iam.Actor) (string, store.PortalToken, error) {
	if ttl == 0 {
		ttl = DefaultPortalTTL
	}
	if ttl < time.Hour || ttl > MaxPortalTTL {
		return "", store.PortalToken{}, apperr.Invalid("a portal token lives between 1 hour and 90 days")
	}
	var display string
	var t store.PortalToken
	err := s.st.Tx(ctx, func(q store.Queries) error {
		sub, err := s.Subject(ctx, q, tenantID, subjectID)
		if err != nil {
			return err
		}
		if sub.State != store.SubjectActive {
			return apperr.Conflict("that person was erased")
		}
		if notify {
			t = store.PortalToken{TenantID: tenantID, SubjectID: subjectID, ExpiresAt: s.clock().Add(DefaultPortalTTL)}
			if err := s.QueueKeyMail(ctx, q, store.Notification{TenantID: tenantID, SubjectID: subjectID, Kind: PortalAccessKind, Title: "Your device privacy portal", Body: "You can see what your organisation's device management holds about you, who looked at it and why, " +
				"and download all of it. Use this access key in the employee portal; it is valid for 30 days:\n\n" +
				KeyPlaceholder + "\n"}); err != nil {
				return err
			}
		} else if display, t, err = s.mintPortalToken(ctx, q, tenantID, subjectID, ttl); err != nil {
			return err
		}
		e := actor.Entry(tenantID, "privacy.portal.issue", "subject", subjectID, audit.OutcomeSuccess)
		e.Details = map[string]any{"expires": t.ExpiresAt.Format(time.RFC3339), "mailed": notify}
		return audit.Append(ctx, q, e)
	})
	return display, t, err
}

func (s *Service) mintPortalToken(ctx context.Context, q store.Queries, tenantID, subjectID string, ttl time.Duration) (string, store.PortalToken, error) {
	display, hash, err := credential.New(credential.PortalToken)
	if err != nil {
		return "", store.PortalToken{}, err
	}
	now := s.clock()
	t := store.PortalToken{ID: store.NewID(), TenantID: tenantID, SubjectID: subjectID, SecretHash: hash, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	return display, t, q.PortalTokens().Create(ctx, t)
}

// AuthenticatePortal resolves a portal secret to its token.
func (s *Service) AuthenticatePortal(ctx context.Context, secret string) (store.PortalToken, error) {
	kind, hash, err := credential.Parse(secret)
	if err != nil || kind != credential.PortalToken {
		return store.PortalToken{}, errPortalCredential
	}
	q := s.st.Read()
	t, err := q.PortalTokens().GetBySecretHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return t, errPortalCredential
	}
	if err != nil {
		return t, err
	}
	now := s.clock()
	if !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt) {
		return t, errPortalCredential
	}
	sub, err := q.Subjects().Get(ctx, t.TenantID, t.SubjectID)
	if err != nil || sub.State != store.SubjectActive {
		return t, errPortalCredential
	}
	return t, nil
}

// SubjectActor is the audit actor for an employee acting through the portal.
func SubjectActor(t store.PortalToken, ip, requestID string) iam.Actor {
	return iam.Actor{Type: store.ActorSubject, ID: t.SubjectID, SourceIP: ip, RequestID: requestID}
}
