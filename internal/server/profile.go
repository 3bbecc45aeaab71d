package server

import (
	"net/http"
	"net/http/pprof"
)

// profileMux serves Go's runtime profiles (CPU, heap, goroutines, execution
// trace) for --profile-listen, so a benchmark can show where the server's time
// goes without a special build.
func profileMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}
