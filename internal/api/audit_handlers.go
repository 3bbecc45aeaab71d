package api

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/store"
)

var auditQuery = []QueryParam{
	{Name: "actor_type", Type: "string", Description: "admin, token, device, subject (an employee acting on their own data), system or anonymous"},
	{Name: "actor_id", Type: "string", Description: "exact actor ID"},
	{Name: "action", Type: "string", Description: "exact action, or a prefix ending in * (auth.*)"},
	{Name: "target_type", Type: "string", Description: "exact target type"},
	{Name: "target_id", Type: "string", Description: "exact target ID"},
	{Name: "since", Type: "string", Description: "RFC 3339 time, inclusive"},
	{Name: "until", Type: "string", Description: "RFC 3339 time, exclusive"},
	{Name: "order", Type: "string", Description: "desc (default, newest first) or asc"},
	{Name: "cursor", Type: "string", Description: "next_cursor from the previous page"},
	{Name: "limit", Type: "integer", Description: "page size, 1 to 1000 (default 100)"},
}

func (c *Call) auditFilter() (store.AuditFilter, error) {
	f := store.AuditFilter{
		ActorType: store.ActorType(c.Query("actor_type")), ActorID: c.Query("actor_id"), Action: c.Query("action"),
		TargetType: c.Query("target_type"), TargetID: c.Query("target_id"),
	}
	for _, v := range []string{string(f.ActorType), f.ActorID, f.Action, f.TargetType, f.TargetID} {
		if len(v) > 200 {
			return f, apperr.Invalid("filter values are at most 200 characters")
		}
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if raw := c.Query(name); raw != "" {
			t, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil {
				return f, apperr.Invalid("%s must be an RFC 3339 time such as 2026-01-31T12:00:00Z", name).With("field", name)
			}
			*dst = t.UTC()
		}
	}
	switch c.Query("order") {
	case "", "desc":
		f.Descending = true
	case "asc":
	default:
		return f, apperr.Invalid("order must be asc or desc").With("field", "order")
	}
	if raw := c.Query("cursor"); raw != "" {
		seq, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || seq < 0 {
			return f, apperr.Invalid("cursor is not valid").With("field", "cursor")
		}
		if f.Descending {
			f.BeforeSeq = seq
		} else {
			f.AfterSeq = seq
		}
	}
	lim, err := c.limit()
	f.Limit = lim
	return f, err
}

func (s *Server) listAudit(c *Call) (any, error) {
	f, err := c.auditFilter()
	if err != nil {
		return nil, err
	}
	rows, err := s.st.Read().Audit().List(c.R.Context(), c.Tenant, f)
	if err != nil {
		return nil, err
	}
	return listOf(rows, f.Limit, auditEntryView, func(e store.AuditEntry) string { return strconv.FormatInt(e.Seq, 10) }), nil
}

func (s *Server) listCheckpoints(c *Call) (any, error) {
	cps, err := s.st.Read().Audit().Checkpoints(c.R.Context(), c.Tenant)
	if err != nil {
		return nil, err
	}
	return pageOf(c, cps, checkpointView, func(cp store.Checkpoint) string { return strconv.FormatInt(cp.Seq, 10) })
}

func (s *Server) createCheckpoint(c *Call) (any, error) {
	cp, err := audit.MakeCheckpoint(c.R.Context(), s.st, s.opts.Signer, c.Tenant, time.Now())
	if errors.Is(err, audit.ErrEmptyChain) {
		return nil, apperr.Conflict("the tenant's audit chain is empty; there is nothing to sign yet")
	}
	if err != nil {
		return nil, err
	}
	return checkpointView(cp), nil
}

// VerifyView is the outcome of checking a tenant's chain.
type VerifyView struct {
	OK          bool         `json:"ok"`
	Entries     int64        `json:"entries"`
	FirstSeq    int64        `json:"first_seq"`
	LastSeq     int64        `json:"last_seq"`
	Checkpoints int          `json:"checkpoints"`
	Problem     *ProblemView `json:"problem,omitempty"`
}

type ProblemView struct {
	Kind   string `json:"kind"`
	Seq    int64  `json:"seq"`
	Detail string `json:"detail"`
}

// VerifyViewOf presents a verification report.
func VerifyViewOf(r audit.Report) VerifyView {
	v := VerifyView{OK: r.Problem == nil, Entries: r.Entries, FirstSeq: r.FirstSeq, LastSeq: r.LastSeq, Checkpoints: r.Checkpoints}
	if r.Problem != nil {
		v.Problem = &ProblemView{Kind: r.Problem.Kind, Seq: r.Problem.Seq, Detail: r.Problem.Detail}
	}
	return v
}

func (s *Server) verifyAudit(c *Call) (any, error) {
	rep, err := audit.VerifyStore(c.R.Context(), s.st, c.Tenant, s.opts.Signer.PublicKey())
	if err != nil {
		return nil, err
	}
	return VerifyViewOf(rep), nil
}

// exportAudit streams the chain. The export itself is recorded first, so the
// file a person takes away contains the fact that they took it.
func (s *Server) exportAudit(c *Call) (any, error) {
	ctx := c.R.Context()
	rec := c.Actor.Entry(c.Tenant, "audit.export", "tenant", c.Tenant, "success")
	if err := s.st.Tx(ctx, func(q store.Queries) error { return audit.Append(ctx, q, rec) }); err != nil {
		return nil, err
	}
	c.W.Header().Set("Content-Type", "application/jsonl")
	c.W.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"steward-audit-%s.jsonl\"", c.Tenant))
	bw := bufio.NewWriterSize(c.W, 64<<10)
	if _, err := audit.Export(ctx, s.st, c.Tenant, bw); err != nil {
		// Headers are gone; a truncated file fails verification, which is
		// the honest signal. Log for the operator.
		s.log.ErrorContext(ctx, "audit export failed", "request_id", requestID(ctx), "error", err.Error())
		return streamed, nil
	}
	_ = bw.Flush()
	return streamed, nil
}

// PublicKeyView is the checkpoint signing key, for offline verification.
type PublicKeyView struct {
	KeyID        string `json:"key_id"`
	Algorithm    string `json:"algorithm"`
	PublicKeyPEM string `json:"public_key_pem"`
}

func (s *Server) auditPublicKey(c *Call) (any, error) {
	sg := s.opts.Signer
	return PublicKeyView{KeyID: sg.KeyID(), Algorithm: "Ed25519", PublicKeyPEM: string(sg.PublicKeyPEM())}, nil
}
