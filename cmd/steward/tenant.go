package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
)

// call runs fn with an API client and the tenant the command acts on.
func (r *remote) call(cmd *cobra.Command, fn func(c *apiCall) error) error {
	c, err := r.client()
	if err != nil {
		return err
	}
	tenant, err := r.tenantID(cmd.Context(), c)
	if err != nil {
		return err
	}
	return fn(&apiCall{cmd: cmd, r: r, c: c, tenant: tenant})
}

func tenantPath(tenant, rest string) string {
	return "/api/v1/tenants/" + url.PathEscape(tenant) + rest
}

func newTenantCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Manage tenants (an MSP's customers)"}
	list := &cobra.Command{
		Use: "list", Short: "List the tenants you can see", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			var out api.List[api.TenantView]
			if err := c.Do(cmd.Context(), "GET", "/api/v1/tenants", nil, &out); err != nil {
				return err
			}
			return printTenants(r, cmd, out)
		},
	}
	get := &cobra.Command{
		Use: "get", Short: "Show a tenant (--tenant, default your home tenant)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var t api.TenantView
				if err := a.do("GET", tenantPath(a.tenant, ""), nil, &t); err != nil {
					return err
				}
				return printTenants(r, cmd, api.List[api.TenantView]{Items: []api.TenantView{t}})
			})
		},
	}
	var create api.TenantCreateRequest
	createCmd := &cobra.Command{
		Use: "create NAME", Short: "Create a customer tenant under --tenant (a provider)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			create.Name = args[0]
			return r.call(cmd, func(a *apiCall) error {
				var t api.TenantView
				if err := a.do("POST", tenantPath(a.tenant, "/customers"), create, &t); err != nil {
					return err
				}
				return printTenants(r, cmd, api.List[api.TenantView]{Items: []api.TenantView{t}})
			})
		},
	}
	createCmd.Flags().StringVar(&create.Slug, "slug", "", "URL-safe identifier (default: derived from the name)")
	createCmd.Flags().BoolVar(&create.RequireMFA, "require-mfa", false, "require a second factor for every admin of the tenant")
	createCmd.Flags().StringSliceVar(&create.AllowedCIDRs, "allowed-cidrs", nil, "IP allowlist (CIDRs)")

	var name string
	var requireMFA bool
	var cidrs []string
	update := &cobra.Command{
		Use: "update", Short: "Change --tenant's name, MFA rule or IP allowlist", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var patch api.TenantPatchRequest
			if cmd.Flags().Changed("name") {
				patch.Name = &name
			}
			if cmd.Flags().Changed("require-mfa") {
				patch.RequireMFA = &requireMFA
			}
			if cmd.Flags().Changed("allowed-cidrs") {
				patch.AllowedCIDRs = &cidrs
			}
			return r.call(cmd, func(a *apiCall) error {
				var t api.TenantView
				if err := a.do("PATCH", tenantPath(a.tenant, ""), patch, &t); err != nil {
					return err
				}
				return printTenants(r, cmd, api.List[api.TenantView]{Items: []api.TenantView{t}})
			})
		},
	}
	update.Flags().StringVar(&name, "name", "", "new name")
	update.Flags().BoolVar(&requireMFA, "require-mfa", false, "require a second factor for every admin of the tenant")
	update.Flags().StringSliceVar(&cidrs, "allowed-cidrs", nil, "IP allowlist (CIDRs); pass --allowed-cidrs= to clear it")
	var confirmed bool
	del := &cobra.Command{
		Use: "delete --tenant ID --yes", Short: "Delete the customer tenant given by --tenant, with its data and keys", Args: cobra.NoArgs,
		Long: "Delete a customer tenant with everything Steward holds for it: people, devices, inventory and its key\n" +
			"vault (so its data in backups becomes unreadable), and its Apple CA and push certificate. Its audit log\n" +
			"stays. Refused while it has admins, customer tenants or devices under management.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if r.tenant == "" {
				return fmt.Errorf("--tenant is required, so a tenant is never deleted by default")
			}
			if !confirmed {
				return fmt.Errorf("deleting a tenant destroys its data and keys for good: re-run with --yes to confirm")
			}
			return r.call(cmd, func(a *apiCall) error { return a.do("DELETE", tenantPath(a.tenant, ""), nil, nil) })
		},
	}
	del.Flags().BoolVar(&confirmed, "yes", false, "confirm that the tenant's data and keys are destroyed")
	customers := &cobra.Command{
		Use: "customers", Short: "List the customer tenants of --tenant", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.TenantView](a, tenantPath(a.tenant, "/customers"))
				if err != nil {
					return err
				}
				return printTenants(r, cmd, out)
			})
		},
	}
	cmd.AddCommand(list, get, createCmd, update, del, customers)
	return cmd
}

func printTenants(r *remote, cmd *cobra.Command, l api.List[api.TenantView]) error {
	return r.print(cmd.OutOrStdout(), l, []string{"ID", "KIND", "SLUG", "NAME", "MFA", "ALLOWLIST"}, func(i int) []string {
		t := l.Items[i]
		return []string{t.ID, t.Kind, t.Slug, t.Name, requiredOrDash(t.RequireMFA), strings.Join(t.AllowedCIDRs, ",")}
	}, len(l.Items))
}

func requiredOrDash(b bool) string {
	if b {
		return "required"
	}
	return "-"
}
