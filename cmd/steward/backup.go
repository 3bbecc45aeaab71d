package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/steward-mdm/steward/internal/backup"
	"github.com/steward-mdm/steward/internal/server"
)

func newBackupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Create or restore encrypted backups (directly on the database)",
		Long: "Backups are consistent snapshots encrypted under a fresh key sealed with the master key: keep the\n" +
			"master key safe and apart from the backups. Sessions, leases and the personal-data key vault are never\n" +
			"backed up, so erasing a person also makes their data in older backups unreadable.",
	}
	cmd.AddCommand(newBackupCreateCmd(), newBackupRestoreCmd())
	return cmd
}

func newBackupCreateCmd() *cobra.Command {
	cfg := &server.Config{}
	var out string
	cmd := &cobra.Command{
		Use:   "create --out FILE",
		Short: "Write an encrypted backup of the database to FILE (safe while the server runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			app, db, err := openBackupApp(cmd, cfg)
			if err != nil {
				return err
			}
			defer app.Close()
			rep := newRowProgress(cmd.ErrOrStderr(), "backup")
			var h backup.Header
			err = writeFileAtomic(out, func(w io.Writer) error {
				h, err = backup.Create(cmd.Context(), db, app.Sealer, w, rep.update)
				return err
			})
			rep.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s rows in %d tables, %s schema version %d\n",
				out, humanize.Comma(h.TotalRows()), len(h.Tables), h.Engine, h.SchemaVersion)
			return nil
		},
	}
	cfg.BindFlags(cmd.Flags())
	cmd.Flags().StringVar(&out, "out", "", "backup file to write (mode 0600)")
	return cmd
}

func newBackupRestoreCmd() *cobra.Command {
	cfg := &server.Config{}
	var in string
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore --in FILE --yes",
		Short: "Replace the database's contents with a backup (stop the server first)",
		Long: "Replace every backed-up table with the backup's rows in one transaction; on any error nothing changes.\n" +
			"Sessions, leases and the key vault stay as they are. The database must be at the backup's schema version.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" {
				return errors.New("--in is required")
			}
			if !yes {
				return errors.New("restore replaces the database's contents: re-run with --yes to confirm")
			}
			f, err := os.Open(in)
			if err != nil {
				return fmt.Errorf("opening the backup: %w", err)
			}
			defer f.Close()
			app, db, err := openBackupApp(cmd, cfg)
			if err != nil {
				return err
			}
			defer app.Close()
			// The Find My PINs drawn since the backup would go with the
			// database's contents: read them first, keep them after.
			pins, err := app.Actions.PINsBeforeRestore(cmd.Context())
			if err != nil {
				return fmt.Errorf("reading the Find My PINs to keep across the restore (nothing was restored): %w", err)
			}
			rep := newRowProgress(cmd.ErrOrStderr(), "restore")
			h, err := backup.Restore(cmd.Context(), db, app.Sealer, f, rep.update)
			rep.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s rows in %d tables from the backup of %s; kept as they were: %s\n",
				humanize.Comma(h.TotalRows()), len(h.Tables), h.CreatedAt.Format(time.RFC3339), strings.Join(backup.NeverBackedUp, ", "))
			kept, pinErr := app.Actions.KeepPINsAfterRestore(cmd.Context(), pins)
			if kept > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "kept %d Find My PINs drawn after the backup was taken, as departed Macs' PINs "+
					"(steward action departed-pins)\n", kept)
			}
			// What was decided after the backup was taken and the vault
			// remembers: deleted tenants, revoked links, and people and
			// devices erased (their keys are gone, so their restored data is
			// unreadable). Apply it again now.
			r, err := app.ReconcileRestore(cmd.Context())
			out := cmd.OutOrStdout()
			if r.TenantsDeleted > 0 {
				fmt.Fprintf(out, "deleted again %d customer tenants deleted after the backup was taken\n", r.TenantsDeleted)
			}
			if r.LinksRevoked > 0 {
				fmt.Fprintf(out, "revoked again %d enrolment links revoked after the backup was taken\n", r.LinksRevoked)
			}
			if r.Erasures > 0 {
				fmt.Fprintf(out, "re-applied %d erasures and device departures made after the backup was taken (new deletion certificates issued)\n", r.Erasures)
			}
			if err != nil {
				err = fmt.Errorf("the restore is complete, but re-applying what was decided after the backup failed; "+
					"`steward serve` tries again at every start: %w", err)
			}
			if pinErr != nil {
				// Read from the database the restore replaced, they exist
				// nowhere else any more.
				pinErr = fmt.Errorf("the restore is complete, but some Find My PINs drawn after the backup could not be kept "+
					"and are lost: %w", pinErr)
			}
			return errors.Join(pinErr, err)
		},
	}
	cfg.BindFlags(cmd.Flags())
	cmd.Flags().StringVar(&in, "in", "", "backup file to restore")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm replacing the database's contents")
	return cmd
}

func openBackupApp(cmd *cobra.Command, cfg *server.Config) (*server.App, backup.Database, error) {
	app, err := openApp(cmd.Context(), cfg, cmd.Flags(), false)
	if err != nil {
		return nil, nil, err
	}
	db, ok := app.Store.(backup.Database)
	if !ok {
		app.Close()
		return nil, nil, fmt.Errorf("the %s store does not support backups", app.Store.Engine())
	}
	return app, db, nil
}

// writeFileAtomic writes path.tmp with mode 0600, syncs it and renames it
// over path, so a failed backup never leaves a half-written file at path.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale %s: %w", tmp, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	if dir, derr := os.Open(filepath.Dir(path)); derr == nil {
		dir.Sync() // make the rename durable; best effort
		dir.Close()
	}
	return nil
}

// rowProgress shows "backup: 12,345/40,000 rows (30%)": redrawn on a
// terminal a few times a second, and as one final line everywhere.
type rowProgress struct {
	w           io.Writer
	verb        string
	tty         bool
	last        time.Time
	rows, total int64
}

func newRowProgress(w io.Writer, verb string) *rowProgress {
	f, ok := w.(*os.File)
	return &rowProgress{w: w, verb: verb, tty: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *rowProgress) update(done, total int64) {
	p.rows, p.total = done, total
	if p.tty && time.Since(p.last) > 200*time.Millisecond {
		p.last = time.Now()
		fmt.Fprintf(p.w, "\r%s", p.line())
	}
}

func (p *rowProgress) line() string {
	pct := int64(100)
	if p.total > 0 {
		pct = p.rows * 100 / p.total
	}
	return fmt.Sprintf("%s: %s/%s rows (%d%%)", p.verb, humanize.Comma(p.rows), humanize.Comma(p.total), pct)
}

func (p *rowProgress) finish() {
	if p.tty {
		fmt.Fprint(p.w, "\r")
	}
	fmt.Fprintln(p.w, p.line())
}
