package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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
			"re-encrypted: only the per-person and per-device data keys are re-wrapped. Safe while serving.\n" +
			"A tenant's keys are rotated again two minutes after their last rotation at the earliest, so that no\n" +
			"node still holds the keyset it cached; a run over every tenant skips those, and lists why.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			app, err := openApp(cmd.Context(), cfg, cmd.Flags(), false)
			if err != nil {
				return err
			}
			defer app.Close()
			ctx := cmd.Context()
			tenants := []string{tenant}
			if tenant != "" {
				if _, err := app.Store.Read().Tenants().Get(ctx, tenant); errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("there is no tenant %s", tenant)
				} else if err != nil {
					return err
				}
			} else {
				if tenants, err = allKeysetTenants(ctx, app.Store); err != nil {
					return err
				}
			}
			results, skipped := []keys.RotationResult{}, 0
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
				if (errors.Is(err, keys.ErrRotatedRecently) || errors.Is(err, keys.ErrOvertaken)) && tenant == "" {
					// A second run after one that stopped part-way skips
					// the tenants the first finished, and a tenant another
					// run rotated meanwhile is done.
					fmt.Fprintf(cmd.ErrOrStderr(), "\rtenant %d/%d: skipped: %v\n", i+1, len(tenants), err)
					results = append(results, keys.RotationResult{TenantID: t, Skipped: err.Error()})
					skipped++
					continue
				}
				if err != nil {
					return fmt.Errorf("tenant %s: %w", t, err)
				}
				fmt.Fprintln(cmd.ErrOrStderr())
				results = append(results, res)
			}
			if skipped > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d tenants skipped (see above); %d rotated\n", skipped, len(tenants), len(results)-skipped)
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
			"  3. restart the nodes without --previous-master-key-file; keep OLD offline as long as backups taken\n" +
			"     before the rotation are kept (their key is sealed under it), then destroy it.\n" +
			"It works in short transactions, so nodes keep serving; if it stops, run it again to finish.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := resolveConfig(mcfg, cmd.Flags())
			if err != nil {
				return err
			}
			if mcfg.PreviousMasterKeyFile == "" {
				return fmt.Errorf("--previous-master-key-file is required: the key being replaced")
			}
			app, err := server.Open(cmd.Context(), *mcfg, log, false)
			if err != nil {
				return err
			}
			defer app.Close()
			ctx := cmd.Context()
			show, last := newProgressLine(cmd.ErrOrStderr()), ""
			progress := func(what string, n int) {
				if what != last && last != "" {
					show("") // each job's total stays on its own line
				}
				last = what
				show(fmt.Sprintf("%s: %d re-sealed", what, n))
			}
			jobs := server.MasterResealJobs(app.Privacy.Vault(), app.Sealer)
			resealed, err := store.RunReseal(ctx, app.Store, jobs, store.ResealPageSize, progress)
			show("")
			outcome := audit.OutcomeSuccess
			details := map[string]any{"resealed": resealed, "master_key_id": app.Sealer.KeyID()}
			if err != nil {
				outcome, details["error"] = audit.OutcomeFailure, err.Error()
			}
			// Recorded even when the run was interrupted (Ctrl-C cancels ctx).
			auditCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			auditErr := app.Store.Tx(auditCtx, func(q store.Queries) error {
				root, err := app.IAM.RootTenant(auditCtx)
				if err != nil {
					return err
				}
				e := iam.SystemActor.Entry(root.ID, "keys.rotate_master", "install", "master-key", outcome)
				e.Details = details
				return audit.Append(auditCtx, q, e)
			})
			if err != nil {
				// Every page written is a compare-and-swap, so what was
				// done stays done and a second run finishes the rest.
				err = fmt.Errorf("%w\n%d values were re-sealed before it stopped; run the command again to finish", err, resealed)
				if auditErr != nil {
					err = errors.Join(err, fmt.Errorf("recording the stop in the audit log failed: %w", auditErr))
				}
				return err
			}
			if auditErr != nil {
				return fmt.Errorf("every value was re-sealed, but recording it in the audit log failed: %w", auditErr)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Done: %d values re-sealed under master key %s.\n", resealed, app.Sealer.KeyID())
			return nil
		},
	}
	mcfg.BindFlags(rotateMaster.Flags())
	cmd.AddCommand(rotate, rotateMaster)
	return cmd
}

// allKeysetTenants lists the tenants that have a keyset, a page at a time.
func allKeysetTenants(ctx context.Context, st store.Store) ([]string, error) {
	var tenants []string
	page := store.Page{Limit: 1000}
	for {
		ks, err := st.Read().Keys().ListKeysets(ctx, page)
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			tenants = append(tenants, k.TenantID)
		}
		if len(ks) < page.Limit {
			return tenants, nil
		}
		page.After = ks[len(ks)-1].TenantID
	}
}
