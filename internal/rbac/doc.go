package rbac

import (
	"fmt"
	"strings"
)

// Markdown renders the permission list and the built-in roles as the page
// committed at docs/permissions.md, so the document cannot drift from code.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Permissions and built-in roles\n\n")
	b.WriteString("Generated from internal/rbac; `go test ./internal/rbac` fails when this page is stale\n")
	b.WriteString("(regenerate with `STEWARD_UPDATE_DOCS=1 go test ./internal/rbac`).\n\n")
	b.WriteString("A permission applies to the tenant it is granted on and to the customer tenants below it.\n")
	b.WriteString("Custom roles are any subset of these permissions; nobody can put into a role, an assignment\n")
	b.WriteString("or an API token a permission they do not hold themselves.\n\n")
	b.WriteString("| Permission | What it allows |")
	for _, r := range Builtin {
		fmt.Fprintf(&b, " %s |", r.Name)
	}
	b.WriteString("\n|---|---|")
	for range Builtin {
		b.WriteString(":-:|")
	}
	b.WriteString("\n")
	for _, d := range All {
		fmt.Fprintf(&b, "| `%s` | %s |", d.Permission, d.Description)
		for _, r := range Builtin {
			mark := " "
			if NewSet(r.Permissions...).Has(d.Permission) {
				mark = "✓"
			}
			fmt.Fprintf(&b, " %s |", mark)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## Built-in roles\n\n")
	for _, r := range Builtin {
		fmt.Fprintf(&b, "- **%s** (`%s`): %s\n", r.Name, r.ID, r.Description)
	}
	return b.String()
}
