package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/client"
	"github.com/steward-mdm/steward/internal/sim"
)

// TestSimulateFlagValidation: flags no run can use are refused with a
// clear error, before anything reaches a server (`-n -1` used to panic).
func TestSimulateFlagValidation(t *testing.T) {
	t.Setenv("STEWARD_SERVER", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "-1"}, "--devices must be at least 1"},
		{[]string{"-n", "0"}, "--devices must be at least 1"},
		{[]string{"-c", "0"}, "--concurrency must be at least 1"},
		{[]string{"-c", "-4"}, "--concurrency must be at least 1"},
		{[]string{"--keys", "0"}, "--keys must be at least 1"},
		{[]string{"-t", "-1s"}, "--duration must not be negative"},
		{[]string{"--ownership", "borrowed"}, "--ownership must be one of"},
	} {
		_, _, err := cli(t, nil, append([]string{"simulate", "apple"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("simulate apple %v: %v, want %q", c.args, err, c.want)
		}
	}
}

// TestBulkChunk: the run's device IDs go in as few bulk requests as the
// API's body limit allows, each within it.
func TestBulkChunk(t *testing.T) {
	for _, n := range []int{1, 100, 10_000, api.MaxBulkDevices + 1} {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = uuid.NewString()
		}
		sizes := bulkChunk(ids)
		total := 0
		for _, size := range sizes {
			body, _ := json.Marshal(api.BulkCommandRequest{CommandRequest: api.CommandRequest{RequestType: "SecurityInfo"}, DeviceIDs: ids[total : total+size]})
			if len(body) > api.MaxBulkCommandBodyBytes || size > api.MaxBulkDevices {
				t.Errorf("%d devices: a request of %d devices has %d bytes", n, size, len(body))
			}
			total += size
		}
		if total != n || len(sizes) != (n+api.MaxBulkDevices-1)/api.MaxBulkDevices {
			t.Errorf("%d devices: requests of %v", n, sizes)
		}
	}
}

// standInServer fakes the API's command endpoint and the MDM command
// endpoint: a queued command goes to its device's queue (or, for devices
// in mislead, another command does), and each device notes whether two
// requests ever drove it at once.
type standInServer struct {
	mu       sync.Mutex
	udid     map[string]string   // device ID → UDID
	queues   map[string][]string // UDID → command UUIDs
	inFlight map[string]int      // UDID → requests being served
	overlaps int
	mislead  map[string]bool // device IDs whose queue gets another command
}

func (s *standInServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/mdm" {
		s.mdm(w, r)
		return
	}
	parts := strings.Split(r.URL.Path, "/") // /api/v1/tenants/T/devices/ID/commands
	if r.Method != "POST" || len(parts) != 8 || parts[5] != "devices" || parts[7] != "commands" {
		http.NotFound(w, r)
		return
	}
	id := uuid.NewString()
	s.mu.Lock()
	queued := id
	if s.mislead[parts[6]] {
		queued = uuid.NewString()
	}
	u := s.udid[parts[6]]
	s.queues[u] = append(s.queues[u], queued)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(api.CommandView{ID: id, RequestType: "DeviceInformation", State: "queued"})
}

func (s *standInServer) mdm(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var msg struct{ UDID string }
	if _, err := plist.Unmarshal(body, &msg); err != nil || msg.UDID == "" {
		http.Error(w, "no UDID", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.inFlight[msg.UDID]++; s.inFlight[msg.UDID] > 1 {
		s.overlaps++
	}
	s.mu.Unlock()
	time.Sleep(time.Millisecond) // long enough for another worker to come in
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight[msg.UDID]--
	q := s.queues[msg.UDID]
	if len(q) == 0 {
		return
	}
	s.queues[msg.UDID] = q[1:]
	out, _ := plist.Marshal(map[string]any{"CommandUUID": q[0], "Command": map[string]any{"RequestType": "DeviceInformation",
		"Queries": []string{"OSVersion"}}}, plist.XMLFormat)
	w.Write(out)
}

// standInRun builds n devices enrolled at a stand-in server and the API
// call that reaches it.
func standInRun(t *testing.T, n int) (*standInServer, *apiCall, []*sim.Device, []string, []int) {
	t.Helper()
	s := &standInServer{udid: map[string]string{}, queues: map[string][]string{}, inFlight: map[string]int{}, mislead: map[string]bool{}}
	ts := httptest.NewTLSServer(s)
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL, "", client.TLSOptions{Fingerprint: fmt.Sprintf("SHA256:%x", sha256.Sum256(ts.Certificate().Raw))})
	if err != nil {
		t.Fatal(err)
	}
	devices, ids, live := make([]*sim.Device, n), make([]string, n), make([]int, n)
	for i := range devices {
		if devices[i], err = sim.NewEnrolled(ts.Client(), ts.URL+"/mdm"); err != nil {
			t.Fatal(err)
		}
		ids[i], live[i] = uuid.NewString(), i
		s.udid[ids[i]] = devices[i].UDID
	}
	return s, &apiCall{c: c, tenant: "T"}, devices, ids, live
}

// TestLoadDrivesEachDeviceFromOneWorker: with more workers than devices,
// no device is ever driven by two workers at once (a Device is not safe
// for that, and round trips would answer each other's commands), and
// every round trip answers its own command.
func TestLoadDrivesEachDeviceFromOneWorker(t *testing.T) {
	s, a, devices, ids, live := standInRun(t, 3)
	var out, progress bytes.Buffer
	o := simOptions{workers: 8, duration: 300 * time.Millisecond, out: &out, progress: &progress}
	idle, rounds, err := o.load(context.Background(), a, devices, ids, live)
	if err != nil {
		t.Fatal(err)
	}
	if s.overlaps != 0 {
		t.Errorf("%d requests of a device came while another of it was served", s.overlaps)
	}
	if idle.Count == 0 || idle.Errors != 0 || rounds.Count == 0 || rounds.Errors != 0 {
		t.Errorf("idle %s, rounds %s (%v)\n%s", idle, rounds, rounds.FirstError, out.String())
	}
	if !strings.Contains(progress.String(), "concurrency 3: one worker per device") {
		t.Errorf("progress: %q", progress.String())
	}
}

// TestRoundTripNeedsItsOwnCommand: a device that answers some other
// command than the one the API queued has not made a round trip.
func TestRoundTripNeedsItsOwnCommand(t *testing.T) {
	s, a, devices, ids, live := standInRun(t, 2)
	s.mislead[ids[1]] = true
	var out bytes.Buffer
	o := simOptions{workers: 2, duration: 200 * time.Millisecond, out: &out, progress: io.Discard}
	_, rounds, err := o.load(context.Background(), a, devices, ids, live)
	if err != nil {
		t.Fatal(err)
	}
	if rounds.Count == 0 || rounds.Errors == 0 || rounds.FirstError == nil || !strings.Contains(rounds.FirstError.Error(), "did not receive command") {
		t.Errorf("rounds %s, first error %v", rounds, rounds.FirstError)
	}
	if !strings.Contains(out.String(), "first error: device "+ids[1]+" did not receive command") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestSimulateFailsWhenNothingEnrols: when every enrolment fails, the run
// says the load phases are skipped and exits non-zero.
func TestSimulateFailsWhenNothingEnrols(t *testing.T) {
	mux := http.NewServeMux()
	var base string
	mux.HandleFunc("POST /api/v1/tenants/T/enrolments", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(api.NewEnrolmentView{Enrolment: api.EnrolmentView{ID: uuid.NewString()}, Link: base + "/enrol/gone"})
	})
	ts := httptest.NewTLSServer(mux) // the link is not found
	t.Cleanup(ts.Close)
	base = ts.URL
	c, err := client.New(ts.URL, "", client.TLSOptions{Fingerprint: fmt.Sprintf("SHA256:%x", sha256.Sum256(ts.Certificate().Raw))})
	if err != nil {
		t.Fatal(err)
	}
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	var out bytes.Buffer
	err = simulateApple(context.Background(), &apiCall{cmd: cmd, c: c, tenant: "T"},
		simOptions{n: 2, workers: 2, keys: 1, duration: time.Second, ownership: "corporate", ecIdentity: true, out: &out, progress: io.Discard})
	if err == nil || !strings.Contains(out.String(), "0 ok, 2 failed") || !strings.Contains(out.String(), "the load phases are skipped") {
		t.Errorf("err %v, output:\n%s", err, out.String())
	}
}

// TestSimulateQueriesOnlyItsOwnDevices: the closing bulk query goes to the
// run's devices, not to every enrolled device of the tenant (an earlier
// run's here, real devices elsewhere); the run's round trips all succeed
// with more workers than devices.
func TestSimulateQueriesOnlyItsOwnDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("serves an instance and enrols devices")
	}
	fleetServer(t, t.TempDir())
	mustCLI(t, nil, "simulate", "apple", "--setup", "-n", "2", "-c", "2", "--keys", "1", "--ec-identity")
	earlier := itemIDs(t, mustCLI(t, nil, "device", "list", "--json", "--state", "enrolled"))
	if len(earlier) != 2 {
		t.Fatalf("earlier devices: %v", earlier)
	}
	// Enrolment queued their first inventory, SecurityInfo among it.
	securityInfos := func(id string) int {
		var cmds api.List[api.CommandView]
		if err := json.Unmarshal([]byte(mustCLI(t, nil, "device", "commands", "list", id, "--json")), &cmds); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range cmds.Items {
			if c.RequestType == "SecurityInfo" {
				n++
			}
		}
		return n
	}
	before := map[string]int{}
	for _, id := range earlier {
		before[id] = securityInfos(id)
	}
	out := mustCLI(t, nil, "simulate", "apple", "-n", "3", "-c", "8", "-t", "300ms", "--keys", "1", "--ec-identity")
	for _, want := range []string{"initial inventory (Idle, the commands enrolment queued): 3 ok, 0 failed",
		"one command queued for this run's devices through the API: 3 devices in", "in one request"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q missing from\n%s", want, out)
		}
	}
	const rounds = "command round trips (enqueue via API, Idle, DeviceInformation result): "
	if !strings.Contains(out, rounds) || strings.Contains(out, rounds+"0 ok") || !strings.Contains(out, " ok, 0 failed") || strings.Contains(out, "first error") {
		t.Errorf("round trips:\n%s", out)
	}
	for _, id := range earlier {
		if n := securityInfos(id); n != before[id] {
			t.Errorf("an earlier run's device %s got the later run's SecurityInfo (%d, then %d)", id, before[id], n)
		}
	}
}
