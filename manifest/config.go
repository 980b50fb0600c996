package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// PushConfig says which apps may go on which servers and which groups, as
// Skia's skiapush.conf does for servers (as JSON):
//
//	{"servers": {"web-1": ["hello"]}, "groups": {"web": ["hello", "api"]}}
//
// Group membership is not here: hosts declare their groups (pulld -groups,
// or groups= in Teletraan's host_info), so a new host joins by itself.
type PushConfig struct {
	Servers map[string][]string `json:"servers"`
	Groups  map[string][]string `json:"groups,omitempty"`
	// Rollouts holds, per group, the strategy of release -rollout (its
	// group and package left out: release fills them in).
	Rollouts map[string]RolloutStrategy `json:"rollouts,omitempty"`
}

// ParsePushConfig decodes and validates a push config: a JSON object with
// a "servers" object, whose names are valid, with no unknown fields or
// duplicate keys, and every group member a configured server.
func ParsePushConfig(data []byte) (*PushConfig, error) {
	var c PushConfig
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, errors.New(`push config: not a JSON object ({"servers": {…}})`)
	}
	if err := decodeStrict(data, &c); err != nil {
		return nil, fmt.Errorf("push config: %w", err)
	}
	if c.Servers == nil {
		// As for manifests: only an explicit empty object allows nothing,
		// so a truncated or half-generated file cannot empty the allow-list.
		return nil, errors.New(`push config: no "servers" object (an explicit "servers": {} allows nothing anywhere)`)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks names and group membership.
func (c *PushConfig) Validate() error {
	for s, apps := range c.Servers {
		if err := CheckName("server", s); err != nil {
			return fmt.Errorf("push config: servers: %w", err)
		}
		for _, a := range apps {
			if err := CheckName("app", a); err != nil {
				return fmt.Errorf("push config: servers[%q]: %w", s, err)
			}
		}
	}
	for g, apps := range c.Groups {
		if err := CheckName("group", g); err != nil {
			return fmt.Errorf("push config: groups: %w", err)
		}
		for _, a := range apps {
			if _, ok := c.Servers[a]; ok {
				// The old meaning of "groups" (lists of member servers):
				// refused, not silently read as app names.
				return fmt.Errorf("push config: groups[%q]: %q is a server: a group lists the apps it may carry, and hosts declare their groups themselves (pulld -groups, or groups= in host_info)", g, a)
			}
			if err := CheckName("app", a); err != nil {
				return fmt.Errorf("push config: groups[%q]: %w", g, err)
			}
		}
	}
	for g, st := range c.Rollouts {
		if err := CheckName("group", g); err != nil {
			return fmt.Errorf("push config: rollouts: %w", err)
		}
		if st.Group != "" || !st.Package.IsZero() {
			return fmt.Errorf("push config: rollouts[%q]: give the strategy without group and package (release -rollout fills them in)", g)
		}
		if err := st.WithDefaults().validateShape(); err != nil {
			return fmt.Errorf("push config: rollouts[%q]: %w", g, err)
		}
	}
	return nil
}

// RolloutFor returns the strategy of a rollout of p to group: the
// group's default from Rollouts (else DefaultRolloutStrategy), with its
// group and package.
func (c *PushConfig) RolloutFor(group string, p PackageName) RolloutStrategy {
	s, ok := c.Rollouts[group]
	if !ok {
		s = DefaultRolloutStrategy()
	}
	s.Group, s.Package = group, p
	return s.WithDefaults()
}

// Lists reports whether the config names t: a server under "servers", a
// group under "groups".
func (c *PushConfig) Lists(t Target) bool {
	_, ok := c.list(t)
	return ok
}

func (c *PushConfig) list(t Target) ([]string, bool) {
	if t.IsGroup() {
		apps, ok := c.Groups[t.Name]
		return apps, ok
	}
	apps, ok := c.Servers[t.Name]
	return apps, ok
}

// GroupNames returns the configured groups, sorted.
func (c *PushConfig) GroupNames() []string {
	return slices.Sorted(maps.Keys(c.Groups))
}

// ServerNames returns the configured servers, sorted.
func (c *PushConfig) ServerNames() []string {
	names := make([]string, 0, len(c.Servers))
	for s := range c.Servers {
		names = append(names, s)
	}
	sort.Strings(names)
	return names
}

// Allowed reports whether app may be deployed to t, a server or a group.
func (c *PushConfig) Allowed(t Target, app string) bool {
	apps, _ := c.list(t)
	return slices.Contains(apps, app)
}

// Marshal returns the canonical encoding of c: indented JSON with sorted
// keys and a trailing newline. ParsePushConfig(c.Marshal()) gives c back.
func (c *PushConfig) Marshal() []byte {
	out := PushConfig{Servers: c.Servers, Groups: c.Groups, Rollouts: c.Rollouts}
	if out.Servers == nil {
		out.Servers = map[string][]string{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		panic(err) // maps of string slices: cannot fail
	}
	return append(b, '\n')
}

// Clone returns a deep copy of c.
func (c *PushConfig) Clone() *PushConfig {
	out := &PushConfig{Servers: make(map[string][]string, len(c.Servers))}
	for s, apps := range c.Servers {
		out.Servers[s] = slices.Clone(apps)
	}
	if c.Rollouts != nil {
		out.Rollouts = make(map[string]RolloutStrategy, len(c.Rollouts))
		for g, st := range c.Rollouts {
			st.Steps = slices.Clone(st.Steps)
			out.Rollouts[g] = st
		}
	}
	if c.Groups != nil {
		out.Groups = make(map[string][]string, len(c.Groups))
		for g, m := range c.Groups {
			out.Groups[g] = slices.Clone(m)
		}
	}
	return out
}
