package pushui

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

type attrTest struct {
	name, op, value string // op: "" (present), "=", "*="
}

type compound struct {
	tag     string
	id      string
	classes []string
	attrs   []attrTest
}

type step struct {
	child bool // combinator before this compound is ">"
	c     compound
}

func parseSelector(t testing.TB, sel string) []step {
	t.Helper()
	var steps []step
	child := false
	for tok := range strings.FieldsSeq(strings.ReplaceAll(sel, ">", " > ")) {
		if tok == ">" {
			child = true
			continue
		}
		steps = append(steps, step{child: child, c: parseCompound(t, tok)})
		child = false
	}
	if len(steps) == 0 {
		t.Fatalf("empty selector %q", sel)
	}
	return steps
}

func parseCompound(t testing.TB, s string) compound {
	t.Helper()
	var c compound
	i := strings.IndexAny(s, "#.[")
	if i < 0 {
		i = len(s)
	}
	c.tag = s[:i]
	if c.tag == "*" {
		c.tag = ""
	}
	s = s[i:]
	for s != "" {
		switch s[0] {
		case '#', '.':
			j := strings.IndexAny(s[1:], "#.[")
			if j < 0 {
				j = len(s) - 1
			}
			if s[0] == '#' {
				c.id = s[1 : 1+j]
			} else {
				c.classes = append(c.classes, s[1:1+j])
			}
			s = s[1+j:]
		case '[':
			j := strings.IndexByte(s, ']')
			if j < 0 {
				t.Fatalf("selector: unclosed [ in %q", s)
			}
			body := s[1:j]
			s = s[j+1:]
			var a attrTest
			if k := strings.Index(body, "*="); k >= 0 {
				a = attrTest{body[:k], "*=", body[k+2:]}
			} else if k := strings.IndexByte(body, '='); k >= 0 {
				a = attrTest{body[:k], "=", body[k+1:]}
			} else {
				a = attrTest{name: body}
			}
			a.value = strings.Trim(a.value, `"'`)
			c.attrs = append(c.attrs, a)
		default:
			t.Fatalf("selector: unexpected %q", s)
		}
	}
	return c
}

func (c compound) matches(n *html.Node) bool {
	if n.Type != html.ElementNode || (c.tag != "" && n.Data != c.tag) {
		return false
	}
	if c.id != "" && attr(n, "id") != c.id {
		return false
	}
	classes := strings.Fields(attr(n, "class"))
	for _, want := range c.classes {
		found := false
		for _, have := range classes {
			found = found || have == want
		}
		if !found {
			return false
		}
	}
	for _, a := range c.attrs {
		v, ok := attrOK(n, a.name)
		switch {
		case !ok:
			return false
		case a.op == "=" && v != a.value:
			return false
		case a.op == "*=" && !strings.Contains(v, a.value):
			return false
		}
	}
	return true
}

// matchAt reports whether steps[:i+1] match with steps[i] at n.
func matchAt(n *html.Node, steps []step, i int) bool {
	if !steps[i].c.matches(n) {
		return false
	}
	if i == 0 {
		return true
	}
	if steps[i].child {
		return n.Parent != nil && matchAt(n.Parent, steps, i-1)
	}
	for p := n.Parent; p != nil; p = p.Parent {
		if matchAt(p, steps, i-1) {
			return true
		}
	}
	return false
}

// queryAll returns the elements under root (root excluded) matching sel,
// in document order.
func queryAll(t testing.TB, root *html.Node, sel string) []*html.Node {
	t.Helper()
	steps := parseSelector(t, sel)
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if matchAt(c, steps, len(steps)-1) {
				out = append(out, c)
			}
			walk(c)
		}
	}
	walk(root)
	return out
}

// query returns the one element matching sel, failing the test unless
// there is exactly one.
func query(t testing.TB, root *html.Node, sel string) *html.Node {
	t.Helper()
	got := queryAll(t, root, sel)
	if len(got) != 1 {
		t.Fatalf("selector %q: %d matches, want 1", sel, len(got))
	}
	return got[0]
}

func attrOK(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func attr(n *html.Node, key string) string {
	v, _ := attrOK(n, key)
	return v
}

// text returns n's text content with runs of white space collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func parseHTML(t testing.TB, body []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return doc
}

// TestQuery checks the selector engine itself, so the handler tests'
// assertions mean what they say.
func TestQuery(t *testing.T) {
	doc := parseHTML(t, []byte(`<div id="a" class="x y"><p class="x">one</p><section data-k="v1"><p>two <b>bold</b></p></section></div><p data-k="other">three</p>`))
	tests := []struct {
		sel  string
		want []string
	}{
		{"p", []string{"one", "two bold", "three"}},
		{"div p", []string{"one", "two bold"}},
		{"div > p", []string{"one"}},
		{"#a > section > p", []string{"two bold"}},
		{"div.x.y > p.x", []string{"one"}},
		{".y", []string{"onetwo bold"}},
		{"[data-k]", []string{"two bold", "three"}},
		{"[data-k=v1] b", []string{"bold"}},
		{"[data-k*=oth]", []string{"three"}},
		{"section.x", nil},
		{"*#a", []string{"onetwo bold"}},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			var got []string
			for _, n := range queryAll(t, doc, tt.sel) {
				got = append(got, text(n))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("queryAll(%q) = %q, want %q", tt.sel, got, tt.want)
			}
		})
	}
}
