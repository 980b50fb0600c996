package client

import (
	"fmt"
	"strings"
)

// NetrcEntry is one machine of a netrc file.
type NetrcEntry struct {
	Machine         string // "" for the default entry
	Login, Password string
}

// ParseNetrc parses a netrc file as curl and git read it: tokens
// separated by white space, "machine NAME" (or "default") starting an
// entry, "login" and "password" giving its credentials, "account" and
// "macdef" (a macro, up to an empty line) skipped, "#" starting a comment
// at a token's start. A token a keyword needs that is missing, or a login
// or password outside an entry, is an error.
func ParseNetrc(data []byte) ([]NetrcEntry, error) {
	var out []NetrcEntry
	var toks []string
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		for _, f := range strings.Fields(lines[i]) {
			if strings.HasPrefix(f, "#") {
				break
			}
			if f == "macdef" {
				// A macro: its name ends the line, its body runs to the
				// first empty line.
				for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" {
					i++
				}
				break
			}
			toks = append(toks, f)
		}
	}
	cur := -1
	for i := 0; i < len(toks); i++ {
		next := func(kw string) (string, error) {
			if i+1 >= len(toks) {
				return "", fmt.Errorf("netrc: %q needs a value", kw)
			}
			i++
			return toks[i], nil
		}
		switch toks[i] {
		case "machine":
			name, err := next("machine")
			if err != nil {
				return nil, err
			}
			out = append(out, NetrcEntry{Machine: name})
			cur = len(out) - 1
		case "default":
			out = append(out, NetrcEntry{})
			cur = len(out) - 1
		case "login", "password", "account":
			kw := toks[i]
			v, err := next(kw)
			if err != nil {
				return nil, err
			}
			if cur < 0 {
				return nil, fmt.Errorf("netrc: %q before any machine", kw)
			}
			switch kw {
			case "login":
				out[cur].Login = v
			case "password":
				out[cur].Password = v
			}
		default:
			return nil, fmt.Errorf("netrc: unexpected %q", toks[i])
		}
	}
	return out, nil
}

// Lookup returns the entry for host: its machine's, else the default
// entry, as curl chooses.
func Lookup(entries []NetrcEntry, host string) (NetrcEntry, bool) {
	for _, e := range entries {
		if e.Machine != "" && strings.EqualFold(e.Machine, host) {
			return e, true
		}
	}
	for _, e := range entries {
		if e.Machine == "" {
			return e, true
		}
	}
	return NetrcEntry{}, false
}
