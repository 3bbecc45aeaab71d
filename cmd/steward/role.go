package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
)

func newRoleCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "role", Short: "Manage roles and role assignments"}
	list := &cobra.Command{
		Use: "list", Short: "List built-in and custom roles of --tenant", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var out api.List[api.RoleView]
				if err := a.do("GET", tenantPath(a.tenant, "/roles"), nil, &out); err != nil {
					return err
				}
				return r.print(cmd.OutOrStdout(), out, []string{"ID", "NAME", "BUILT-IN", "PERMISSIONS"}, func(i int) []string {
					ro := out.Items[i]
					return []string{ro.ID, ro.Name, fmt.Sprint(ro.BuiltIn), strings.Join(ro.Permissions, ",")}
				}, len(out.Items))
			})
		},
	}
	var req api.RoleRequest
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a custom role (see GET /api/v1/permissions)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			return r.call(cmd, func(a *apiCall) error {
				var ro api.RoleView
				if err := a.do("POST", tenantPath(a.tenant, "/roles"), req, &ro); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), ro.ID)
				return nil
			})
		},
	}
	create.Flags().StringVar(&req.Description, "description", "", "what the role is for")
	create.Flags().StringSliceVar(&req.Permissions, "permissions", nil, "comma-separated permissions")
	del := &cobra.Command{
		Use: "delete ROLE_ID", Short: "Delete an unused custom role", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error { return a.do("DELETE", tenantPath(a.tenant, "/roles/"+args[0]), nil, nil) })
		},
	}
	assign := &cobra.Command{
		Use: "assign ADMIN_ID ROLE_ID", Short: "Give an admin a role on --tenant", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.AssignmentView
				if err := a.do("POST", tenantPath(a.tenant, "/assignments"), api.AssignmentRequest{AdminID: args[0], RoleID: args[1]}, &v); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), v.ID)
				return nil
			})
		},
	}
	assignments := &cobra.Command{
		Use: "assignments", Short: "List role assignments on --tenant", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.AssignmentView](a, tenantPath(a.tenant, "/assignments"))
				if err != nil {
					return err
				}
				return r.print(cmd.OutOrStdout(), out, []string{"ID", "ADMIN", "ROLE", "SINCE"}, func(i int) []string {
					v := out.Items[i]
					return []string{v.ID, v.AdminID, v.RoleID, v.CreatedAt.Local().Format(time.DateTime)}
				}, len(out.Items))
			})
		},
	}
	unassign := &cobra.Command{
		Use: "unassign ASSIGNMENT_ID", Short: "Remove a role assignment", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				return a.do("DELETE", tenantPath(a.tenant, "/assignments/"+args[0]), nil, nil)
			})
		},
	}
	cmd.AddCommand(list, create, del, assign, assignments, unassign)
	return cmd
}

func newTokenCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	list := &cobra.Command{
		Use: "list", Short: "List API tokens of --tenant (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.TokenView](a, tenantPath(a.tenant, "/tokens"))
				if err != nil {
					return err
				}
				return r.print(cmd.OutOrStdout(), out, []string{"ID", "NAME", "ROLE", "EXPIRES", "LAST USED", "STATUS"}, func(i int) []string {
					t := out.Items[i]
					used, status := "never", "active"
					if t.LastUsedAt != nil {
						used = t.LastUsedAt.Local().Format(time.DateTime)
					}
					if t.RevokedAt != nil {
						status = "revoked"
					} else if time.Now().After(t.ExpiresAt) {
						status = "expired"
					}
					return []string{t.ID, t.Name, t.RoleID, t.ExpiresAt.Local().Format(time.DateOnly), used, status}
				}, len(out.Items))
			})
		},
	}
	var req api.TokenRequest
	create := &cobra.Command{
		Use: "create NAME", Short: "Create an API token; its secret is printed once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			return r.call(cmd, func(a *apiCall) error {
				var v api.NewTokenView
				if err := a.do("POST", tenantPath(a.tenant, "/tokens"), req, &v); err != nil {
					return err
				}
				if r.json {
					return r.print(cmd.OutOrStdout(), v, nil, nil, 0)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Token %s expires %s. Its secret is shown this once:\n", v.Token.ID, v.Token.ExpiresAt.Local().Format(time.DateOnly))
				fmt.Fprintln(cmd.OutOrStdout(), v.Secret)
				return nil
			})
		},
	}
	create.Flags().StringVar(&req.RoleID, "role", "readonly", "role the token acts with")
	create.Flags().IntVar(&req.ExpiresInDays, "expires-in-days", 90, "lifetime in days")
	revoke := &cobra.Command{
		Use: "revoke TOKEN_ID", Short: "Revoke an API token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error { return a.do("DELETE", tenantPath(a.tenant, "/tokens/"+args[0]), nil, nil) })
		},
	}
	cmd.AddCommand(list, create, revoke)
	return cmd
}
