package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/client"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/server"
)

func newAdminCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Manage admin accounts"}
	list := &cobra.Command{
		Use: "list", Short: "List the admins of --tenant", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.AdminView](a, tenantPath(a.tenant, "/admins"))
				if err != nil {
					return err
				}
				return printAdmins(r, cmd, out)
			})
		},
	}
	get := &cobra.Command{
		Use: "get ADMIN_ID", Short: "Show an admin", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.AdminView
				if err := a.do("GET", tenantPath(a.tenant, "/admins/"+args[0]), nil, &v); err != nil {
					return err
				}
				return printAdmins(r, cmd, api.List[api.AdminView]{Items: []api.AdminView{v}})
			})
		},
	}
	var role string
	invite := &cobra.Command{
		Use: "invite EMAIL DISPLAY_NAME", Short: "Invite an admin and print their one-time setup code", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.InviteView
				if err := a.do("POST", tenantPath(a.tenant, "/admins"), api.AdminInviteRequest{Email: args[0], DisplayName: args[1]}, &v); err != nil {
					return err
				}
				if role != "" {
					if err := a.do("POST", tenantPath(a.tenant, "/assignments"), api.AssignmentRequest{AdminID: v.Admin.ID, RoleID: role}, nil); err != nil {
						return fmt.Errorf("admin %s was invited but the role was not assigned: %w", v.Admin.ID, err)
					}
				}
				if r.json {
					return r.print(cmd.OutOrStdout(), v, nil, nil, 0)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Invited admin %s. Give them this one-time setup code (valid until %s):\n  %s\n"+
					"They choose a password with: steward admin setup --server URL --code CODE\n",
					v.Admin.ID, v.ExpiresAt.Local().Format(time.RFC1123), v.SetupCode)
				return nil
			})
		},
	}
	invite.Flags().StringVar(&role, "role", "", "assign this role on --tenant right away (e.g. helpdesk)")

	var name string
	var disable, enable bool
	update := &cobra.Command{
		Use: "update ADMIN_ID", Short: "Rename, disable or enable an admin", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var patch api.AdminPatchRequest
			if cmd.Flags().Changed("name") {
				patch.DisplayName = &name
			}
			if disable && enable {
				return errors.New("--disable and --enable contradict each other")
			}
			if disable || enable {
				patch.Disabled = &disable
			}
			return r.call(cmd, func(a *apiCall) error {
				var v api.AdminView
				if err := a.do("PATCH", tenantPath(a.tenant, "/admins/"+args[0]), patch, &v); err != nil {
					return err
				}
				return printAdmins(r, cmd, api.List[api.AdminView]{Items: []api.AdminView{v}})
			})
		},
	}
	update.Flags().StringVar(&name, "name", "", "new display name")
	update.Flags().BoolVar(&disable, "disable", false, "disable the account and end its sessions")
	update.Flags().BoolVar(&enable, "enable", false, "enable the account again")

	action := func(use, short, method, suffix string) *cobra.Command {
		return &cobra.Command{
			Use: use + " ADMIN_ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return r.call(cmd, func(a *apiCall) error {
					var v api.SetupCodeView
					if err := a.do(method, tenantPath(a.tenant, "/admins/"+args[0]+suffix), nil, &v); err != nil {
						return err
					}
					if v.SetupCode != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "New one-time setup code (valid until %s):\n  %s\n", v.ExpiresAt.Local().Format(time.RFC1123), v.SetupCode)
					}
					return nil
				})
			},
		}
	}
	cmd.AddCommand(list, get, invite, update,
		action("delete", "Delete an admin", "DELETE", ""),
		action("unlock", "Clear a lockout after failed logins", "POST", "/unlock"),
		action("reset-password", "Issue a new setup code; the old password stops working", "POST", "/reset-password"),
		action("reset-mfa", "Remove an admin's authenticator so they enrol again", "POST", "/reset-mfa"),
		newBootstrapCmd(r), newSetupCmd(r))
	return cmd
}

func printAdmins(r *remote, cmd *cobra.Command, l api.List[api.AdminView]) error {
	return r.print(cmd.OutOrStdout(), l, []string{"ID", "EMAIL", "NAME", "MFA", "STATUS"}, func(i int) []string {
		a := l.Items[i]
		status := "active"
		switch {
		case a.Disabled:
			status = "disabled"
		case a.LockedUntil != nil:
			status = "locked"
		case !a.PasswordSet:
			status = "invited"
		}
		mfa := "-"
		if a.MFAEnabled {
			mfa = "enrolled"
		}
		return []string{a.ID, a.Email, a.DisplayName, mfa, status}
	}, len(l.Items))
}

func newBootstrapCmd(r *remote) *cobra.Command {
	cfg := &server.Config{}
	var in api.BootstrapRequest
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create the first owner (with the code a new server printed, or directly on the database)",
		Long: "Create the first owner account and the provider tenant.\n\n" +
			"With --server and --code it uses the one-time code `steward serve` printed. Without --server it\n" +
			"opens the database itself (--data/--db), for an operator on the server machine; it works only\n" +
			"while no admin exists. The password is asked for, never passed on the command line.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := newPrompter(cmd)
			var err error
			for _, q := range []struct {
				v      *string
				prompt string
			}{{&in.Organisation, "Organisation name: "}, {&in.Email, "Your email: "}, {&in.DisplayName, "Your name: "}} {
				if *q.v == "" {
					if *q.v, err = p.ask(q.prompt); err != nil {
						return err
					}
				}
			}
			if in.Password, err = p.secret("Choose a password (12+ characters): "); err != nil {
				return err
			}
			if r.server == "" {
				app, err := openApp(cmd.Context(), cfg, cmd.Flags(), true)
				if err != nil {
					return err
				}
				defer app.Close()
				a, err := app.IAM.BootstrapDirect(cmd.Context(), iam.BootstrapInput{Organisation: in.Organisation,
					Email: in.Email, DisplayName: in.DisplayName, Password: in.Password})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Created owner %s. Sign in with `steward login`; you will enrol an authenticator then.\n", a.ID)
				return nil
			}
			if in.Code == "" {
				return errors.New("--code is required with --server")
			}
			c, err := client.New(r.server, "", client.TLSOptions{Fingerprint: r.fingerprint, CAFile: r.caFile})
			if err != nil {
				return err
			}
			var a api.AdminView
			if err := c.Do(cmd.Context(), "POST", "/api/v1/bootstrap", in, &a); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created owner %s. Sign in with `steward login`; you will enrol an authenticator then.\n", a.ID)
			return nil
		},
	}
	cfg.BindFlags(cmd.Flags())
	cmd.Flags().StringVar(&in.Code, "code", "", "the one-time bootstrap code printed by 'steward serve'")
	cmd.Flags().StringVar(&in.Organisation, "organisation", "", "your organisation's name")
	cmd.Flags().StringVar(&in.Email, "email", "", "the owner's email")
	cmd.Flags().StringVar(&in.DisplayName, "name", "", "the owner's display name")
	return cmd
}

func newSetupCmd(r *remote) *cobra.Command {
	var code string
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Choose your password with the one-time setup code you were given",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if r.server == "" || code == "" {
				return errors.New("--server and --code are required")
			}
			pw, err := newPrompter(cmd).secret("Choose a password (12+ characters): ")
			if err != nil {
				return err
			}
			c, err := client.New(r.server, "", client.TLSOptions{Fingerprint: r.fingerprint, CAFile: r.caFile})
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), "POST", "/api/v1/auth/setup", api.SetupRequest{Code: code, Password: pw}, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Password set. Sign in with `steward login`.")
			return nil
		},
	}
	cmd.Flags().StringVar(&code, "code", "", "the one-time setup code")
	return cmd
}
