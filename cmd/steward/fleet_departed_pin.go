package main

import (
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
)

func newActionDepartedPINsCmd(r *remote) *cobra.Command {
	var serial, device string
	cmd := &cobra.Command{
		Use:   "departed-pins [--serial SERIAL | --device DEVICE-ID]",
		Short: "Find My PINs kept for company Macs that left management at a lock or an erase",
		Long: "A company Mac that left management (erased, or deleted while silent at its firmware lock) still needs\n" +
			"its Find My PIN; Steward keeps that PIN for a year after it left, beyond its device record. Find it\n" +
			"by the serial number on the Mac in hand (when the tenant's policy keeps company devices' identity;\n" +
			"otherwise by the device ID its record had), then read it with `steward action departed-pin`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				q := url.Values{}
				if serial != "" {
					q.Set("serial_number", serial)
				}
				if device != "" {
					q.Set("device_id", device)
				}
				p := tenantPath(a.tenant, "/departed-pins")
				if len(q) > 0 {
					p += "?" + q.Encode()
				}
				all, err := collect[api.DepartedPINView](a, p)
				if err != nil {
					return err
				}
				return r.print(cmd.OutOrStdout(), all, []string{"ACTION-ID", "ACTION", "DEVICE-ID", "SENT", "LEFT", "KEPT UNTIL"}, func(i int) []string {
					v := all.Items[i]
					return []string{v.ActionID, v.Action, v.DeviceID, v.SentAt.Format(time.DateTime), v.LeftAt.Format(time.DateTime), v.ExpiresAt.Format(time.DateOnly)}
				}, len(all.Items))
			})
		},
	}
	cmd.Flags().StringVar(&serial, "serial", "", "the serial number on the Mac")
	cmd.Flags().StringVar(&device, "device", "", "the device ID its record had")
	return cmd
}

func newActionDepartedPINCmd(r *remote) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "departed-pin ACTION-ID --reason TEXT",
		Short: "The kept Find My PIN of a Mac that left management (audited with the reason)",
		Long: "ACTION-ID is in `steward action departed-pins`. Needs the permission the action needs (device.lock\n" +
			"for a lock's PIN, device.wipe for a wipe's) on the whole tenant: the PIN outlives the Mac's groups.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return revealPIN(r, cmd, reason, "/departed-pins/"+pathSegment(args[0])+"/pin")
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the PIN is needed (required; audited)")
	return cmd
}
