package main

import (
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/client"
)

// apiCall is one CLI command's conversation with the server.
type apiCall struct {
	cmd    *cobra.Command
	r      *remote
	c      *client.Client
	tenant string
}

func (a *apiCall) do(method, path string, in, out any) error {
	return a.c.Do(a.cmd.Context(), method, path, in, out)
}

// collect follows next_cursor until the list is complete.
func collect[T any](a *apiCall, path string) (api.List[T], error) {
	var all api.List[T]
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	cursor := ""
	for {
		p := path + sep + "limit=1000"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		var page api.List[T]
		if err := a.do("GET", p, nil, &page); err != nil {
			return all, err
		}
		all.Items = append(all.Items, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}
