package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/client"
)

var reportFormats = []string{"pdf", "csv", "json"}

// reportKindView is one entry of GET /reports. Unknown fields are ignored
// so a newer server's additions do not break the listing.
type reportKindView struct {
	Kind    string `json:"kind"`
	Title   string `json:"title"`
	Purpose string `json:"purpose"`
}

func newReportCmd(r *remote) *cobra.Command {
	var format, out string
	cmd := &cobra.Command{
		Use:   "report [KIND] [--format pdf|csv|json] [--out FILE]",
		Short: "Download a report (compliance, inventory, software, encryption, stale); no KIND lists them",
		Long: "Reports are evidence for auditors (CIS Controls, ISO/IEC 27001). The file is written with mode\n" +
			"0600 because inventories can identify people; share it deliberately. --out defaults to KIND.FORMAT.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return r.call(cmd, func(a *apiCall) error { return listReportKinds(r, a) })
			}
			if !slices.Contains(reportFormats, format) {
				return fmt.Errorf("--format must be %s", joinOr(reportFormats))
			}
			kind := args[0]
			if out == "" {
				out = kind + "." + format
			}
			return r.call(cmd, func(a *apiCall) error { return downloadReport(a, kind, format, out) })
		},
	}
	cmd.Flags().StringVar(&format, "format", "pdf", "pdf, csv or json")
	cmd.Flags().StringVar(&out, "out", "", "file to write (default KIND.FORMAT; - for standard output)")
	return cmd
}

func listReportKinds(r *remote, a *apiCall) error {
	var raw json.RawMessage
	if err := a.do("GET", tenantPath(a.tenant, "/reports"), nil, &raw); err != nil {
		return reportError(err, "")
	}
	var kinds struct {
		Items []reportKindView `json:"items"`
	}
	if r.json || json.Unmarshal(raw, &kinds) != nil {
		return printJSON(a.cmd.OutOrStdout(), raw)
	}
	return r.print(a.cmd.OutOrStdout(), kinds, []string{"KIND", "TITLE", "PURPOSE"}, func(i int) []string {
		k := kinds.Items[i]
		return []string{k.Kind, k.Title, k.Purpose}
	}, len(kinds.Items))
}

// downloadReport streams the report into out through a temporary file, so
// an interrupted download never leaves a truncated report behind.
func downloadReport(a *apiCall, kind, format, out string) error {
	path := tenantPath(a.tenant, "/reports/"+pathSegment(kind)+"?format="+url.QueryEscape(format))
	resp, err := a.c.Raw(a.cmd.Context(), "GET", path, nil)
	if err != nil {
		return reportError(err, kind)
	}
	defer resp.Body.Close()
	if out == "-" {
		_, err := io.Copy(a.cmd.OutOrStdout(), resp.Body)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	prog := newProgress(a.cmd.ErrOrStderr(), "Downloading", resp.ContentLength)
	n, err := io.Copy(io.MultiWriter(tmp, prog), resp.Body)
	prog.done()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading the %s report: %w", kind, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(a.cmd.ErrOrStderr(), "Wrote %s (%d bytes).\n", filepath.Clean(out), n)
	return nil
}

// reportError explains a 404: either no such kind, or a server without
// reports.
func reportError(err error, kind string) error {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound {
		return err
	}
	if kind == "" {
		return fmt.Errorf("this server offers no reports (is it older than this CLI?): %w", err)
	}
	return fmt.Errorf("no %q report here; run `steward report` to list the kinds: %w", kind, err)
}
