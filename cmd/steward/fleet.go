package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/spf13/cobra"
)

// addFleetCmds registers the fleet management commands (groups, profiles,
// compliance, remote actions, device settings, reports) on root and adds
// the fleet subcommands to the existing `steward device` group, replacing
// its plain `list` with the filtered one. It must run after the device
// group is registered.
func addFleetCmds(r *remote, root *cobra.Command) {
	root.AddCommand(newGroupCmd(r), newProfileCmd(r), newComplianceCmd(r), newActionCmd(r),
		newDeviceSettingsCmd(r), newReportCmd(r))
	for _, c := range root.Commands() {
		if c.Name() == "device" {
			extendDeviceCmd(r, c)
		}
	}
}

// extendDeviceCmd adds the fleet subcommands (search, compliance, access
// token, profiles) to the device group.
func extendDeviceCmd(r *remote, device *cobra.Command) {
	device.AddCommand(newDeviceListCmd(r), newDeviceLookupCmd(r), newDeviceComplianceCmd(r), newDeviceAccessTokenCmd(r), newDeviceProfilesCmd(r),
		newDeviceCommandsCmd(r), newDeviceUserChannelsCmd(r))
}

// maxJSONFile bounds the JSON documents the CLI reads from files (rules,
// definitions, ladders); anything larger is a mistake, not a document.
const maxJSONFile = 4 << 20

// readJSONFile returns the JSON document in path ("-" is standard input),
// with an error naming the flag when it cannot be read or is not JSON.
func readJSONFile(cmd *cobra.Command, flag, path string) (json.RawMessage, error) {
	var in io.Reader
	if path == "-" {
		in = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		defer f.Close()
		in = f
	}
	raw, err := io.ReadAll(io.LimitReader(in, maxJSONFile+1))
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	if len(raw) > maxJSONFile {
		return nil, fmt.Errorf("--%s: the file is larger than %d MB; is it the right file?", flag, maxJSONFile>>20)
	}
	return parseJSONDocument(flag, raw)
}

// parseJSONDocument checks raw is one JSON value and returns it compacted.
func parseJSONDocument(flag string, raw []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, bytes.TrimSpace(raw)); err != nil {
		return nil, fmt.Errorf("--%s is not valid JSON: %v", flag, err)
	}
	if buf.Len() == 0 {
		return nil, fmt.Errorf("--%s is empty; give a JSON document", flag)
	}
	return buf.Bytes(), nil
}

// decodeStrict decodes a JSON document into v, refusing unknown keys so a
// misspelt rule is caught here instead of being silently ignored.
func decodeStrict(flag string, raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("--%s: %v", flag, err)
	}
	if dec.More() {
		return fmt.Errorf("--%s holds more than one JSON document", flag)
	}
	return nil
}

// pathSegment escapes an ID taken from the command line for use in a URL path.
func pathSegment(s string) string { return url.PathEscape(s) }

// printJSON prints v indented, whatever --json says: for documents that have
// no sensible table form.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// keyValues prints a two-column FIELD/VALUE table, or v as JSON with --json.
func keyValues(r *remote, cmd *cobra.Command, v any, pairs [][2]string) error {
	return r.print(cmd.OutOrStdout(), v, []string{"FIELD", "VALUE"}, func(i int) []string {
		return pairs[i][:]
	}, len(pairs))
}

// shortVersion keeps the start of a content digest: enough to compare.
func shortVersion(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}
