package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// archiveLease elects the one node that archives.
const archiveLease = "audit.archive"

// Archiver moves entries older than the retention period into files
// <dir>/<tenant>-<fromseq>-<toseq>.jsonl, each an export VerifyExport checks.
type Archiver struct {
	st        store.Store
	signer    *Signer
	holder    string
	dir       string
	retention time.Duration
	leaseTTL  time.Duration
	log       *slog.Logger
}

// NewArchiver returns an Archiver; holder names this node in leases.
func NewArchiver(st store.Store, signer *Signer, holder, dir string, retention time.Duration, log *slog.Logger) *Archiver {
	if log == nil {
		log = slog.Default()
	}
	return &Archiver{st: st, signer: signer, holder: holder, dir: dir, retention: retention, leaseTTL: time.Hour, log: log}
}

// Run archives every interval until ctx ends.
func (a *Archiver) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Hour
	}
	a.leaseTTL = 2 * interval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := a.RunOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			a.log.Warn("audit archiving failed", "error", err.Error())
		} else if n > 0 {
			a.log.Info("audit entries archived", "count", n, "dir", a.dir)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce archives, for every tenant, the entries older than now minus the
// retention period, if this node holds the lease. It returns how many
// entries it archived and goes on past a failing tenant, returning the first
// error.
func (a *Archiver) RunOnce(ctx context.Context, now time.Time) (int, error) {
	if a.retention <= 0 {
		return 0, nil
	}
	if a.dir == "" {
		return 0, errors.New("audit: no archive directory configured; refusing to delete entries without keeping them")
	}
	ok, err := a.st.Read().Leases().TryAcquire(ctx, archiveLease, a.holder, now, a.leaseTTL)
	if err != nil || !ok {
		return 0, err
	}
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return 0, fmt.Errorf("audit: creating archive directory: %w", err)
	}
	tenants, err := a.st.Read().Audit().Tenants(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: listing tenants with a chain: %w", err)
	}
	total := 0
	var firstErr error
	for _, t := range tenants {
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
		n, err := a.archiveTenant(ctx, t, now.Add(-a.retention))
		total += n
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return total, firstErr
}

func (a *Archiver) archiveTenant(ctx context.Context, tenantID string, before time.Time) (int, error) {
	if tenantID == "" || strings.ContainsAny(tenantID, `/\`) || strings.HasPrefix(tenantID, ".") {
		return 0, fmt.Errorf("audit: tenant ID %q cannot name an archive file", tenantID)
	}
	var tmp *os.File
	defer func() {
		if tmp != nil { // not committed: leave no partial file behind
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	sink := func(from, to int64) (io.Writer, func() error, error) {
		f, err := os.CreateTemp(a.dir, ".archive-*.tmp") // mode 0600
		if err != nil {
			return nil, nil, fmt.Errorf("audit: creating archive file: %w", err)
		}
		tmp = f
		final := filepath.Join(a.dir, fmt.Sprintf("%s-%d-%d.jsonl", tenantID, from, to))
		return f, func() error { return a.commitFile(f, final, &tmp) }, nil
	}
	return archive(ctx, a.st, a.signer, tenantID, before, sink)
}

// commitFile makes the archive durable under its final name: file data,
// then the rename, then the directory entry.
func (a *Archiver) commitFile(f *os.File, final string, tmp **os.File) error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), final); err != nil {
		os.Remove(f.Name())
		*tmp = nil
		return err
	}
	*tmp = nil
	d, err := os.Open(a.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
