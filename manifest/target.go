package manifest

import "fmt"

// A Target is what a desired-state document is for: one server
// (servers/{server}.json) or a group of servers (groups/{group}.json). Both
// documents are manifests; a host's desired state merges its own with its
// groups' (Merge).
type Target struct {
	Kind Kind
	Name string
}

// Kind says whether a Target is a server or a group.
type Kind string

// The two kinds of Target.
const (
	KindServer Kind = "server"
	KindGroup  Kind = "group"
)

// Server returns the Target of server's own manifest.
func Server(name string) Target { return Target{Kind: KindServer, Name: name} }

// Group returns the Target of group's manifest.
func Group(name string) Target { return Target{Kind: KindGroup, Name: name} }

// Check reports whether t is a server or a group with a valid name.
func (t Target) Check() error {
	if t.Kind != KindServer && t.Kind != KindGroup {
		return fmt.Errorf("%w: target kind %q is neither server nor group", ErrInvalidName, t.Kind)
	}
	return CheckName(string(t.Kind), t.Name)
}

// IsGroup reports whether t is a group.
func (t Target) IsGroup() bool { return t.Kind == KindGroup }

// String returns "server NAME" or "group NAME", for messages.
func (t Target) String() string { return string(t.Kind) + " " + t.Name }

// Source returns how status names an entry that came from t: "server" for
// the server's own manifest, "group:NAME" for a group's.
func (t Target) Source() EntrySource {
	if t.IsGroup() {
		return EntrySource("group:" + t.Name)
	}
	return SourceServer
}
