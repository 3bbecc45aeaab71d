package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/steward-mdm/steward/internal/server"
)

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("--log-level must be debug, info, warn or error")
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// resolveConfig fills cfg from flags, environment and file, and builds the
// logger it asks for.
func resolveConfig(cfg *server.Config, fs *pflag.FlagSet) (*slog.Logger, error) {
	if err := cfg.Resolve(fs, os.Getenv); err != nil {
		return nil, err
	}
	return newLogger(cfg.LogLevel)
}

// openApp resolves the server configuration and opens the database.
func openApp(ctx context.Context, cfg *server.Config, fs *pflag.FlagSet, migrate bool) (*server.App, error) {
	log, err := resolveConfig(cfg, fs)
	if err != nil {
		return nil, err
	}
	return server.Open(ctx, *cfg, log, migrate)
}

func newServeCmd() *cobra.Command {
	cfg := &server.Config{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Steward server",
		Long: "Run the server: HTTPS API, background audit checkpoints and archiving.\n\n" +
			"With no flags it uses SQLite in ./steward-data, listens on https://127.0.0.1:8443 with a\n" +
			"self-signed certificate (fingerprint printed), applies migrations, and prints a one-time\n" +
			"bootstrap code while no admin exists. Every flag can also be set as STEWARD_<FLAG> or in --config.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			app, err := openApp(cmd.Context(), cfg, cmd.Flags(), true)
			if err != nil {
				return err
			}
			defer app.Close()
			return app.Serve(cmd.Context(), cmd.OutOrStdout())
		},
	}
	cfg.BindFlags(cmd.Flags())
	return cmd
}

// serverGCPercent lets the heap grow to three times what is live before a
// collection, instead of Go's two: a server's garbage is mostly per-request.
// At 10,000 devices it cost about 18 MiB of peak memory and bought an eighth
// more idle check-ins (bench/RESULTS.md).
const serverGCPercent = 200

// tuneGC applies serverGCPercent unless the operator set GOGC; GOMEMLIMIT,
// when set, still caps the heap.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
	}
}

func newMigrateCmd() *cobra.Command {
	cfg := &server.Config{}
	var status bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations (directly on the database)",
		Long:  "Apply pending schema migrations to the database named by --db (or the SQLite file in --data). Safe to run on several nodes at once.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := resolveConfig(cfg, cmd.Flags())
			if err != nil {
				return err
			}
			st, err := server.OpenStore(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer st.Close()
			if !status {
				n, err := st.Migrate(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s)\n", n)
			}
			applied, latest, err := st.MigrationStatus(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s schema version %d of %d\n", st.Engine(), applied, latest)
			return nil
		},
	}
	cfg.BindFlags(cmd.Flags())
	cmd.Flags().BoolVar(&status, "status", false, "only report the schema version")
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "steward %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
