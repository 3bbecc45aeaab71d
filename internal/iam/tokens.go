package iam

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/store"
)

// TokenInput describes a new API token.
type TokenInput struct {
	Name      string
	RoleID    string
	ExpiresIn time.Duration // 0 means 90 days
}

// defaultTokenTTL is what a token lives when its creator does not say.
const defaultTokenTTL = 90 * 24 * time.Hour

// NewToken is a created token with its secret, which is shown this once.
type NewToken struct {
	Token  store.APIToken
	Secret string
}

// CreateToken issues an API token on tenantID with roleID. Only a person
// (a session) can create tokens, and only with a role whose permissions they
// hold there; the token later loses whatever its creator loses.
func (s *Service) CreateToken(ctx context.Context, p *Principal, tenantID string, in TokenInput, actor Actor) (NewToken, error) {
	if p.Token != nil {
		return NewToken{}, apperr.Forbidden("API tokens cannot create API tokens; sign in to create one")
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 64 || strings.ContainsAny(name, "\x00\r\n") {
		return NewToken{}, apperr.Invalid("name must be 1 to 64 characters on one line").With("field", "name")
	}
	ttl := in.ExpiresIn
	if ttl == 0 {
		ttl = defaultTokenTTL
	}
	if ttl < time.Minute || ttl > s.cfg.MaxTokenTTL {
		return NewToken{}, apperr.Invalid("expires_in_days must be between 1 and %d", int(s.cfg.MaxTokenTTL/(24*time.Hour))).With("field", "expires_in_days")
	}
	granter, err := s.Permissions(ctx, p, tenantID)
	if err != nil {
		return NewToken{}, err
	}
	secret, hash, err := credential.New(credential.APIToken)
	if err != nil {
		return NewToken{}, err
	}
	now := s.clock()
	tok := store.APIToken{ID: store.NewID(), TenantID: tenantID, RoleID: in.RoleID, Name: name, CreatedBy: p.AdminID,
		SecretHash: hash, ExpiresAt: now.Add(ttl), CreatedAt: now}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		if err := s.ensureGrantable(ctx, q, granter, tenantID, in.RoleID); err != nil {
			return err
		}
		if err := q.Tokens().Create(ctx, tok); err != nil {
			return err
		}
		rec := actor.Entry(tenantID, "token.create", "token", tok.ID, outcomeSuccess)
		rec.Details = map[string]any{"role_id": tok.RoleID, "expires_at": tok.ExpiresAt.Format(time.RFC3339)}
		return appendAudit(ctx, q, rec)
	})
	return NewToken{Token: tok, Secret: secret}, err
}

// ListTokens lists a tenant's tokens, never their secrets.
func (s *Service) ListTokens(ctx context.Context, tenantID string, p store.Page) ([]store.APIToken, error) {
	return s.st.Read().Tokens().List(ctx, tenantID, p)
}

// GetToken returns one token.
func (s *Service) GetToken(ctx context.Context, tenantID, id string) (store.APIToken, error) {
	t, err := s.st.Read().Tokens().Get(ctx, tenantID, id)
	return t, notFoundAs(err, "token")
}

// RevokeToken stops a token working at once.
func (s *Service) RevokeToken(ctx context.Context, tenantID, id string, actor Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		t, err := q.Tokens().Get(ctx, tenantID, id)
		if err != nil {
			return notFoundAs(err, "token")
		}
		if !t.RevokedAt.IsZero() {
			return nil
		}
		if err := q.Tokens().Revoke(ctx, tenantID, id, s.clock()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return apperr.NotFound("token")
			}
			return err
		}
		return appendAudit(ctx, q, actor.Entry(tenantID, "token.revoke", "token", id, outcomeSuccess))
	})
}
