package manifest

import (
	"fmt"
	"strings"
)

// A Source is one of the manifests a host's desired state is made of: its
// own (a server Target) or one of its groups'. Manifest is nil when the
// document does not exist.
type Source struct {
	Target   Target
	Manifest *Manifest
}

// Desired is a host's desired state, merged from its Sources by Merge.
type Desired struct {
	// Entries are the envs the host is to serve: the server manifest's
	// entries in its order, then each group's in the order of the host's
	// groups, each env once.
	Entries []Entry
	// From says, per env of Entries, which document its entry came from.
	From map[string]Target
	// Overrides lists, per env whose server entry won, the groups whose
	// entry for the env it overrides.
	Overrides map[string][]string
	// Held maps each env that must be left exactly as it is to the reason:
	// two of the host's groups name it and the server manifest does not.
	Held map[string]string
	// Rollouts maps each env whose entry is under a rollout to the
	// rollout's ID; its entry in Entries is already resolved for the host
	// (Entry.For).
	Rollouts map[string]string
	// Missing lists the groups whose manifest does not exist. Their envs
	// are unknown, so an installed env that no document names is left as
	// it is (as a missing server manifest leaves everything) rather than
	// stopped.
	Missing []string
}

// Merge combines a host's server manifest and its groups' into what the
// host is to serve, env by env (docs/design.md, "Groups"), each entry
// resolved for the host named by the server Source (Entry.For: the side of
// a rollout it is on):
//
//   - an env the server manifest names is the server's entry, whatever its
//     groups say (pinning one host, Teletraan's hotfix);
//   - an env that exactly one group names is that group's entry;
//   - an env that two or more groups name, and the server does not, is a
//     conflict: it is Held, left as it is, and every other env proceeds.
//
// sources holds at most one server Source (wherever it is), and group
// Sources in the host's order; a nil Manifest is a document that does not exist. Merge
// does not validate the manifests (Parse did) and does not modify them.
func Merge(sources []Source) Desired {
	d := Desired{From: map[string]Target{}, Overrides: map[string][]string{}, Held: map[string]string{}, Rollouts: map[string]string{}}
	server := ""
	for _, s := range sources {
		if !s.Target.IsGroup() {
			server = s.Target.Name
		}
	}
	byGroup := map[string][]string{} // env → groups that name it
	for _, s := range sources {
		if !s.Target.IsGroup() || s.Manifest == nil {
			continue
		}
		for _, e := range s.Manifest.Packages {
			byGroup[e.EnvName()] = append(byGroup[e.EnvName()], s.Target.Name)
		}
	}
	ordered := make([]Source, 0, len(sources)) // the server's first: it wins
	for _, s := range sources {
		if !s.Target.IsGroup() {
			ordered = append(ordered, s)
		}
	}
	for _, s := range sources {
		if s.Target.IsGroup() {
			ordered = append(ordered, s)
		}
	}
	for _, s := range ordered {
		if s.Manifest == nil {
			if s.Target.IsGroup() {
				d.Missing = append(d.Missing, s.Target.Name)
			}
			continue
		}
		for _, e := range s.Manifest.Packages {
			env := e.EnvName()
			if _, done := d.From[env]; done {
				continue
			}
			if s.Target.IsGroup() {
				if gs := byGroup[env]; len(gs) > 1 {
					d.Held[env] = fmt.Sprintf("groups %s all name env %s and the server manifest does not: left as it is", strings.Join(gs, ", "), env)
					continue
				}
			} else if gs := byGroup[env]; len(gs) > 0 {
				d.Overrides[env] = gs
			}
			d.From[env] = s.Target
			if e.Rollout != nil {
				d.Rollouts[env] = e.Rollout.ID
			}
			d.Entries = append(d.Entries, e.For(server))
		}
	}
	return d
}

// Manifest returns the merged entries as a manifest, for code that acts
// on one (its Revision is zero).
func (d Desired) Manifest() *Manifest { return &Manifest{Packages: d.Entries} }
