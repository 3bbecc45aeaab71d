package privacy

import "strings"

// SummaryBlock is one piece of the plain-words summary as a page shows
// it: a heading, a paragraph, or a list.
type SummaryBlock struct {
	Heading, Paragraph string
	List               []SummaryItem
}

// SummaryItem is a list item, its label (bold in the summary) apart.
type SummaryItem struct{ Label, Text string }

// SummaryBlocks reads the few Markdown forms PlainSummary writes
// (### headings, "- " items whose label is in **…**, paragraphs), so the
// page shows their structure rather than their markup. What the employee
// accepts is still the text itself (its digest).
func SummaryBlocks(summary string) []SummaryBlock {
	var blocks []SummaryBlock
	for line := range strings.Lines(summary) {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "### "):
			blocks = append(blocks, SummaryBlock{Heading: strings.TrimPrefix(line, "### ")})
		case strings.HasPrefix(line, "- "):
			if len(blocks) == 0 || blocks[len(blocks)-1].List == nil {
				blocks = append(blocks, SummaryBlock{List: []SummaryItem{}})
			}
			last := &blocks[len(blocks)-1]
			last.List = append(last.List, summaryListItem(strings.TrimPrefix(line, "- ")))
		default:
			blocks = append(blocks, SummaryBlock{Paragraph: line})
		}
	}
	return blocks
}

// summaryListItem splits "**Label**: text" (or "**Label**") from a plain item.
func summaryListItem(item string) SummaryItem {
	rest, bold := strings.CutPrefix(item, "**")
	if !bold {
		return SummaryItem{Text: item}
	}
	label, text, closed := strings.Cut(rest, "**")
	if !closed {
		return SummaryItem{Text: item}
	}
	return SummaryItem{Label: label, Text: strings.TrimSpace(strings.TrimPrefix(text, ":"))}
}
