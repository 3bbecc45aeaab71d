package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/client"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
)

func newSimulateCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "simulate", Short: "Simulate devices against a running server (tests and load measurements)"}
	var n, workers, keys int
	var duration time.Duration
	var ownership string
	var setup, ecIdentity bool
	var profileDir string
	apple := &cobra.Command{
		Use:   "apple",
		Short: "Enrol N simulated Apple devices, then measure idle check-ins and command round trips",
		Long: "Each simulated device enrols exactly as a device does: it accepts the notice, downloads the signed\n" +
			"profile (a User Enrollment signs in with its work account instead, by account-driven enrolment), gets\n" +
			"its identity certificate by SCEP, sends Authenticate and TokenUpdate, and signs every\n" +
			"request. With --duration it then runs idle check-ins, and command round trips (DeviceInformation\n" +
			"queued through the API, answered by the device), each for that long, with --concurrency workers\n" +
			"(each device driven by one worker at a time), after an initial inventory that empties the queues;\n" +
			"last, one SecurityInfo is queued for this run's devices through the bulk API, and timed.\n" +
			"The exit status is non-zero when any operation failed (after the summary).\n" +
			"--setup publishes a notice and uploads a generated push certificate if the tenant has none: only for\n" +
			"test tenants.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := simOptions{n: n, workers: workers, keys: keys, duration: duration, ownership: ownership, setup: setup,
				ecIdentity: ecIdentity, profileDir: profileDir, out: cmd.OutOrStdout(), progress: cmd.ErrOrStderr()}
			if err := o.validate(); err != nil {
				return err
			}
			return r.call(cmd, func(a *apiCall) error { return simulateApple(cmd.Context(), a, o) })
		},
	}
	apple.Flags().IntVarP(&n, "devices", "n", 100, "devices to enrol")
	apple.Flags().IntVarP(&workers, "concurrency", "c", 16, "concurrent devices (the load phases use at most one worker per device)")
	apple.Flags().IntVar(&keys, "keys", 16, "RSA keys shared among the devices (generating one per device would dominate)")
	apple.Flags().DurationVarP(&duration, "duration", "t", 0, "after enrolment, run each load phase this long (0: enrol only)")
	apple.Flags().StringVar(&ownership, "ownership", "corporate", "ownership class of the devices; personal and user_enrolled register one person per device (test tenants only)")
	apple.Flags().BoolVar(&ecIdentity, "ec-identity", false, "P-256 identity keys instead of RSA (cheaper signing for the simulator; the server accepts both)")
	apple.Flags().BoolVar(&setup, "setup", false, "publish a notice and upload a generated push certificate when missing (test tenants only)")
	apple.Flags().StringVar(&profileDir, "cpu-profile", "", "write the simulator's own CPU profiles of the idle and round-trip phases to this directory")
	cmd.AddCommand(apple)
	return cmd
}

type simOptions struct {
	n, workers, keys int
	duration         time.Duration
	ownership        string
	setup            bool
	ecIdentity       bool
	profileDir       string
	out, progress    io.Writer
}

// errInterrupted ends a run stopped by Ctrl-C (or SIGTERM), after the
// summary of what ran until then.
var errInterrupted = errors.New("interrupted: the lines above are what ran until then")

// validate refuses flags no run can use.
func (o simOptions) validate() error {
	switch {
	case o.n < 1:
		return fmt.Errorf("--devices must be at least 1, not %d", o.n)
	case o.workers < 1:
		return fmt.Errorf("--concurrency must be at least 1, not %d", o.workers)
	case o.keys < 1:
		return fmt.Errorf("--keys must be at least 1, not %d", o.keys)
	case o.duration < 0:
		return fmt.Errorf("--duration must not be negative, not %v", o.duration)
	case !privacy.Ownership(o.ownership).Valid():
		return fmt.Errorf("--ownership must be one of %v, not %q", privacy.Ownerships, o.ownership)
	}
	return nil
}

// phaseProgress shows a phase's progress on o.progress: label and the
// successes so far (of total, when given) and failures, if any. It shows
// the phase starting at once, which tells bench/mdm/run.sh when to profile.
func (o simOptions) phaseProgress(label string, total int) func(done, failed int) {
	show := func(done, failed int) {
		if total > 0 {
			fmt.Fprintf(o.progress, "\r%s %d/%d", label, done, total)
		} else {
			fmt.Fprintf(o.progress, "\r%s %d", label, done)
		}
		if failed > 0 {
			fmt.Fprintf(o.progress, ", %d failed", failed)
		}
	}
	show(0, 0)
	return show
}

// endPhase shows s as the phase's last progress and ends its line.
func endPhase(show func(done, failed int), s sim.Stats, w io.Writer) {
	show(s.Count, s.Errors)
	fmt.Fprintln(w)
}

// firstError prints s's first error under its summary line.
func firstError(w io.Writer, s sim.Stats) {
	if s.FirstError != nil {
		fmt.Fprintf(w, "  first error: %v\n", s.FirstError)
	}
}

func simulateApple(ctx context.Context, a *apiCall, o simOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	if o.setup {
		if err := simSetup(a, o.ownership); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.progress, "generating %d device keys\n", o.keys)
	pool := make([]*rsa.PrivateKey, o.keys)
	for i := range pool {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		pool[i] = k
	}
	httpc := a.c.DeviceHTTP(o.workers)
	devices := make([]*sim.Device, o.n)
	ids := make([]string, o.n)
	enrolments := map[string]int{}
	links := make([]string, o.n)
	// A personally owned device is a person's: each gets one, whose work
	// account a User Enrollment signs in with.
	accounts := make([]string, o.n)
	personal := privacy.Ownership(o.ownership).PersonallyOwned()
	run := uuid.NewString()[:8] // people of several runs do not collide
	for i := range links {
		in := api.EnrolmentRequest{Ownership: o.ownership}
		if personal {
			accounts[i] = fmt.Sprintf("simulated-%s-%d@example.test", run, i+1)
			var s api.SubjectView
			if err := a.do("POST", tenantPath(a.tenant, "/subjects"), api.SubjectRequest{Email: accounts[i]}, &s); err != nil {
				if ctx.Err() != nil {
					fmt.Fprintf(o.out, "invitations created: %d of %d\n", i, o.n)
					return errInterrupted
				}
				return fmt.Errorf("registering person %d: %w", i+1, err)
			}
			in.SubjectID = s.ID
		}
		var v api.NewEnrolmentView
		if err := a.do("POST", tenantPath(a.tenant, "/enrolments"), in, &v); err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(o.out, "invitations created: %d of %d\n", i, o.n)
				return errInterrupted
			}
			return fmt.Errorf("creating enrolment %d: %w", i+1, err)
		}
		links[i], enrolments[v.Enrolment.ID] = v.Link, i
		if (i+1)%100 == 0 || i+1 == o.n {
			fmt.Fprintf(o.progress, "\rinvitations created: %d/%d", i+1, o.n)
		}
	}
	fmt.Fprintln(o.progress)
	// The employee's part (notice, profile) and the device's (SCEP,
	// Authenticate, TokenUpdate) are timed apart: the second is what the
	// server does for every enrolment, whoever starts it.
	show := o.phaseProgress("notices accepted and profiles installed:", o.n)
	install := sim.Run(ctx, o.workers, o.n, 0, func(ctx context.Context, _, i int) error {
		d := sim.NewWithKey(httpc, o.ownership == string(privacy.UserEnrolled), pool[i%len(pool)])
		if o.ecIdentity {
			if err := d.UseECIdentity(); err != nil {
				return err
			}
		}
		d.Personal, d.Account = personal, accounts[i]
		if err := d.Install(ctx, links[i], false); err != nil {
			return err
		}
		devices[i] = d
		return nil
	}, show)
	endPhase(show, install, o.progress)
	fmt.Fprintf(o.out, "notice and profile (invitation, consent, signed profile): %s\n", install)
	firstError(o.out, install)
	if install.Interrupted {
		return errInterrupted
	}
	installed := install.Count
	show = o.phaseProgress("enrolled", installed)
	var enrolled []int // the devices with a profile, enrolled in this order
	for i, d := range devices {
		if d != nil {
			enrolled = append(enrolled, i)
		}
	}
	enrol := sim.Run(ctx, o.workers, len(enrolled), 0, func(ctx context.Context, _, j int) error {
		i := enrolled[j]
		d := devices[i]
		if err := d.ObtainIdentity(ctx); err != nil {
			devices[i] = nil
			return err
		}
		if err := d.Complete(ctx); err != nil {
			devices[i] = nil
			return err
		}
		return nil
	}, show)
	endPhase(show, enrol, o.progress)
	fmt.Fprintf(o.out, "enrolment (SCEP, Authenticate, TokenUpdate): %s\n", enrol)
	firstError(o.out, enrol)
	failures := install.Errors + enrol.Errors
	if enrol.Interrupted {
		return errInterrupted
	}
	if enrol.Count == 0 {
		fmt.Fprintln(o.out, "no device enrolled: the load phases are skipped")
		return fmt.Errorf("no device of %d enrolled", o.n)
	}
	if o.duration <= 0 {
		return failed(failures)
	}
	all, err := collect[api.EnrolmentView](a, tenantPath(a.tenant, "/enrolments"))
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	for _, e := range all.Items {
		if i, ok := enrolments[e.ID]; ok {
			ids[i] = e.DeviceID
		}
	}
	var live []int
	for i, d := range devices {
		if d != nil && ids[i] != "" {
			live = append(live, i)
		}
	}
	if missing := enrol.Count - len(live); missing > 0 {
		fmt.Fprintf(o.out, "%d enrolled devices have no device ID in their enrolment: left out of the load phases\n", missing)
		failures += missing
	}
	// The initial inventory (what enrolment queued), so that the load
	// phases start from empty queues. A device failing it would still
	// have commands queued: it leaves the load set.
	show = o.phaseProgress("initial inventory:", len(live))
	inventoryFailed := make([]bool, len(live)) // each element written by one worker only
	inventory := sim.Run(ctx, o.workers, len(live), 0, func(ctx context.Context, _, i int) error {
		_, err := devices[live[i]].Poll(ctx)
		inventoryFailed[i] = err != nil && ctx.Err() == nil
		return err
	}, show)
	endPhase(show, inventory, o.progress)
	fmt.Fprintf(o.out, "initial inventory (Idle, the commands enrolment queued): %s\n", inventory)
	firstError(o.out, inventory)
	failures += inventory.Errors
	if inventory.Interrupted {
		return errInterrupted
	}
	kept := live[:0]
	for j, k := range live {
		if !inventoryFailed[j] {
			kept = append(kept, k)
		}
	}
	if dropped := len(live) - len(kept); dropped > 0 {
		fmt.Fprintf(o.out, "%d devices failed their initial inventory: left out of the load phases\n", dropped)
	}
	live = kept
	if len(live) == 0 {
		fmt.Fprintln(o.out, "no device left for the load phases: they are skipped")
		return failed(failures)
	}
	idle, rounds, err := o.load(ctx, a, devices, ids, live)
	if err != nil {
		return err
	}
	failures += idle.Errors + rounds.Errors
	if idle.Interrupted || rounds.Interrupted {
		return errInterrupted
	}
	// One inventory query for this run's devices, and only theirs: the
	// tenant may hold real devices, and earlier runs' devices.
	targets := make([]string, len(live))
	for j, k := range live {
		targets[j] = ids[k]
	}
	bulk, requests, elapsed, err := bulkQuery(ctx, a, "SecurityInfo", targets)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		fmt.Fprintf(o.out, "one command queued for this run's %d devices through the API: failed after %v: %v\n", len(targets), elapsed.Round(time.Millisecond), err)
		failures++
	} else {
		in := "in one request"
		if requests > 1 {
			in = fmt.Sprintf("in %d requests (at most %d devices in one)", requests, bulkChunk(targets)[0])
		}
		fmt.Fprintf(o.out, "one command queued for this run's devices through the API: %d devices in %v, %s", bulk.Queued, elapsed.Round(time.Millisecond), in)
		if len(bulk.Skipped) > 0 || len(bulk.Ineligible) > 0 {
			fmt.Fprintf(o.out, "; %d skipped (full queues), %d ineligible", len(bulk.Skipped), len(bulk.Ineligible))
		}
		fmt.Fprintln(o.out)
	}
	return failed(failures)
}

// failed is the run's error when n operations failed, for a non-zero exit
// status once the summary is out.
func failed(n int) error {
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d operations failed: see the first errors above", n)
}

// load runs the idle check-ins and the command round trips, each for
// o.duration. Every device is driven by one worker only (a Device is not
// safe for concurrent use, and a round trip must find its own command):
// worker w of W takes live[w], live[w+W], … in turn, so there are at most
// as many workers as devices.
func (o simOptions) load(ctx context.Context, a *apiCall, devices []*sim.Device, ids []string, live []int) (idle, rounds sim.Stats, err error) {
	workers := min(o.workers, len(live))
	if workers < o.workers {
		fmt.Fprintf(o.progress, "concurrency %d: one worker per device, and only %d devices\n", workers, len(live))
	}
	// device is worker w's device for its i-th call.
	device := func(w, i int) int {
		owned := (len(live) - w + workers - 1) / workers
		return live[w+i%owned*workers]
	}
	stop, err := o.startProfile("idle")
	if err != nil {
		return idle, rounds, err
	}
	show := o.phaseProgress("idle check-ins:", 0)
	idle = sim.Run(ctx, workers, 0, o.duration, func(ctx context.Context, w, i int) error {
		_, err := devices[device(w, i)].Poll(ctx)
		return err
	}, show)
	endPhase(show, idle, o.progress)
	stop()
	fmt.Fprintf(o.out, "idle check-ins: %s\n", idle)
	if idle.Interrupted {
		firstError(o.out, idle)
		return idle, rounds, nil
	}
	paths := make([]string, len(ids))
	for _, k := range live {
		paths[k] = tenantPath(a.tenant, "/devices/"+ids[k]+"/commands")
	}
	var others atomic.Int64
	if stop, err = o.startProfile("rounds"); err != nil {
		return idle, rounds, err
	}
	show = o.phaseProgress("command round trips:", 0)
	rounds = sim.Run(ctx, workers, 0, o.duration, func(ctx context.Context, w, i int) error {
		k := device(w, i)
		var cmd api.CommandView
		if err := a.c.Do(ctx, "POST", paths[k], api.CommandRequest{RequestType: "DeviceInformation"}, &cmd); err != nil {
			return err
		}
		got, found, err := devices[k].PollFor(ctx, cmd.ID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("device %s did not receive command %s (it answered %d others)", ids[k], cmd.ID, got)
		}
		if got > 1 {
			others.Add(int64(got - 1))
		}
		return nil
	}, show)
	endPhase(show, rounds, o.progress)
	stop()
	fmt.Fprintf(o.out, "command round trips (enqueue via API, Idle, DeviceInformation result): %s\n", rounds)
	if n := others.Load(); n > 0 {
		fmt.Fprintf(o.out, "  other commands answered on the way (not counted): %d\n", n)
	}
	firstError(o.out, idle)
	firstError(o.out, rounds)
	return idle, rounds, nil
}

// bulkQuery queues one inventory query for the devices through the bulk
// API, in as few requests as the API's body limit allows, and times it.
func bulkQuery(ctx context.Context, a *apiCall, requestType string, deviceIDs []string) (total api.BulkCommandView, requests int, elapsed time.Duration, err error) {
	start := time.Now()
	for _, size := range bulkChunk(deviceIDs) {
		var v api.BulkCommandView
		err = a.c.Do(ctx, "POST", tenantPath(a.tenant, "/commands"), api.BulkCommandRequest{CommandRequest: api.CommandRequest{RequestType: requestType},
			DeviceIDs: deviceIDs[:size]}, &v)
		requests++
		if err != nil {
			return total, requests, time.Since(start), err
		}
		deviceIDs = deviceIDs[size:]
		total.Queued += v.Queued
		total.Skipped = append(total.Skipped, v.Skipped...)
		total.Ineligible = append(total.Ineligible, v.Ineligible...)
	}
	return total, requests, time.Since(start), nil
}

// bulkChunk splits device IDs into requests the API takes whole (at most
// api.MaxBulkDevices, in a body within api.MaxBulkCommandBodyBytes),
// returning each request's size.
func bulkChunk(deviceIDs []string) []int {
	const room = api.MaxBulkCommandBodyBytes - 512 // the request's other keys
	var sizes []int
	size, bytes := 0, 0
	for _, id := range deviceIDs {
		if size > 0 && (bytes+len(id)+3 > room || size == api.MaxBulkDevices) {
			sizes, size, bytes = append(sizes, size), 0, 0
		}
		size, bytes = size+1, bytes+len(id)+3 // quotes and a comma
	}
	if size > 0 {
		sizes = append(sizes, size)
	}
	return sizes
}

// simSetup prepares a test tenant: a notice for the class and a generated
// push certificate, each only when missing.
func simSetup(a *apiCall, ownership string) error {
	var settings api.PrivacySettingsView
	if err := a.do("GET", tenantPath(a.tenant, "/privacy/settings"), nil, &settings); err != nil {
		return err
	}
	if settings.NoticeVersions[privacy.Ownership(ownership)] == 0 {
		in := api.NoticeRequest{Ownership: ownership, Translations: []privacy.Translation{{Language: "en", Title: "Simulated devices",
			Body: privacy.PlainSummary(privacy.Settings{Policy: settings.Policy, RetentionDays: settings.RetentionDays}, privacy.Ownership(ownership))}}}
		if err := a.do("POST", tenantPath(a.tenant, "/privacy/notices"), in, nil); err != nil {
			return err
		}
	}
	// Only a tenant with none gets one: any other failure to read it (a
	// permission, a server fault) must not replace the real certificate.
	err := a.do("GET", tenantPath(a.tenant, "/apple/push-certificate"), nil, nil)
	var none *client.Error
	if !errors.As(err, &none) || none.Status != http.StatusConflict {
		return err
	}
	certPEM, err := sim.PushCertificatePEM("com.apple.mgmt.External." + strings.ToLower(uuid.NewString()))
	if err != nil {
		return err
	}
	return a.do("PUT", tenantPath(a.tenant, "/apple/push-certificate"), api.PushCertificateRequest{
		Certificate: base64.StdEncoding.EncodeToString(certPEM)}, nil)
}

// startProfile writes the simulator's CPU profile of one phase to
// profileDir/sim-<phase>.pprof, so a benchmark can tell the simulator's share
// of the two processes' CPU from the server's.
func (o simOptions) startProfile(phase string) (stop func(), err error) {
	if o.profileDir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(o.profileDir, "sim-"+phase+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
