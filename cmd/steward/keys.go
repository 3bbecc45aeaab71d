package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/server"
	"github.com/steward-mdm/steward/internal/store"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Rotate encryption keys (directly on the database, online)"}
	cfg := &server.Config{}
	var tenant string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate tenant keys: a new wrapping key, every data key re-wrapped, old keys deleted",
		Long: "Rotates the wrapping keyset of one tenant (--tenant-id) or of every tenant. Personal values are not\n" +
			"re-encrypted: only the per-person and per-device data keys are re-wrapped. Safe while serving.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			app, err := openApp(cmd.Context(), cfg, cmd.Flags(), false)
			if err != nil {
				return err
			}
			defer app.Close()
			ctx := cmd.Context()
			tenants := []string{tenant}
			if tenant == "" {
				ks, err := app.Store.Read().Keys().ListKeysets(ctx)
				if err != nil {
					return err
				}
				tenants = tenants[:0]
				for _, k := range ks {
					tenants = append(tenants, k.TenantID)
				}
			}
			var results []keys.RotationResult
			for i, t := range tenants {
				var res keys.RotationResult
				err := app.Store.Tx(ctx, func(q store.Queries) error {
					var err error
					res, err = app.Privacy.Vault().RotateTenant(ctx, q, t, func(n int) {
						fmt.Fprintf(cmd.ErrOrStderr(), "\rtenant %d/%d: %d data keys re-wrapped", i+1, len(tenants), n)
					})
					if err != nil {
						return err
					}
					e := iam.SystemActor.Entry(t, "keys.rotate", "tenant", t, audit.OutcomeSuccess)
					e.Details = map[string]any{"data_keys": res.DataKeys, "retired_keys": res.RetiredIDs}
					return audit.Append(ctx, q, e)
				})
				if err != nil {
					return fmt.Errorf("tenant %s: %w", t, err)
				}
				fmt.Fprintln(cmd.ErrOrStderr())
				results = append(results, res)
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(results)
		},
	}
	cfg.BindFlags(rotate.Flags())
	rotate.Flags().StringVar(&tenant, "tenant-id", "", "rotate only this tenant")

	mcfg := &server.Config{}
	rotateMaster := &cobra.Command{
		Use:   "rotate-master",
		Short: "Re-wrap every tenant keyset and sealed secret under the current master key",
		Long: "Online master-key rotation:\n" +
			"  1. generate a new key file and start every node with --master-key-file NEW --previous-master-key-file OLD;\n" +
			"  2. run this command with the same two flags: it re-wraps everything still under OLD;\n" +
			"  3. once remote actions awaiting approval are decided or expired (their options stay sealed under\n" +
			"     OLD), restart the nodes without --previous-master-key-file; keep OLD offline as long as backups\n" +
			"     taken before the rotation are kept (their key is sealed under it), then destroy it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mcfg.PreviousMasterKeyFile == "" && os.Getenv("STEWARD_PREVIOUS_MASTER_KEY_FILE") == "" {
				return fmt.Errorf("--previous-master-key-file is required: the key being replaced")
			}
			app, err := openApp(cmd.Context(), mcfg, cmd.Flags(), false)
			if err != nil {
				return err
			}
			defer app.Close()
			ctx := cmd.Context()
			var res keys.RotationResult
			var resealed int
			err = app.Store.Tx(ctx, func(q store.Queries) error {
				var err error
				if res, err = app.Privacy.Vault().RotateMaster(ctx, q, app.Sealer); err != nil {
					return err
				}
				if resealed, err = server.ResealSecrets(ctx, q, app.Sealer); err != nil {
					return err
				}
				root, err := app.IAM.RootTenant(ctx)
				if err != nil {
					return err
				}
				e := iam.SystemActor.Entry(root.ID, "keys.rotate_master", "install", "master-key", audit.OutcomeSuccess)
				e.Details = map[string]any{"keysets": res.Keysets, "secrets": resealed, "master_key_id": app.Sealer.KeyID()}
				return audit.Append(ctx, q, e)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Re-wrapped %d tenant keysets and %d sealed secrets under master key %s.\n", res.Keysets, resealed, app.Sealer.KeyID())
			return nil
		},
	}
	mcfg.BindFlags(rotateMaster.Flags())
	cmd.AddCommand(rotate, rotateMaster)
	return cmd
}
