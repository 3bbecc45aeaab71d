package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// Export writes a tenant's live chain to w as JSON Lines (header, entries,
// checkpoints) that VerifyExport checks offline. It returns how many entries
// it wrote. Entries appended while it runs are left out: the export ends at
// the head read first.
func Export(ctx context.Context, st store.Store, tenantID string, w io.Writer) (int64, error) {
	aud := st.Read().Audit()
	head, err := aud.Head(ctx, tenantID)
	if err != nil {
		return 0, fmt.Errorf("audit: reading chain head of tenant %s: %w", tenantID, err)
	}
	cps, err := aud.Checkpoints(ctx, tenantID)
	if err != nil {
		return 0, fmt.Errorf("audit: reading checkpoints of tenant %s: %w", tenantID, err)
	}
	x := newExportWriter(w)
	if err := writeExport(ctx, st, x, head, head.Seq, cps); err != nil {
		return x.n, err
	}
	return x.n, x.flush()
}

// writeExport writes the header, entries BaseSeq+1..through and the
// checkpoints from the base to through.
func writeExport(ctx context.Context, st store.Store, x *exportWriter, head store.AuditHead, through int64, cps []store.Checkpoint) error {
	keyID := ""
	if len(cps) > 0 {
		keyID = cps[len(cps)-1].KeyID
	}
	if err := x.header(head.TenantID, time.Now(), head.BaseSeq, head.BaseHash, keyID); err != nil {
		return err
	}
	err := st.Read().Audit().Scan(ctx, head.TenantID, head.BaseSeq, func(e store.AuditEntry) error {
		if e.Seq > through {
			return errStopScan
		}
		return x.entry(e)
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return fmt.Errorf("audit: exporting entries of tenant %s: %w", head.TenantID, err)
	}
	for _, cp := range cps {
		if cp.Seq >= head.BaseSeq && cp.Seq <= through {
			if err := x.checkpoint(cp); err != nil {
				return err
			}
		}
	}
	return nil
}

// ErrMalformedExport wraps every reason VerifyExport cannot read a file as
// an export at all (as opposed to reading it and finding a Problem).
var ErrMalformedExport = errors.New("audit: malformed export")

// VerifyExport checks an export offline against the public key obtained
// independently of the file. Problems are named like VerifyStore's; in a
// file, reordered lines are told apart from removed ones.
func VerifyExport(r io.Reader, pub ed25519.PublicKey) (Report, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxExportLine)
	var (
		v    *chainVerifier
		cps  []store.Checkpoint
		line int
	)
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var l exportAnyLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return Report{}, fmt.Errorf("%w: line %d is not JSON: %v", ErrMalformedExport, line, err)
		}
		if v == nil {
			var err error
			if v, err = verifierFromHeader(&l, pub); err != nil {
				return Report{}, fmt.Errorf("%w: line %d: %v", ErrMalformedExport, line, err)
			}
			continue
		}
		switch l.Type {
		case "entry":
			e, err := entryFromLine(&l)
			if err != nil {
				return Report{}, fmt.Errorf("%w: line %d: %v", ErrMalformedExport, line, err)
			}
			v.addEntry(e)
		case "checkpoint":
			cp, err := checkpointFromLine(&l)
			if err != nil {
				return Report{}, fmt.Errorf("%w: line %d: %v", ErrMalformedExport, line, err)
			}
			cps = append(cps, cp)
		default:
			return Report{}, fmt.Errorf("%w: line %d has unknown type %q", ErrMalformedExport, line, l.Type)
		}
	}
	if err := sc.Err(); err != nil {
		return Report{}, fmt.Errorf("%w: reading line %d: %v", ErrMalformedExport, line+1, err)
	}
	if v == nil {
		return Report{}, fmt.Errorf("%w: no header line", ErrMalformedExport)
	}
	v.requireAnchoredBase(cps)
	for _, cp := range cps {
		v.checkCheckpoint(cp)
	}
	return v.report, nil
}

func verifierFromHeader(l *exportAnyLine, pub ed25519.PublicKey) (*chainVerifier, error) {
	if l.Type != "header" || l.Format != exportFormat {
		return nil, fmt.Errorf("the first line must be a %q header", exportFormat)
	}
	if l.Version != exportVersion {
		return nil, fmt.Errorf("export version %d is not supported (this verifier reads version %d)", l.Version, exportVersion)
	}
	baseHash, err := hex.DecodeString(l.BaseHash)
	if err != nil {
		return nil, fmt.Errorf("base_hash is not hex: %v", err)
	}
	v := newChainVerifier(l.TenantID, pub, l.BaseSeq, baseHash)
	v.keepHashes = true
	return v, nil
}
