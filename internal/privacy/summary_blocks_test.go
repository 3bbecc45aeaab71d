package privacy

import (
	"strings"
	"testing"
)

// TestSummaryBlocks: the summary's Markdown forms become structure, with
// no markup left in what a page shows, and nothing of its text lost.
func TestSummaryBlocks(t *testing.T) {
	for _, o := range []Ownership{Corporate, Personal, UserEnrolled} {
		summary := PlainSummary(Settings{Policy: DefaultPolicy()}, o)
		blocks := SummaryBlocks(summary)
		var headings, labels []string
		var shown strings.Builder
		for _, b := range blocks {
			headings = append(headings, b.Heading)
			shown.WriteString(b.Heading + b.Paragraph)
			for _, item := range b.List {
				labels = append(labels, item.Label)
				shown.WriteString(item.Label + item.Text)
			}
		}
		if text := shown.String(); strings.ContainsAny(text, "#*") {
			t.Errorf("%s: markup left in what is shown: %s", o, text)
		}
		if !strings.Contains(strings.Join(headings, "|"), "What your organisation can do") {
			t.Errorf("%s: headings %q", o, headings)
		}
		for _, c := range Categories {
			if !strings.Contains(strings.Join(labels, "|"), c.Name) {
				t.Errorf("%s: category %s has no labelled item", o, c.Name)
			}
		}
		markup := strings.NewReplacer("### ", "", "- ", "", "**: ", "", "**", "", "\n", "")
		if got, want := strings.ReplaceAll(shown.String(), " ", ""), strings.ReplaceAll(markup.Replace(summary), " ", ""); got != want {
			t.Errorf("%s: the blocks hold\n%s\nthe summary\n%s", o, got, want)
		}
	}
	got := SummaryBlocks("intro line\n- **Unclosed: x\n- plain item\n### Heading\n- **Label**\n")
	if len(got) != 4 || got[0].Paragraph != "intro line" || got[1].List[0].Text != "**Unclosed: x" || got[1].List[1].Text != "plain item" ||
		got[2].Heading != "Heading" || got[3].List[0] != (SummaryItem{Label: "Label"}) {
		t.Errorf("edge forms: %+v", got)
	}
}
