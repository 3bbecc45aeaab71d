package main

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
)

// newDeviceCommandsCmd lists a device's MDM commands and cancels the ones
// not yet delivered.
func newDeviceCommandsCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "commands", Short: "A device's MDM commands: list them, cancel one not yet delivered"}
	list := &cobra.Command{
		Use: "list DEVICE-ID", Short: "The device's commands, oldest first, and their state", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.CommandView](a, tenantPath(a.tenant, "/devices/"+pathSegment(args[0])+"/commands"))
				if err != nil {
					return err
				}
				return printCommands(r, cmd, out)
			})
		},
	}
	var reason string
	cancel := &cobra.Command{
		Use:   "cancel DEVICE-ID COMMAND-ID [--reason TEXT]",
		Short: "Cancel a command still queued or answered \"not now\"; a delivered one cannot be recalled",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var out api.CommandView
				path := tenantPath(a.tenant, "/devices/"+pathSegment(args[0])+"/commands/"+pathSegment(args[1])+"/cancel")
				if err := a.do("POST", path, api.CancelCommandRequest{Reason: reason}, &out); err != nil {
					return err
				}
				return printCommands(r, cmd, api.List[api.CommandView]{Items: []api.CommandView{out}})
			})
		},
	}
	cancel.Flags().StringVar(&reason, "reason", "", "why, for the audit log and the command's record (10 to 200 characters; required to stop an action's command, such as a lock or a wipe)")
	cmd.AddCommand(list, cancel)
	return cmd
}

func printCommands(r *remote, cmd *cobra.Command, out api.List[api.CommandView]) error {
	return r.print(cmd.OutOrStdout(), out, []string{"COMMAND", "CHANNEL", "TYPE", "STATE", "QUEUED", "BY", "ERROR"}, func(i int) []string {
		c := out.Items[i]
		problem := ""
		if c.ErrorChain != "" {
			problem = mdm.ErrorSummary(c.ErrorChain)
		}
		channel := "device"
		if c.UserChannel != "" {
			channel = "user " + c.UserChannel
		}
		return []string{c.ID, channel, c.RequestType, c.State, c.CreatedAt.Format("2006-01-02 15:04"), c.RequestedBy, problem}
	}, len(out.Items))
}

// newDeviceUserChannelsCmd lists a Mac's user channels (or finds the one of
// an account name: Steward keeps no names, only a keyed index of them) and
// closes one whose user left.
func newDeviceUserChannelsCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "user-channels", Short: "A Mac's user channels, one per user who logged in: list them, close one"}
	var account, lookupReason string
	list := &cobra.Command{
		Use:   "list DEVICE-ID [--account SHORT-NAME --reason TEXT]",
		Short: "The device's user channels; --account finds one account's, with a reason",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if account != "" && strings.TrimSpace(lookupReason) == "" {
				return errors.New("--reason is required with --account: whether an account used the device is a question about a person, " +
					"audited and in their access record")
			}
			return r.call(cmd, func(a *apiCall) error {
				path := tenantPath(a.tenant, "/devices/"+pathSegment(args[0])+"/user-channels")
				var out api.List[api.UserChannelView]
				var err error
				if account == "" {
					err = a.do("GET", path, nil, &out)
				} else {
					err = a.do("POST", path+"/lookup", api.UserChannelLookupRequest{Account: account, Reason: lookupReason}, &out)
				}
				if err != nil {
					return err
				}
				return printUserChannels(r, cmd, out)
			})
		},
	}
	list.Flags().StringVar(&account, "account", "", "an account's short name: only its channel")
	list.Flags().StringVar(&lookupReason, "reason", "", "why you ask whether the account used the device (required with --account; audited, in the person's access record)")
	var reason string
	closeCmd := &cobra.Command{
		Use:   "close DEVICE-ID CHANNEL-ID [--reason TEXT]",
		Short: "Close a user channel for good (a user who left): its token goes, its open commands are cancelled",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var out api.UserChannelView
				path := tenantPath(a.tenant, "/devices/"+pathSegment(args[0])+"/user-channels/"+pathSegment(args[1])+"/close")
				if err := a.do("POST", path, api.CancelCommandRequest{Reason: reason}, &out); err != nil {
					return err
				}
				return printUserChannels(r, cmd, api.List[api.UserChannelView]{Items: []api.UserChannelView{out}})
			})
		},
	}
	closeCmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log and the cancelled commands' record (10 to 200 characters)")
	cmd.AddCommand(list, closeCmd)
	return cmd
}

func printUserChannels(r *remote, cmd *cobra.Command, out api.List[api.UserChannelView]) error {
	return r.print(cmd.OutOrStdout(), out, []string{"USER CHANNEL", "OPEN", "PUSHABLE", "LAST CHECK-IN", "SINCE"}, func(i int) []string {
		uc := out.Items[i]
		last := "never"
		if uc.LastCheckin != nil {
			last = uc.LastCheckin.Format("2006-01-02 15:04")
		}
		return []string{uc.ID, yesNo(uc.Open), yesNo(uc.Pushable), last, uc.CreatedAt.Format("2006-01-02 15:04")}
	}, len(out.Items))
}
