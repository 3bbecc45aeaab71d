package main

import (
	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
)

// newEnrolmentCmd lists enrolment links and revokes one sent to the wrong
// person or forwarded, before someone else enrols a device with it.
func newEnrolmentCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "enrolment", Short: "Enrolment links: list them, revoke one no device finished enrolling with"}
	list := &cobra.Command{
		Use: "list", Short: "The tenant's enrolment links and their state (open, accepted, used, revoked)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.EnrolmentView](a, tenantPath(a.tenant, "/enrolments"))
				if err != nil {
					return err
				}
				return printEnrolments(r, cmd, out)
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ENROLMENT-ID",
		Short: "Revoke a link that is open, accepted or whose installation failed (that pending device is deprovisioned); " +
			"a link a device enrolled with is refused: retire the device instead",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var out api.EnrolmentView
				if err := a.do("DELETE", tenantPath(a.tenant, "/enrolments/"+pathSegment(args[0])), nil, &out); err != nil {
					return err
				}
				return printEnrolments(r, cmd, api.List[api.EnrolmentView]{Items: []api.EnrolmentView{out}})
			})
		},
	}
	cmd.AddCommand(list, revoke)
	return cmd
}

func printEnrolments(r *remote, cmd *cobra.Command, out api.List[api.EnrolmentView]) error {
	return r.print(cmd.OutOrStdout(), out, []string{"ENROLMENT", "OWNERSHIP", "PERSON", "STATE", "DEVICE", "CREATED", "EXPIRES"}, func(i int) []string {
		e := out.Items[i]
		return []string{e.ID, e.Ownership, e.SubjectID, e.State, e.DeviceID, e.CreatedAt.Format("2006-01-02 15:04"), e.ExpiresAt.Format("2006-01-02 15:04")}
	}, len(out.Items))
}
