package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/device"
)

// groupRuleFlags are the ways to give a dynamic group's rule.
type groupRuleFlags struct {
	rule, ruleFile string
}

func (g *groupRuleFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&g.rule, "rule", "", `the rule as JSON, e.g. '{"platform":"ios"}' (makes a dynamic group)`)
	cmd.Flags().StringVar(&g.ruleFile, "rule-file", "", "read the rule from this JSON file (- for standard input)")
	cmd.MarkFlagsMutuallyExclusive("rule", "rule-file")
}

// read returns the rule given, or nil when neither flag is set.
func (g *groupRuleFlags) read(cmd *cobra.Command) (json.RawMessage, error) {
	switch {
	case g.rule != "":
		return parseJSONDocument("rule", []byte(g.rule))
	case g.ruleFile != "":
		return readJSONFile(cmd, "rule-file", g.ruleFile)
	}
	return nil, nil
}

func newGroupCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Device groups: static lists or dynamic rules; profiles and actions target them",
		Long: "A static group holds the devices you add. A dynamic group holds the devices its rule matches\n" +
			"and is re-evaluated as inventory changes (or at once with `steward group refresh`).",
	}
	cmd.AddCommand(newGroupListCmd(r), newGroupCreateCmd(r), newGroupShowCmd(r), newGroupUpdateCmd(r), newGroupDeleteCmd(r),
		newGroupMembersCmd(r), newGroupMemberChangeCmd(r, "add"), newGroupMemberChangeCmd(r, "remove"), newGroupRefreshCmd(r))
	return cmd
}

func printGroups(r *remote, cmd *cobra.Command, out api.List[api.GroupView]) error {
	return r.print(cmd.OutOrStdout(), out, []string{"ID", "NAME", "KIND", "MEMBERS", "RULE"}, func(i int) []string {
		g := out.Items[i]
		return []string{g.ID, g.Name, g.Kind, strconv.Itoa(g.Members), g.RuleText}
	}, len(out.Items))
}

func newGroupListCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List groups with their kind, member count and rule", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.GroupView](a, tenantPath(a.tenant, "/groups"))
				if err != nil {
					return err
				}
				return printGroups(r, cmd, out)
			})
		},
	}
}

func newGroupCreateCmd(r *remote) *cobra.Command {
	var static bool
	var description string
	var rule groupRuleFlags
	cmd := &cobra.Command{
		Use:   "create NAME (--static | --rule JSON | --rule-file FILE)",
		Short: "Create a static group, or a dynamic one from a rule",
		Long: "With --static the group starts empty; add devices with `steward group add`. With --rule or\n" +
			"--rule-file it is dynamic: its members are the devices the rule matches.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := api.GroupRequest{Name: args[0], Description: description, Kind: "static"}
			raw, err := rule.read(cmd)
			if err != nil {
				return err
			}
			switch {
			case static && raw != nil:
				return errors.New("a static group has no rule: give either --static or --rule/--rule-file")
			case !static && raw == nil:
				return errors.New("say what kind of group: --static, or --rule/--rule-file for a dynamic one")
			case raw != nil:
				in.Kind, in.Rule = "dynamic", raw
			}
			return r.call(cmd, func(a *apiCall) error {
				var g api.GroupView
				if err := a.do("POST", tenantPath(a.tenant, "/groups"), in, &g); err != nil {
					return err
				}
				return printGroups(r, cmd, api.List[api.GroupView]{Items: []api.GroupView{g}})
			})
		},
	}
	cmd.Flags().BoolVar(&static, "static", false, "a group whose devices you list yourself")
	cmd.Flags().StringVar(&description, "description", "", "what the group is for")
	rule.register(cmd)
	return cmd
}

func newGroupShowCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "show GROUP-ID", Short: "A group, its rule and member count", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var g api.GroupView
				if err := a.do("GET", tenantPath(a.tenant, "/groups/"+pathSegment(args[0])), nil, &g); err != nil {
					return err
				}
				return keyValues(r, cmd, g, [][2]string{{"id", g.ID}, {"name", g.Name}, {"description", g.Description},
					{"kind", g.Kind}, {"members", strconv.Itoa(g.Members)}, {"rule", g.RuleText}, {"rule json", string(g.Rule)},
					{"created", g.CreatedAt.Format("2006-01-02 15:04")}, {"updated", g.UpdatedAt.Format("2006-01-02 15:04")}})
			})
		},
	}
}

func newGroupUpdateCmd(r *remote) *cobra.Command {
	var name, description string
	var rule groupRuleFlags
	cmd := &cobra.Command{
		Use:   "update GROUP-ID [--name N] [--description D] [--rule JSON | --rule-file FILE]",
		Short: "Rename a group or change its description or rule (the kind stays)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := rule.read(cmd)
			if err != nil {
				return err
			}
			return r.call(cmd, func(a *apiCall) error {
				path := tenantPath(a.tenant, "/groups/"+pathSegment(args[0]))
				// The server replaces name, description and rule together;
				// start from the current group so unchanged parts stay.
				var cur api.GroupView
				if err := a.do("GET", path, nil, &cur); err != nil {
					return err
				}
				in := api.GroupRequest{Name: cur.Name, Description: cur.Description, Rule: cur.Rule}
				if cmd.Flags().Changed("name") {
					in.Name = name
				}
				if cmd.Flags().Changed("description") {
					in.Description = description
				}
				if raw != nil {
					in.Rule = raw
				}
				var g api.GroupView
				if err := a.do("PATCH", path, in, &g); err != nil {
					return err
				}
				return printGroups(r, cmd, api.List[api.GroupView]{Items: []api.GroupView{g}})
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "new name")
	cmd.Flags().StringVar(&description, "description", "", "new description")
	rule.register(cmd)
	return cmd
}

func newGroupDeleteCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "delete GROUP-ID", Short: "Delete a group; profiles assigned through it leave its members", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				if err := a.do("DELETE", tenantPath(a.tenant, "/groups/"+pathSegment(args[0])), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted group %s.\n", args[0])
				return nil
			})
		},
	}
}

func newGroupMembersCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "members GROUP-ID", Short: "List the IDs of a group's devices", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var out api.GroupMembersView
				for cursor := ""; ; {
					p := tenantPath(a.tenant, "/groups/"+pathSegment(args[0])+"/members") + "?limit=1000"
					if cursor != "" {
						p += "&cursor=" + url.QueryEscape(cursor)
					}
					var page api.GroupMembersView
					if err := a.do("GET", p, nil, &page); err != nil {
						return err
					}
					out.Items, out.LeftOut, out.Note = append(out.Items, page.Items...), out.LeftOut+page.LeftOut, page.Note
					if cursor = page.NextCursor; cursor == "" {
						break
					}
				}
				if out.LeftOut > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "%d devices left out: %s\n", out.LeftOut, out.Note)
				}
				return r.print(cmd.OutOrStdout(), out, []string{"DEVICE"}, func(i int) []string {
					return []string{out.Items[i]}
				}, len(out.Items))
			})
		},
	}
}

// newGroupMemberChangeCmd builds `group add` or `group remove`.
func newGroupMemberChangeCmd(r *remote, verb string) *cobra.Command {
	short := "Add devices to a static group"
	if verb == "remove" {
		short = "Remove devices from a static group"
	}
	return &cobra.Command{
		Use: verb + " GROUP-ID DEVICE-ID...", Short: short, Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := api.MembersRequest{Add: args[1:]}
			if verb == "remove" {
				in = api.MembersRequest{Remove: args[1:]}
			}
			return r.call(cmd, func(a *apiCall) error {
				var v api.MembersView
				if err := a.do("POST", tenantPath(a.tenant, "/groups/"+pathSegment(args[0])+"/members"), in, &v); err != nil {
					return err
				}
				if r.json {
					return printJSON(cmd.OutOrStdout(), v)
				}
				changed, word := v.Added, "Added"
				if verb == "remove" {
					changed, word = v.Removed, "Removed"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %d of %d devices", word, len(changed), len(args)-1)
				if unchanged := len(args) - 1 - len(changed); unchanged > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "; %d of them %s", unchanged, map[string]string{"add": "already were members", "remove": "were not members"}[verb])
				}
				fmt.Fprintln(cmd.OutOrStdout(), ".")
				return nil
			})
		},
	}
}

func newGroupRefreshCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "refresh GROUP-ID", Short: "Re-evaluate a dynamic group's rule now", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v device.RefreshResult
				if err := a.do("POST", tenantPath(a.tenant, "/groups/"+pathSegment(args[0])+"/refresh"), nil, &v); err != nil {
					return err
				}
				if r.json {
					return printJSON(cmd.OutOrStdout(), v)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Evaluated %d devices: %d joined, %d left.\n", v.Evaluated, v.Added, v.Removed)
				return nil
			})
		},
	}
}

// joinOr lists words as "a, b or c", for errors.
func joinOr(words []string) string {
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
