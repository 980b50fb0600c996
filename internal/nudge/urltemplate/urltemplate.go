// Package urltemplate parses the URL templates of nudges, in which the placeholder {server} stands for a server name: the HTTP
// nudge URL and the pub/sub topic URL of internal/nudge, and the pub/sub
// subscription URL of pulld -nudge.
//
// A template is a string whose only brace expression is {server}, which may
// appear any number of times, or not at all. Parse checks only that; what
// the expanded string must be (an http URL, a topic URL with a driver) is
// for the caller to check. Expand puts a server name in place as it is,
// without escaping: the names manifest.CheckName accepts consist of
// [a-z0-9._-], which need no escaping in any part of a URL.
package urltemplate

import (
	"errors"
	"strings"
)

// Placeholder is the one placeholder a template may hold.
const Placeholder = "{server}"

// errPlaceholder is Parse's error.
var errPlaceholder = errors.New("the only placeholder is " + Placeholder)

// Template is a parsed template. The zero Template is the empty string,
// with no placeholder.
type Template struct{ raw string }

// Parse checks that the only brace expression in s is {server}. Its error
// says what is wrong, not which template: the caller names the template,
// and what it is for, when it wraps the error.
func Parse(s string) (Template, error) {
	if strings.ContainsAny(strings.ReplaceAll(s, Placeholder, ""), "{}") {
		return Template{}, errPlaceholder
	}
	return Template{raw: s}, nil
}

// String returns the template as it was parsed.
func (t Template) String() string { return t.raw }

// PerServer reports whether t holds the placeholder, so that it expands to
// a different string for each server.
func (t Template) PerServer() bool { return strings.Contains(t.raw, Placeholder) }

// Expand returns t with server in place of every {server}. server must be
// a name manifest.CheckName accepts; Expand does not check it.
func (t Template) Expand(server string) string {
	return strings.ReplaceAll(t.raw, Placeholder, server)
}
