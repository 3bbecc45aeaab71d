package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
)

// newEnrolmentCmd creates enrolment links, lists them and revokes one sent
// to the wrong person or forwarded, before someone else enrols a device
// with it.
func newEnrolmentCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "enrolment", Short: "Enrolment links: create one, list them, revoke one no device finished enrolling with"}
	var in api.EnrolmentRequest
	create := &cobra.Command{
		Use: "create", Args: cobra.NoArgs,
		Short: "Create an enrolment link for one device: shown once here, or mailed to the person (--mail), " +
			"which only a mailed link's person can answer the full-wipe question of a personal device through",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.NewEnrolmentView
				if err := a.do("POST", tenantPath(a.tenant, "/enrolments"), in, &v); err != nil {
					return err
				}
				if r.json {
					return r.print(cmd.OutOrStdout(), v, nil, nil, 0)
				}
				w, until := cmd.OutOrStdout(), v.Enrolment.ExpiresAt.Format(time.RFC1123)
				if v.Link == "" {
					fmt.Fprintf(w, "Enrolment %s: the link is mailed to the person; valid until %s.\n", v.Enrolment.ID, until)
					return nil
				}
				fmt.Fprintf(w, "Enrolment %s: open this link on the device (valid until %s, shown once):\n%s\n", v.Enrolment.ID, until, v.Link)
				return nil
			})
		},
	}
	create.Flags().StringVar(&in.Ownership, "ownership", "", "corporate, personal, user_enrolled or shared")
	create.Flags().StringVar(&in.SubjectID, "person", "", "the person the device is for (required for personal and user_enrolled)")
	create.Flags().StringVar(&in.GroupID, "group", "", "a group the device joins")
	create.Flags().IntVar(&in.TTLHours, "ttl-hours", 0, "lifetime in hours (1 to 720; default 168)")
	create.Flags().BoolVar(&in.Notify, "mail", false, "mail the link to the person instead of showing it")
	_ = create.MarkFlagRequired("ownership")
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
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func printEnrolments(r *remote, cmd *cobra.Command, out api.List[api.EnrolmentView]) error {
	return r.print(cmd.OutOrStdout(), out, []string{"ENROLMENT", "OWNERSHIP", "PERSON", "STATE", "DEVICE", "CREATED", "EXPIRES"}, func(i int) []string {
		e := out.Items[i]
		return []string{e.ID, e.Ownership, e.SubjectID, e.State, e.DeviceID, e.CreatedAt.Format("2006-01-02 15:04"), e.ExpiresAt.Format("2006-01-02 15:04")}
	}, len(out.Items))
}
