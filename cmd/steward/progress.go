package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// progress reports bytes flowing through it on a terminal, at most a few
// times a second; on anything else it stays quiet so logs stay clean.
type progress struct {
	w     io.Writer
	verb  string
	total int64 // -1 when unknown
	n     int64
	last  time.Time
	tty   bool
}

func newProgress(w io.Writer, verb string, total int64) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, verb: verb, total: total, tty: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.tty && time.Since(p.last) > 200*time.Millisecond {
		p.last = time.Now()
		p.show()
	}
	return len(b), nil
}

func (p *progress) show() {
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s %3d%% (%.1f of %.1f MB)", p.verb, p.n*100/p.total, float64(p.n)/1e6, float64(p.total)/1e6)
		return
	}
	fmt.Fprintf(p.w, "\r%s %.1f MB", p.verb, float64(p.n)/1e6)
}

func (p *progress) done() {
	if p.tty {
		p.show()
		fmt.Fprintln(p.w)
	}
}
