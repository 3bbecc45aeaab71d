package main

import (
	"bufio"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/server"
)

func newAuditCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read, export, checkpoint and verify the tamper-evident audit log"}
	cmd.AddCommand(newAuditListCmd(r), newAuditExportCmd(r), newAuditCheckpointCmd(r), newAuditVerifyCmd(r), newAuditKeyCmd(r))
	return cmd
}

func newAuditListCmd(r *remote) *cobra.Command {
	filters := map[string]*string{}
	var limit int
	cmd := &cobra.Command{
		Use: "list", Short: "Show audit entries of --tenant, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			for k, v := range filters {
				if *v != "" {
					q.Set(strings.ReplaceAll(k, "-", "_"), *v)
				}
			}
			return r.call(cmd, func(a *apiCall) error {
				var out api.List[api.AuditEntryView]
				if err := a.do("GET", tenantPath(a.tenant, "/audit?"+q.Encode()), nil, &out); err != nil {
					return err
				}
				return r.print(cmd.OutOrStdout(), out, []string{"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME"}, func(i int) []string {
					e := out.Items[i]
					return []string{fmt.Sprint(e.Seq), e.Time.Local().Format(time.DateTime), e.ActorType + ":" + e.ActorID, e.Action,
						e.TargetType + ":" + e.TargetID, e.Outcome}
				}, len(out.Items))
			})
		},
	}
	for _, f := range []struct{ name, help string }{
		{"action", "action, or a prefix ending in * (auth.*)"}, {"actor-id", "actor ID"}, {"actor-type", "admin, token, device, system, anonymous"},
		{"target-type", "target type"}, {"target-id", "target ID"}, {"since", "RFC 3339 start (inclusive)"}, {"until", "RFC 3339 end (exclusive)"},
	} {
		filters[f.name] = cmd.Flags().String(f.name, "", f.help)
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many entries")
	return cmd
}

func newAuditExportCmd(r *remote) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export --tenant's audit chain and checkpoints as JSON Lines",
		Long:  "Write the chain with its signed checkpoints to --out, for offline verification with `steward audit verify --file` and the public key (`steward audit public-key`).",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			return r.call(cmd, func(a *apiCall) error {
				resp, err := a.c.Raw(cmd.Context(), "GET", tenantPath(a.tenant, "/audit/export"), nil)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
				if err != nil {
					return err
				}
				pr := newProgress(cmd.ErrOrStderr(), "exported", -1)
				n, err := io.Copy(f, io.TeeReader(resp.Body, pr))
				pr.done()
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %d bytes to %s\n", n, out)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write (must not exist)")
	return cmd
}

func newAuditCheckpointCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "checkpoint", Short: "Sign a checkpoint of --tenant's chain now", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var cp api.CheckpointView
				if err := a.do("POST", tenantPath(a.tenant, "/audit/checkpoints"), nil, &cp); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "checkpoint at seq %d, hash %s, key %s\n", cp.Seq, cp.Hash, cp.KeyID)
				return nil
			})
		},
	}
}

func newAuditKeyCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "public-key", Short: "Print the public key that signs checkpoints (PEM)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			var v api.PublicKeyView
			if err := c.Do(cmd.Context(), "GET", "/api/v1/audit/public-key", nil, &v); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), v.PublicKeyPEM)
			return nil
		},
	}
}

func newAuditVerifyCmd(r *remote) *cobra.Command {
	cfg := &server.Config{}
	var file, keyFile string
	var direct bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify audit chains and checkpoints: from an export file, the database, or the server",
		Long: "Check every entry's hash, the links between entries and every signed checkpoint, and name the\n" +
			"first entry that was altered, removed or inserted.\n\n" +
			"  --file F --public-key K   an export, offline, with the public key you trust\n" +
			"  --direct [--data/--db]    every tenant, straight from the database (on the server machine)\n" +
			"  (neither)                 ask the server to verify --tenant\n" +
			"Exits with status 1 when a problem is found.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case file != "":
				return verifyFile(cmd, file, keyFile)
			case direct:
				return verifyDirect(cmd, cfg)
			default:
				return r.call(cmd, func(a *apiCall) error {
					var v api.VerifyView
					if err := a.do("POST", tenantPath(a.tenant, "/audit/verify"), nil, &v); err != nil {
						return err
					}
					return reportVerify(cmd, a.tenant, v)
				})
			}
		},
	}
	cfg.BindFlags(cmd.Flags())
	cmd.Flags().StringVar(&file, "file", "", "verify this export file offline")
	cmd.Flags().StringVar(&keyFile, "public-key", "", "PEM public key for --file (from 'steward audit public-key')")
	cmd.Flags().BoolVar(&direct, "direct", false, "read the database directly instead of asking the server")
	return cmd
}

func verifyFile(cmd *cobra.Command, file, keyFile string) error {
	if keyFile == "" {
		return errors.New("--public-key is required with --file: verify against a key you obtained independently")
	}
	pemBytes, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	pub, err := audit.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	size := int64(-1)
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	pr := newProgress(cmd.ErrOrStderr(), "verified", size)
	rep, err := audit.VerifyExport(bufio.NewReaderSize(io.TeeReader(f, pr), 1<<20), pub)
	pr.done()
	if err != nil {
		return err
	}
	return reportVerify(cmd, rep.TenantID, api.VerifyViewOf(rep))
}

func verifyDirect(cmd *cobra.Command, cfg *server.Config) error {
	app, err := openApp(cmd.Context(), cfg, cmd.Flags(), false)
	if err != nil {
		return err
	}
	defer app.Close()
	tenants, err := app.Store.Read().Audit().Tenants(cmd.Context())
	if err != nil {
		return err
	}
	var pub ed25519.PublicKey = app.Signer.PublicKey()
	failed := 0
	for i, t := range tenants {
		fmt.Fprintf(cmd.ErrOrStderr(), "[%d/%d] ", i+1, len(tenants))
		rep, err := audit.VerifyStore(cmd.Context(), app.Store, t, pub)
		if err != nil {
			return err
		}
		if reportVerify(cmd, t, api.VerifyViewOf(rep)) != nil {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d tenant chains failed verification", failed, len(tenants))
	}
	return nil
}

var errVerifyFailed = errors.New("audit verification failed")

func reportVerify(cmd *cobra.Command, tenant string, v api.VerifyView) error {
	if v.OK {
		fmt.Fprintf(cmd.OutOrStdout(), "OK  tenant %s: %d entries (seq %d..%d), %d checkpoints verified\n", tenant, v.Entries, v.FirstSeq, v.LastSeq, v.Checkpoints)
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "FAIL tenant %s: %s at seq %d: %s\n", tenant, v.Problem.Kind, v.Problem.Seq, v.Problem.Detail)
	return errVerifyFailed
}
