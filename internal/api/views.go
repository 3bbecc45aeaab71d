package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/store"
)

// The types below are the API's wire format. They are separate from the
// store's rows so that a column added for internal use never leaks out, and
// the OpenAPI document is generated from them.

// List is a page of results; pass next_cursor back as ?cursor= for the next.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

type TenantView struct {
	ID           string    `json:"id"`
	ParentID     string    `json:"parent_id,omitempty"`
	Kind         string    `json:"kind"`
	Name         string    `json:"name"`
	Slug         string    `json:"slug"`
	RequireMFA   bool      `json:"require_mfa"`
	AllowedCIDRs []string  `json:"allowed_cidrs"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func tenantView(t store.Tenant) TenantView {
	cidrs := t.AllowedCIDRs
	if cidrs == nil {
		cidrs = []string{}
	}
	return TenantView{ID: t.ID, ParentID: t.ParentID, Kind: string(t.Kind), Name: t.Name, Slug: t.Slug,
		RequireMFA: t.RequireMFA, AllowedCIDRs: cidrs, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

type AdminView struct {
	ID          string     `json:"id"`
	TenantID    string     `json:"tenant_id"`
	Email       string     `json:"email"`
	DisplayName string     `json:"display_name"`
	MFAEnabled  bool       `json:"mfa_enabled"`
	Disabled    bool       `json:"disabled"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	PasswordSet bool       `json:"password_set"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

func adminView(a store.Admin) AdminView {
	v := AdminView{ID: a.ID, TenantID: a.TenantID, Email: a.Email, DisplayName: a.DisplayName, MFAEnabled: a.MFAEnabled,
		Disabled: a.Disabled, PasswordSet: a.PasswordHash != "", CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if a.LockedUntil.After(now()) {
		v.LockedUntil = optTime(a.LockedUntil)
	}
	return v
}

type RoleView struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Permissions []string   `json:"permissions"`
	BuiltIn     bool       `json:"built_in"`
	CreatedAt   *time.Time `json:"created_at,omitempty"`
}

func roleView(r store.Role) RoleView {
	return RoleView{ID: r.ID, Name: r.Name, Description: r.Description, Permissions: r.Permissions, BuiltIn: r.BuiltIn,
		CreatedAt: optTime(r.CreatedAt)}
}

type AssignmentView struct {
	ID        string    `json:"id"`
	AdminID   string    `json:"admin_id"`
	TenantID  string    `json:"tenant_id"`
	RoleID    string    `json:"role_id"`
	Groups    []string  `json:"groups,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func assignmentView(a store.Assignment) AssignmentView {
	return AssignmentView{ID: a.ID, AdminID: a.AdminID, TenantID: a.TenantID, RoleID: a.RoleID, Groups: a.Groups, CreatedAt: a.CreatedAt}
}

type TokenView struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"tenant_id"`
	Name       string     `json:"name"`
	RoleID     string     `json:"role_id"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	LastUsedIP string     `json:"last_used_ip,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func tokenView(t store.APIToken) TokenView {
	return TokenView{ID: t.ID, TenantID: t.TenantID, Name: t.Name, RoleID: t.RoleID, CreatedBy: t.CreatedBy,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: optTime(t.LastUsedAt), LastUsedIP: t.LastUsedIP,
		RevokedAt: optTime(t.RevokedAt)}
}

// NewTokenView carries the token's secret, which is never shown again.
type NewTokenView struct {
	Token  TokenView `json:"token"`
	Secret string    `json:"secret"`
}

type SessionView struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Current    bool       `json:"current"`
	SourceIP   string     `json:"source_ip"`
	UserAgent  string     `json:"user_agent"`
	CreatedAt  time.Time  `json:"created_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	IdleExpiry time.Time  `json:"idle_expires_at"`
	AbsExpiry  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

func sessionView(s store.Session, currentID string) SessionView {
	return SessionView{ID: s.ID, Kind: string(s.Kind), Current: s.ID == currentID, SourceIP: s.SourceIP,
		UserAgent: s.UserAgent, CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, IdleExpiry: s.IdleExpiry,
		AbsExpiry: s.AbsExpiry, RevokedAt: optTime(s.RevokedAt)}
}

type AuditEntryView struct {
	TenantID   string          `json:"tenant_id"`
	Seq        int64           `json:"seq"`
	Time       time.Time       `json:"time"`
	ActorType  string          `json:"actor_type"`
	ActorID    string          `json:"actor_id,omitempty"`
	Action     string          `json:"action"`
	TargetType string          `json:"target_type,omitempty"`
	TargetID   string          `json:"target_id,omitempty"`
	Outcome    string          `json:"outcome"`
	SourceIP   string          `json:"source_ip,omitempty"`
	RequestID  string          `json:"request_id,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Details    json.RawMessage `json:"details,omitempty"`
	PrevHash   string          `json:"prev_hash"`
	Hash       string          `json:"hash"`
}

func auditEntryView(e store.AuditEntry) AuditEntryView {
	return AuditEntryView{TenantID: e.TenantID, Seq: e.Seq, Time: e.Time, ActorType: string(e.ActorType), ActorID: e.ActorID,
		Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID, Outcome: e.Outcome, SourceIP: e.SourceIP,
		RequestID: e.RequestID, Reason: e.Reason, Details: e.Details, PrevHash: hex.EncodeToString(e.PrevHash),
		Hash: hex.EncodeToString(e.Hash)}
}

type CheckpointView struct {
	TenantID  string    `json:"tenant_id"`
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	Signature string    `json:"signature"`
}

func checkpointView(c store.Checkpoint) CheckpointView {
	return CheckpointView{TenantID: c.TenantID, Seq: c.Seq, Hash: hex.EncodeToString(c.Hash), Time: c.Time,
		KeyID: c.KeyID, Signature: hex.EncodeToString(c.Signature)}
}

// page reads ?cursor= and ?limit= for ID-ordered lists.
func (c *Call) page() (store.Page, error) {
	p := store.Page{After: c.Query("cursor")}
	if len(p.After) > 64 {
		return p, apperr.Invalid("cursor is not valid").With("field", "cursor")
	}
	lim, err := c.limit()
	p.Limit = lim
	return p, err
}

func (c *Call) limit() (int, error) {
	raw := c.Query("limit")
	if raw == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 1000 {
		return 0, apperr.Invalid("limit must be a whole number from 1 to 1000").With("field", "limit")
	}
	return n, nil
}

// listOf converts a page of rows and sets the cursor when the page is full.
func listOf[R, V any](rows []R, limit int, view func(R) V, id func(R) string) List[V] {
	out := List[V]{Items: make([]V, 0, len(rows))}
	for _, r := range rows {
		out.Items = append(out.Items, view(r))
	}
	if len(rows) == limit && limit > 0 {
		out.NextCursor = id(rows[len(rows)-1])
	}
	return out
}

// pageOf pages a list the handler already holds in full (it is small and
// bounded): the cursor is the key of the last item of the previous page.
func pageOf[R, V any](c *Call, rows []R, view func(R) V, key func(R) string) (List[V], error) {
	limit, err := c.limit()
	if err != nil {
		return List[V]{}, err
	}
	start := 0
	if cursor := c.Query("cursor"); cursor != "" {
		start = -1
		for i, r := range rows {
			if key(r) == cursor {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return List[V]{}, apperr.Invalid("cursor is not valid").With("field", "cursor")
		}
	}
	end := min(start+limit, len(rows))
	out := listOf(rows[start:end], limit, view, key)
	if end == len(rows) {
		out.NextCursor = ""
	}
	return out, nil
}

// notFoundAs names what was not found, for a clearer 404.
func notFoundAs(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound(what)
	}
	return err
}
