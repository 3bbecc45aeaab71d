package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/store"
)

// Record is one thing that happened, as a caller describes it. Append turns
// records into chained store.AuditEntry values.
type Record struct {
	TenantID   string
	ActorType  store.ActorType
	ActorID    string
	Action     string // dotted verb, e.g. "admin.create"
	TargetType string
	TargetID   string
	Outcome    string // "success", "failure" or "denied"
	SourceIP   string
	RequestID  string
	Reason     string
	Details    map[string]any
	Time       time.Time // zero means now
}

// Outcomes an entry may record.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// Field limits. They keep one entry small enough that a chain stays cheap to
// verify and export; a caller that hits one is logging the wrong thing.
const (
	maxIDLen      = 128
	maxActionLen  = 128
	maxIPLen      = 64
	maxReasonLen  = 1024
	maxDetailsLen = 64 << 10
)

// ErrInvalidRecord wraps every validation failure of Append.
var ErrInvalidRecord = errors.New("audit: invalid record")

var knownActorTypes = []store.ActorType{store.ActorAdmin, store.ActorToken, store.ActorDevice, store.ActorSystem, store.ActorAnonymous, store.ActorSubject}

// Append chains recs onto their tenants' logs inside the caller's transaction
// q, so a change and the entry recording it commit or fail together. Records
// are checked at once but chained as the transaction's last work: the chain
// head stays locked only through the commit, not through the rest of the
// transaction, and entries without a time get the time they were chained.
// The appends a transaction's function makes are chained together, tenant
// by tenant in sorted order: two transactions touching the same tenants lock
// their heads in the same order and cannot deadlock, however their appends
// were ordered. (An append from other commit work that runs after that
// chaining is chained on its own, after it.)
func Append(ctx context.Context, q store.Queries, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	for i, r := range recs {
		if _, err := entryFromRecord(r, time.Now()); err != nil {
			return fmt.Errorf("record %d (%s): %w", i, r.Action, err)
		}
	}
	return q.BeforeCommitGathered(gatheredRecords{}, recs, func(q store.Queries, calls []any) error {
		byTenant := make(map[string][]Record)
		for _, recs := range calls {
			for _, r := range recs.([]Record) {
				byTenant[r.TenantID] = append(byTenant[r.TenantID], r)
			}
		}
		for _, t := range slices.Sorted(maps.Keys(byTenant)) {
			if err := appendChained(ctx, q, t, byTenant[t]); err != nil {
				return err
			}
		}
		return nil
	})
}

// gatheredRecords keys a transaction's audit records.
type gatheredRecords struct{}

// appendChained locks the tenant's head, links records onto it and stores
// them with the new head. "Now" is read under the lock, so times never run
// backwards along the chain.
func appendChained(ctx context.Context, q store.Queries, tenantID string, recs []Record) error {
	head, err := q.Audit().Head(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("audit: reading chain head of tenant %s: %w", tenantID, err)
	}
	head.TenantID = tenantID // a tenant without entries gets a zero head
	now := normaliseTime(time.Now())
	entries := make([]store.AuditEntry, len(recs))
	for i, r := range recs {
		if entries[i], err = entryFromRecord(r, now); err != nil {
			return err
		}
	}
	next := linkEntries(head, entries)
	if err := q.Audit().Append(ctx, next, entries); err != nil {
		return fmt.Errorf("audit: appending %d entries for tenant %s: %w", len(entries), tenantID, err)
	}
	return nil
}

func entryFromRecord(r Record, now time.Time) (store.AuditEntry, error) {
	if err := validateRecord(r); err != nil {
		return store.AuditEntry{}, err
	}
	t := now
	if !r.Time.IsZero() {
		t = normaliseTime(r.Time)
	}
	e := store.AuditEntry{
		TenantID: r.TenantID, Time: t, ActorType: r.ActorType, ActorID: r.ActorID, Action: r.Action,
		TargetType: r.TargetType, TargetID: r.TargetID, Outcome: r.Outcome, SourceIP: r.SourceIP,
		RequestID: r.RequestID, Reason: r.Reason,
	}
	if len(r.Details) > 0 {
		// encoding/json sorts map keys and writes no spaces: one value, one
		// encoding, which the hash depends on.
		d, err := json.Marshal(r.Details)
		if err != nil {
			return store.AuditEntry{}, fmt.Errorf("%w: details do not encode as JSON: %v", ErrInvalidRecord, err)
		}
		if len(d) > maxDetailsLen {
			return store.AuditEntry{}, fmt.Errorf("%w: details are %d bytes, limit %d", ErrInvalidRecord, len(d), maxDetailsLen)
		}
		e.Details = d
	}
	return e, nil
}

func validateRecord(r Record) error {
	if r.TenantID == "" {
		return fmt.Errorf("%w: tenant ID is required", ErrInvalidRecord)
	}
	if r.Action == "" {
		return fmt.Errorf("%w: action is required", ErrInvalidRecord)
	}
	if !slices.Contains(knownActorTypes, r.ActorType) {
		return fmt.Errorf("%w: unknown actor type %q", ErrInvalidRecord, r.ActorType)
	}
	switch r.Outcome {
	case OutcomeSuccess, OutcomeFailure, OutcomeDenied:
	default:
		return fmt.Errorf("%w: outcome must be success, failure or denied, got %q", ErrInvalidRecord, r.Outcome)
	}
	fields := []struct {
		name, value string
		max         int
	}{
		{"tenant ID", r.TenantID, maxIDLen}, {"actor ID", r.ActorID, maxIDLen}, {"action", r.Action, maxActionLen},
		{"target type", r.TargetType, maxIDLen}, {"target ID", r.TargetID, maxIDLen}, {"source IP", r.SourceIP, maxIPLen},
		{"request ID", r.RequestID, maxIDLen}, {"reason", r.Reason, maxReasonLen},
	}
	for _, f := range fields {
		if len(f.value) > f.max {
			return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrInvalidRecord, f.name, len(f.value), f.max)
		}
		// Exports are JSON: invalid UTF-8 would come back as U+FFFD and the
		// entry would no longer verify.
		if !utf8.ValidString(f.value) {
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidRecord, f.name)
		}
		// PostgreSQL text cannot hold NUL; refusing it everywhere keeps the
		// engines alike.
		if strings.IndexByte(f.value, 0) >= 0 {
			return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalidRecord, f.name)
		}
	}
	return nil
}

// linkEntries numbers entries after head, links and hashes them, and returns
// the head that follows them.
func linkEntries(head store.AuditHead, entries []store.AuditEntry) store.AuditHead {
	prev := head.Hash
	if head.Seq == 0 {
		prev = genesisHash
	}
	seq := head.Seq
	buf := make([]byte, 0, 512)
	for i := range entries {
		seq++
		entries[i].Seq = seq
		entries[i].PrevHash = prev
		sum := hashEntryInto(buf, entries[i])
		entries[i].Hash = sum[:]
		prev = entries[i].Hash
	}
	return store.AuditHead{TenantID: head.TenantID, Seq: seq, Hash: prev, BaseSeq: head.BaseSeq, BaseHash: head.BaseHash}
}
