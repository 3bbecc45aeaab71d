// Command breachlist builds the embedded list of known-breached passwords used
// by internal/iam/password. It reads the zxcvbn frequency list (Python source)
// and John the Ripper's password.lst, lower-cases, dedupes and sorts the
// entries, keeps those of at least -min runes, and writes them gzip-compressed,
// one per line. See README.md for provenance and licences.
//
//	go run ./tools/breachlist -out internal/iam/password/breached.txt.gz
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"
)

func main() {
	zxcvbnPath := flag.String("zxcvbn", "/usr/lib/python3/dist-packages/zxcvbn/frequency_lists.py", "zxcvbn frequency_lists.py (Python source)")
	johnPath := flag.String("john", "/usr/share/john/password.lst", "John the Ripper password.lst")
	outPath := flag.String("out", "internal/iam/password/breached.txt.gz", "output gzip file")
	minLen := flag.Int("min", 4, "minimum entry length in runes")
	flag.Parse()

	if err := run(*zxcvbnPath, *johnPath, *outPath, *minLen); err != nil {
		fmt.Fprintln(os.Stderr, "breachlist:", err)
		os.Exit(1)
	}
}

func run(zxcvbnPath, johnPath, outPath string, minLen int) error {
	set := map[string]struct{}{}
	zx, err := os.ReadFile(zxcvbnPath)
	if err != nil {
		return err
	}
	zxWords, err := parseZxcvbnPasswords(zx)
	if err != nil {
		return fmt.Errorf("%s: %w", zxcvbnPath, err)
	}
	john, err := os.Open(johnPath)
	if err != nil {
		return err
	}
	defer john.Close()
	johnWords, err := parseJohnList(john)
	if err != nil {
		return fmt.Errorf("%s: %w", johnPath, err)
	}
	for _, w := range append(zxWords, johnWords...) {
		w = strings.ToLower(strings.TrimSpace(w))
		if utf8.RuneCountInString(w) >= minLen && !strings.ContainsAny(w, "\n\r") {
			set[w] = struct{}{}
		}
	}
	words := make([]string, 0, len(set))
	for w := range set {
		words = append(words, w)
	}
	sort.Strings(words)

	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	for _, w := range words {
		zw.Write([]byte(w + "\n"))
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(outPath, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %d entries (zxcvbn %d, john %d raw) to %s, %d bytes\n",
		len(words), len(zxWords), len(johnWords), outPath, buf.Len())
	return nil
}

// parseZxcvbnPasswords extracts the "passwords" entry of the generated
// FREQUENCY_LISTS dict, which is a single line of the form
//
//	"passwords": "123456,password,...".split(","),
func parseZxcvbnPasswords(src []byte) ([]string, error) {
	const key = `"passwords": "`
	i := bytes.Index(src, []byte(key))
	if i < 0 {
		return nil, errors.New(`no "passwords" list found`)
	}
	rest := src[i+len(key):]
	end := bytes.Index(rest, []byte(`".split(",")`))
	if end < 0 {
		return nil, errors.New(`"passwords" list is not terminated by .split(",")`)
	}
	body := string(rest[:end])
	if strings.ContainsAny(body, "\"\n") {
		return nil, errors.New(`unexpected quote or newline inside "passwords" list`)
	}
	return strings.Split(body, ","), nil
}

// parseJohnList returns the non-comment lines of a John the Ripper wordlist.
func parseJohnList(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#!comment") || line == "" {
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}
