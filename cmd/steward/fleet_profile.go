package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/payloads"
	"github.com/steward-mdm/steward/internal/device"
)

// profileSource holds the flags naming a profile's content.
type profileSource struct {
	name, definitionFile, mobileconfig string
}

func (p *profileSource) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.name, "name", "", "the profile's name in Steward")
	cmd.Flags().StringVar(&p.definitionFile, "definition-file", "", "a Steward profile definition (JSON; - for standard input)")
	cmd.Flags().StringVar(&p.mobileconfig, "mobileconfig", "", "a .mobileconfig file to upload as it is (signed or not)")
	cmd.MarkFlagsMutuallyExclusive("definition-file", "mobileconfig")
}

// input reads the content named by the flags. It returns an error when
// neither or both sources are given, or a file cannot be read.
func (p *profileSource) input(cmd *cobra.Command) (device.ProfileInput, error) {
	in := device.ProfileInput{Name: p.name}
	switch {
	case p.definitionFile != "":
		raw, err := readJSONFile(cmd, "definition-file", p.definitionFile)
		if err != nil {
			return in, err
		}
		in.Definition = raw
	case p.mobileconfig != "":
		raw, err := readMobileconfig(p.mobileconfig)
		if err != nil {
			return in, err
		}
		in.Custom = raw
	default:
		return in, errors.New("give the profile's content with --definition-file or --mobileconfig")
	}
	return in, nil
}

// readMobileconfig reads an uploaded profile, refusing files the server
// would refuse for their size before sending them.
func readMobileconfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--mobileconfig: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, payloads.MaxCustomProfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("--mobileconfig: %w", err)
	}
	if len(raw) > payloads.MaxCustomProfileSize {
		return nil, fmt.Errorf("--mobileconfig: %s is larger than the %d KB a profile may have", path, payloads.MaxCustomProfileSize>>10)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("--mobileconfig: %s is empty", path)
	}
	return raw, nil
}

func newProfileCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Configuration profiles: create, assign to groups, follow their state on devices",
		Long: "A profile is built from a Steward definition (JSON: Wi-Fi, VPN, mail, passcode, restrictions…)\n" +
			"or uploaded as a .mobileconfig. Assign it to groups; their members install it. Secrets in a\n" +
			"definition are stored encrypted and never shown again.",
	}
	cmd.AddCommand(newProfileCreateCmd(r), newProfileListCmd(r), newProfileShowCmd(r), newProfileUpdateCmd(r),
		newProfileDeleteCmd(r), newProfileAssignCmd(r, true), newProfileAssignCmd(r, false), newProfileStatusCmd(r))
	return cmd
}

func printProfiles(r *remote, cmd *cobra.Command, out api.List[api.ProfileView]) error {
	return r.print(cmd.OutOrStdout(), out, []string{"ID", "NAME", "KIND", "IDENTIFIER", "PAYLOADS", "PERSONAL OK", "VERSION"}, func(i int) []string {
		p := out.Items[i]
		return []string{p.ID, p.Name, p.Kind, p.Identifier, strings.Join(p.PayloadTypes, ","), yesNo(p.ForPersonalDevices), shortVersion(p.Version)}
	}, len(out.Items))
}

func newProfileCreateCmd(r *remote) *cobra.Command {
	var src profileSource
	cmd := &cobra.Command{
		Use:   "create --name NAME (--definition-file FILE | --mobileconfig FILE)",
		Short: "Create a profile from a definition or a .mobileconfig",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(src.name) == "" {
				return errors.New("--name is required")
			}
			in, err := src.input(cmd)
			if err != nil {
				return err
			}
			return r.call(cmd, func(a *apiCall) error {
				var p api.ProfileView
				if err := a.do("POST", tenantPath(a.tenant, "/profiles"), in, &p); err != nil {
					return err
				}
				return printProfiles(r, cmd, api.List[api.ProfileView]{Items: []api.ProfileView{p}})
			})
		},
	}
	src.register(cmd)
	return cmd
}

func newProfileListCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List profiles (secrets are never shown)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.ProfileView](a, tenantPath(a.tenant, "/profiles"))
				if err != nil {
					return err
				}
				return printProfiles(r, cmd, out)
			})
		},
	}
}

func newProfileShowCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "show PROFILE-ID", Short: "A profile, its groups and definition (secrets shown only as set)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var p api.ProfileView
				if err := a.do("GET", tenantPath(a.tenant, "/profiles/"+pathSegment(args[0])), nil, &p); err != nil {
					return err
				}
				if err := keyValues(r, cmd, p, [][2]string{{"id", p.ID}, {"name", p.Name}, {"identifier", p.Identifier},
					{"kind", p.Kind}, {"payloads", strings.Join(p.PayloadTypes, ", ")}, {"personal devices", yesNo(p.ForPersonalDevices)},
					{"groups", strings.Join(p.Groups, ", ")}, {"version", p.Version},
					{"updated", p.UpdatedAt.Format("2006-01-02 15:04")}}); err != nil || r.json {
					return err
				}
				if len(p.Definition) > 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "\nDefinition:")
					return printJSON(cmd.OutOrStdout(), p.Definition)
				}
				return nil
			})
		},
	}
}

func newProfileUpdateCmd(r *remote) *cobra.Command {
	var src profileSource
	cmd := &cobra.Command{
		Use:   "update PROFILE-ID (--definition-file FILE | --mobileconfig FILE) [--name NAME]",
		Short: "Replace a profile's content; devices receive the new version",
		Long: "In a definition, a secret given as {\"set\": true} (as `steward profile show` prints it) keeps\n" +
			"the stored secret. Without --name the profile keeps its name.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := src.input(cmd)
			if err != nil {
				return err
			}
			return r.call(cmd, func(a *apiCall) error {
				path := tenantPath(a.tenant, "/profiles/"+pathSegment(args[0]))
				if in.Name == "" {
					var cur api.ProfileView
					if err := a.do("GET", path, nil, &cur); err != nil {
						return err
					}
					in.Name = cur.Name
				}
				var p api.ProfileView
				if err := a.do("PUT", path, in, &p); err != nil {
					return err
				}
				return printProfiles(r, cmd, api.List[api.ProfileView]{Items: []api.ProfileView{p}})
			})
		},
	}
	src.register(cmd)
	return cmd
}

func newProfileDeleteCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "delete PROFILE-ID", Short: "Remove a profile from every device and delete it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				if err := a.do("DELETE", tenantPath(a.tenant, "/profiles/"+pathSegment(args[0])), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted profile %s; devices that had it are told to remove it.\n", args[0])
				return nil
			})
		},
	}
}

// newProfileAssignCmd builds `profile assign` or, with assign false,
// `profile unassign`.
func newProfileAssignCmd(r *remote, assign bool) *cobra.Command {
	use, short, method, done := "assign", "Assign a profile to a group: its members install it", "PUT", "assigned to"
	if !assign {
		use, short, method, done = "unassign", "Stop assigning a profile to a group: its members remove it", "DELETE", "no longer assigned to"
	}
	return &cobra.Command{
		Use: use + " PROFILE-ID GROUP-ID", Short: short, Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				if err := a.do(method, tenantPath(a.tenant, "/profiles/"+pathSegment(args[0])+"/groups/"+pathSegment(args[1])), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Profile %s is %s group %s.\n", args[0], done, args[1])
				return nil
			})
		},
	}
}

func printDeviceProfiles(r *remote, cmd *cobra.Command, out api.List[api.DeviceProfileView]) error {
	return r.print(cmd.OutOrStdout(), out, []string{"DEVICE", "PROFILE", "STATUS", "VERSION", "UPDATED", "ERROR"}, func(i int) []string {
		s := out.Items[i]
		return []string{s.DeviceID, s.ProfileID, s.Status, shortVersion(s.Version), s.UpdatedAt.Format("2006-01-02 15:04"), s.Error}
	}, len(out.Items))
}

func newProfileStatusCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "status PROFILE-ID", Short: "The profile's state on each device (pending, installed, failed…)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.DeviceProfileView](a, tenantPath(a.tenant, "/profiles/"+pathSegment(args[0])+"/devices"))
				if err != nil {
					return err
				}
				return printDeviceProfiles(r, cmd, out)
			})
		},
	}
}

func newDeviceProfilesCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "profiles DEVICE-ID", Short: "A device's profiles and their state", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var out api.List[api.DeviceProfileView]
				if err := a.do("GET", tenantPath(a.tenant, "/devices/"+pathSegment(args[0])+"/profiles"), nil, &out); err != nil {
					return err
				}
				return printDeviceProfiles(r, cmd, out)
			})
		},
	}
}
