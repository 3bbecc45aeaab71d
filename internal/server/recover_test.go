package server

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDevicePanicsAreRecovered: a device handler that panics gets the
// device a 500, never a 401, and an error log naming the route, method,
// panic and stack, with nothing of the request; one that panics after its
// response began is cut off rather than answered twice.
func TestDevicePanicsAreRecovered(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /mdm/{tenant}/connect", func(http.ResponseWriter, *http.Request) {
		var answers []int
		_ = answers[3] // a bug of the kind the recovery is for
	})
	mux.HandleFunc("PUT /mdm/{tenant}/checkin", func(http.ResponseWriter, *http.Request) {
		panic("the device said secret-in-panic")
	})
	mux.HandleFunc("GET /scep/{tenant}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("half an answer"))
		w.(http.Flusher).Flush()
		panic("after the response began")
	})
	ts := httptest.NewServer(recoverDevicePanics(log, mux))
	defer ts.Close()

	send := func(method, path string) (*http.Response, error) {
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader("secret-body"))
		req.Header.Set("Mdm-Signature", "secret-header")
		return ts.Client().Do(req)
	}
	for _, path := range []string{"/mdm/t1/connect", "/mdm/t1/checkin"} {
		resp, err := send("PUT", path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s: HTTP %d, want 500", path, resp.StatusCode)
		}
	}
	got := logs.String()
	for _, want := range []string{"level=ERROR", "route=\"PUT /mdm/{tenant}/connect\"", "method=PUT", "index out of range [3] with length 0",
		"route=\"PUT /mdm/{tenant}/checkin\"", "panic=string", "recover_test.go"} {
		if !strings.Contains(got, want) {
			t.Errorf("the log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "secret") {
		t.Errorf("the log holds the request's data or the panic's:\n%s", got)
	}

	resp, err := send("GET", "/scep/t1")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("a panic after the response began changed its status to %d", resp.StatusCode)
		}
	}
	if err == nil {
		t.Error("a response cut short by a panic arrived as if whole")
	}
	if !strings.Contains(logs.String(), "route=\"GET /scep/{tenant}\"") {
		t.Errorf("the late panic was not logged:\n%s", logs.String())
	}
}
