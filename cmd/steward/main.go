// Command steward is the Steward server and its command-line client.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/client"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "steward:", err)
		os.Exit(1)
	}
}

// remote holds the flags every API-backed command shares.
type remote struct {
	server, token, fingerprint, caFile, tenant string
	json                                       bool
}

func newRoot() *cobra.Command {
	r := &remote{}
	root := &cobra.Command{
		Use:   "steward",
		Short: "Steward: privacy-first device management",
		Long: "Steward is a self-hosted, multi-tenant device management server.\n\n" +
			"`steward serve` runs the server. The other commands talk to a running server through\n" +
			"its API (sign in with `steward login`, or pass an API token with --token or STEWARD_TOKEN);\n" +
			"only migrate, `admin bootstrap` without --server and `audit verify --db/--file` touch the database or files directly.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&r.server, "server", os.Getenv("STEWARD_SERVER"), "server URL, such as https://127.0.0.1:8443 (default: the one you logged in to; env STEWARD_SERVER)")
	pf.StringVar(&r.token, "token", "", "API token (env STEWARD_TOKEN); default: the session from 'steward login'")
	pf.StringVar(&r.fingerprint, "fingerprint", os.Getenv("STEWARD_FINGERPRINT"), "pin the server certificate's SHA256 fingerprint (as printed by 'steward serve')")
	pf.StringVar(&r.caFile, "ca-cert", os.Getenv("STEWARD_CA_CERT"), "PEM file of a CA to trust for the server certificate")
	pf.StringVar(&r.tenant, "tenant", "", "tenant ID to act on (default: your home tenant)")
	pf.BoolVar(&r.json, "json", false, "print JSON instead of a table")
	root.AddCommand(newServeCmd(), newMigrateCmd(), newVersionCmd(),
		newLoginCmd(r), newLogoutCmd(r), newTenantCmd(r), newAdminCmd(r), newRoleCmd(r), newTokenCmd(r), newAuditCmd(r),
		newPrivacyCmd(r), newPersonCmd(r), newDeviceCmd(r), newEnrolmentCmd(r), newPushCertificateCmd(r), newKeysCmd(), newSimulateCmd(r))
	root.AddCommand(newBackupCmd())
	addFleetCmds(r, root)
	return root
}

// client builds an API client from flags, the environment and the saved
// login, in that order.
func (r *remote) client() (*client.Client, error) {
	creds, err := client.LoadCredentials()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	server, fp, ca := r.server, r.fingerprint, r.caFile
	if server == "" {
		server = creds.Server
	}
	if server == "" {
		return nil, errors.New("no server: run `steward login --server https://HOST:PORT` or pass --server")
	}
	sameServer := server == creds.Server
	if fp == "" && ca == "" && sameServer {
		fp, ca = creds.Fingerprint, creds.CAFile
	}
	secret := r.token
	if secret == "" {
		secret = os.Getenv("STEWARD_TOKEN")
	}
	if secret == "" && sameServer {
		secret = creds.Secret
	}
	return client.New(server, secret, client.TLSOptions{Fingerprint: fp, CAFile: ca})
}

// tenantID is --tenant, or the caller's home tenant.
func (r *remote) tenantID(ctx context.Context, c *client.Client) (string, error) {
	if r.tenant != "" {
		return r.tenant, nil
	}
	var me struct {
		HomeTenant struct {
			ID string `json:"id"`
		} `json:"home_tenant"`
	}
	if err := c.Do(ctx, "GET", "/api/v1/me", nil, &me); err != nil {
		return "", err
	}
	return me.HomeTenant.ID, nil
}

// print writes v as JSON, or as a table of the given columns.
func (r *remote) print(w io.Writer, v any, columns []string, row func(int) []string, n int) error {
	if r.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, c := range columns {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c)
	}
	fmt.Fprintln(tw)
	for i := 0; i < n; i++ {
		for j, c := range row(i) {
			if j > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
