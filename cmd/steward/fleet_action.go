package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/store"
)

func newActionCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "action",
		Short: "Remote actions (lock, wipe, retire, lost mode, locate…) on devices or groups, and their approvals",
		Long: "Every action needs a reason, which is audited. Wipe, retire and delete, and any action on more\n" +
			"devices than the bulk threshold (see `steward device-settings show`), wait for a second admin:\n" +
			"they run `steward action approve APPROVAL-ID` or `steward action reject APPROVAL-ID`.",
	}
	cmd.AddCommand(newActionRunCmd(r), newActionStatusCmd(r), newActionDecideCmd(r, true), newActionDecideCmd(r, false), newActionPINCmd(r),
		newActionDepartedPINsCmd(r), newActionDepartedPINCmd(r))
	return cmd
}

func newActionPINCmd(r *remote) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "pin DEVICE-ID ACTION-ID --reason TEXT",
		Short: "The Find My PIN a Mac's lock or wipe carried, to unlock the Mac (audited with the reason)",
		Long: "A locked Mac asks for its six-digit Find My PIN, and so does an erased Intel Mac before it can be\n" +
			"set up again. Steward keeps the PIN of every lock and wipe of a Mac, the ones a compliance ladder\n" +
			"drew included; it needs the permission the action needs. ACTION-ID is in `steward action status`.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return revealPIN(r, cmd, reason, "/devices/"+pathSegment(args[0])+"/actions/"+pathSegment(args[1])+"/pin")
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the PIN is needed (required; audited)")
	return cmd
}

// revealPIN asks the tenant's path (a PIN route) for a Find My PIN with
// reason, and prints it.
func revealPIN(r *remote, cmd *cobra.Command, reason, path string) error {
	if strings.TrimSpace(reason) == "" {
		return errors.New("--reason is required: who asked for the PIN, and why, is audited")
	}
	return r.call(cmd, func(a *apiCall) error {
		var v api.ActionPINView
		if err := a.do("POST", tenantPath(a.tenant, path), api.ActionPINRequest{Reason: reason}, &v); err != nil {
			return err
		}
		if r.json {
			return printJSON(cmd.OutOrStdout(), v)
		}
		fmt.Fprintln(cmd.OutOrStdout(), v.PIN)
		return nil
	})
}

func newActionRunCmd(r *remote) *cobra.Command {
	var in actions.Request
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "run ACTION --reason TEXT (--device ID... | --group ID) [--wait]",
		Short: "Send an action to devices or a group's members: " + strings.Join(actions.Kinds(), ", "),
		Long: "Prints the request's batch ID and its counts. When it needs a second admin, the approval ID is\n" +
			"printed instead. With --wait the command follows the batch every second (progress on standard\n" +
			"error) until no action is queued or awaiting approval any more, or until --timeout.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Action = actions.Kind(args[0])
			if err := checkActionRequest(in); err != nil {
				return err
			}
			if in.Options.PIN == "-" {
				// Asked for, without echo: on the command line it would stay
				// in the shell's history and show in the process list.
				pin, err := newPrompter(cmd).secret("Find My PIN (six digits): ")
				if err != nil {
					return err
				}
				in.Options.PIN = strings.TrimSpace(pin)
			}
			return r.call(cmd, func(a *apiCall) error {
				var b actions.Batch
				if err := a.do("POST", tenantPath(a.tenant, "/actions"), in, &b); err != nil {
					return err
				}
				if err := printBatch(r, cmd, b); err != nil || !wait {
					return err
				}
				return waitForBatch(a, b, timeout)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Reason, "reason", "", "why (required; audited and shown to whoever reviews the action)")
	f.StringSliceVar(&in.DeviceIDs, "device", nil, "device ID (repeat, or separate with commas)")
	f.StringVar(&in.GroupID, "group", "", "act on every member of this group")
	f.StringVar(&in.Options.Message, "message", "", "lock screen message (lock, lost_mode)")
	f.StringVar(&in.Options.PhoneNumber, "phone", "", "phone number shown on the lock screen (lock, lost_mode)")
	f.StringVar(&in.Options.Footnote, "footnote", "", "lock screen footnote (lost_mode)")
	f.StringVar(&in.Options.PIN, "pin", "", "six-digit Find My PIN for a Mac's lock or wipe; \"-\" asks for it (left out, Steward draws one, read it with steward action pin)")
	f.BoolVar(&in.Options.PreserveDataPlan, "preserve-data-plan", false, "keep the eSIM's data plan on wipe")
	f.BoolVar(&wait, "wait", false, "follow the batch until nothing is queued or awaiting approval")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait, give up after this long")
	cmd.MarkFlagsMutuallyExclusive("device", "group")
	return cmd
}

// checkActionRequest catches the mistakes the server would refuse, with
// the flag to fix.
func checkActionRequest(in actions.Request) error {
	if !slices.Contains(actions.Kinds(), string(in.Action)) {
		return fmt.Errorf("unknown action %q: use %s", in.Action, joinOr(actions.Kinds()))
	}
	if strings.TrimSpace(in.Reason) == "" {
		return errors.New("--reason is required: every action is audited with why it was taken")
	}
	if len(in.DeviceIDs) == 0 && in.GroupID == "" {
		return errors.New("say which devices: --device ID (repeatable) or --group ID")
	}
	return nil
}

// batchStates lists the states a batch's counts are shown in, in order.
var batchStates = []string{store.ActionAwaitingApproval, store.ActionQueued, store.ActionDone, store.ActionFailed,
	store.ActionRefused, store.ActionRejected, store.ActionExpired}

// batchProgress is a one-line summary such as "queued 40/120, done 35,
// failed 2"; states with no actions are left out, except done and failed.
func batchProgress(b actions.Batch) string {
	parts := []string{fmt.Sprintf("queued %d/%d", b.States[store.ActionQueued], b.Devices)}
	for _, s := range batchStates {
		n := b.States[s]
		switch {
		case s == store.ActionQueued:
		case s == store.ActionDone || s == store.ActionFailed || n > 0:
			parts = append(parts, fmt.Sprintf("%s %d", strings.ReplaceAll(s, "_", " "), n))
		}
	}
	return strings.Join(parts, ", ")
}

// batchPending reports whether some of the batch's actions may still change.
func batchPending(b actions.Batch) bool {
	return b.States[store.ActionQueued] > 0 || b.States[store.ActionAwaitingApproval] > 0
}

func printBatch(r *remote, cmd *cobra.Command, b actions.Batch) error {
	if r.json {
		return printJSON(cmd.OutOrStdout(), b)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "Batch %s: %s on %d devices (%s).\n", b.ID, b.Action, b.Devices, batchProgress(b))
	if b.ApprovalID != "" && b.States[store.ActionAwaitingApproval] > 0 {
		fmt.Fprintf(w, "Waiting for a second admin's approval: %s (until %s).\nAnother admin runs: steward action approve %s\n",
			b.ApprovalID, b.ExpiresAt.Local().Format("2006-01-02 15:04 MST"), b.ApprovalID)
	}
	return nil
}

// waitForBatch polls the batch every second, showing progress on standard
// error, until nothing is pending or timeout passes.
func waitForBatch(a *apiCall, b actions.Batch, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(a.cmd.Context(), timeout)
	defer cancel()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	show := newProgressLine(a.cmd.ErrOrStderr())
	poll := func(ctx context.Context) (actions.Batch, error) {
		var v api.BatchView
		err := a.c.Do(ctx, "GET", tenantPath(a.tenant, "/actions/"+pathSegment(b.ID)+"?limit=1"), nil, &v)
		return v.Batch, err
	}
	show(batchProgress(b))
	last, err := followBatch(ctx, b, poll, ticker.C, func(b actions.Batch) { show(batchProgress(b)) })
	show("")
	if errors.Is(err, context.DeadlineExceeded) && a.cmd.Context().Err() == nil {
		return fmt.Errorf("gave up after %s with %s; follow it with `steward action status %s`", timeout, batchProgress(last), b.ID)
	}
	if err != nil {
		return err
	}
	if a.r.json {
		if err := printJSON(a.cmd.OutOrStdout(), last); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.cmd.OutOrStdout(), "Finished: %s.\n", batchProgress(last))
	}
	if last.States[store.ActionFailed] > 0 {
		return fmt.Errorf("%d actions failed; see `steward action status %s`", last.States[store.ActionFailed], b.ID)
	}
	return nil
}

// followBatch calls poll on every tick until the batch has nothing pending,
// passing each state to show. It returns the last state seen, and ctx's
// error when ctx ends first.
func followBatch(ctx context.Context, b actions.Batch, poll func(context.Context) (actions.Batch, error),
	tick <-chan time.Time, show func(actions.Batch)) (actions.Batch, error) {
	for batchPending(b) {
		select {
		case <-ctx.Done():
			return b, ctx.Err()
		case <-tick:
		}
		next, err := poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return b, ctx.Err()
			}
			return b, err
		}
		b = next
		show(b)
	}
	return b, nil
}

// newProgressLine returns a function that shows a status line: rewritten in
// place on a terminal, else printed only when it changes, so logs stay
// short. An empty line ends the display.
func newProgressLine(w io.Writer) func(string) {
	f, ok := w.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	last, width := "", 0
	return func(line string) {
		switch {
		case line == "":
			if tty && width > 0 {
				fmt.Fprintln(w)
			}
		case line == last:
		case tty:
			fmt.Fprintf(w, "\r%-*s", width, line)
			width = max(width, len(line))
		default:
			fmt.Fprintln(w, line)
		}
		last = line
	}
}

func newActionStatusCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "status BATCH-ID", Short: "A batch's progress and each device's action state", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				v, err := batchWithAllActions(a, args[0])
				if err != nil {
					return err
				}
				if r.json {
					return printJSON(cmd.OutOrStdout(), v)
				}
				if err := printBatch(r, cmd, v.Batch); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout())
				return r.print(cmd.OutOrStdout(), v, []string{"DEVICE", "ACTION-ID", "STATE", "UPDATED", "ERROR"}, func(i int) []string {
					x := v.Actions.Items[i]
					return []string{x.DeviceID, x.ID, x.State, x.UpdatedAt.Local().Format("2006-01-02 15:04:05"), x.Error}
				}, len(v.Actions.Items))
			})
		},
	}
}

// batchWithAllActions reads a batch and every page of its per-device rows.
func batchWithAllActions(a *apiCall, batchID string) (api.BatchView, error) {
	var all api.BatchView
	cursor := ""
	for {
		p := tenantPath(a.tenant, "/actions/"+pathSegment(batchID)+"?limit=1000")
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		var page api.BatchView
		if err := a.do("GET", p, nil, &page); err != nil {
			return all, err
		}
		items := append(all.Actions.Items, page.Actions.Items...)
		all = page
		all.Actions.Items = items
		if page.Actions.NextCursor == "" || page.Actions.NextCursor == cursor {
			all.Actions.NextCursor = ""
			return all, nil
		}
		cursor = page.Actions.NextCursor
	}
}

// newActionDecideCmd builds `action approve` or, with approve false,
// `action reject`.
func newActionDecideCmd(r *remote, approve bool) *cobra.Command {
	use, short, word := "approve", "Approve another admin's request: its actions are sent at once", "Approved"
	if !approve {
		use, short, word = "reject", "Reject another admin's request: none of its actions are sent", "Rejected"
	}
	var comment string
	cmd := &cobra.Command{
		Use: use + " APPROVAL-ID [--comment TEXT]", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var b actions.Batch
				if err := a.do("POST", tenantPath(a.tenant, "/action-approvals/"+pathSegment(args[0])), actions.Decision{Approve: approve, Comment: comment}, &b); err != nil {
					return err
				}
				if !r.json {
					fmt.Fprintf(cmd.OutOrStdout(), "%s.\n", word)
				}
				return printBatch(r, cmd, b)
			})
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "a note for the audit log")
	return cmd
}
