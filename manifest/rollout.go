package manifest

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
)

// A Rollout moves the members of a group from Previous to its entry's
// Package a share at a time, with the bucket as the only state
// (docs/design.md, "Rollouts"): each member decides its side itself, from
// the rollout's ID and its own server name, so a step of the rollout is one
// write of the group's manifest whatever the group's size, and a host that
// joins mid-rollout lands on the right side by itself.
type Rollout struct {
	// ID names the rollout. With a server's name it decides the server's
	// side (Takes), so that raising Percent only ever adds servers.
	ID string
	// Previous is what members not yet in the rollout serve: the entry's
	// package before the rollout began, of the same app.
	Previous PackageName
	// Percent is the share of members, 0 to 100, that serve the entry's
	// Package.
	Percent float64
	// Canaries serve the entry's Package whatever Percent says.
	Canaries []string
}

// rolloutJSON is a Rollout as manifests hold it.
type rolloutJSON struct {
	ID       string   `json:"id"`
	Previous string   `json:"previous"`
	Percent  float64  `json:"percent"`
	Canaries []string `json:"canaries,omitempty"`
}

// Validate checks the rollout of an entry for package p: a valid ID, a
// previous package of p's app, a share within 0 to 100, valid server names.
func (r *Rollout) Validate(p PackageName) error {
	if err := CheckName("rollout", r.ID); err != nil {
		return err
	}
	switch {
	case r.Previous.IsZero():
		return errors.New("rollout: no previous package")
	case r.Previous.App != p.App:
		return fmt.Errorf("rollout: previous %s is not a package of %s", r.Previous, p.App)
	case r.Percent < 0 || r.Percent > 100 || r.Percent != r.Percent:
		return fmt.Errorf("rollout: percent %v is not within 0 to 100", r.Percent)
	}
	for _, s := range r.Canaries {
		if err := CheckName("server", s); err != nil {
			return fmt.Errorf("rollout: canaries: %w", err)
		}
	}
	return nil
}

// Equal reports whether r and o are the same rollout block (both nil
// counts).
func (r *Rollout) Equal(o *Rollout) bool {
	if r == nil || o == nil {
		return r == o
	}
	return r.ID == o.ID && r.Previous == o.Previous && r.Percent == o.Percent && slices.Equal(r.Canaries, o.Canaries)
}

// Takes reports whether server serves the rollout's new package: it is a
// canary, or its place, a hash of the rollout ID and its name spread evenly
// over [0, 100), falls below Percent. A server's place is fixed for the
// rollout, so a larger Percent keeps every server a smaller one took.
func (r *Rollout) Takes(server string) bool {
	if slices.Contains(r.Canaries, server) {
		return true
	}
	return Place(r.ID, server) < r.Percent
}

// Place is where server stands in rollout id, in [0, 100): the share of
// members a rollout must reach before it takes server.
func Place(id, server string) float64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(server))
	return float64(h.Sum64()%1_000_000) / 10_000
}

// For returns the entry server is to serve: e itself, but with the
// rollout's Previous package when e is under a rollout that has not taken
// server yet. The result carries no Rollout: it is what the host installs.
func (e Entry) For(server string) Entry {
	if e.Rollout == nil {
		return e
	}
	out := e
	out.Rollout = nil
	if !e.Rollout.Takes(server) {
		out.Package = e.Rollout.Previous
	}
	return out
}
