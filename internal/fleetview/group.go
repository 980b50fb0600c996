package fleetview

import (
	"slices"
	"strings"
	"time"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/manifest"
)

// stateCount is how many member envs are in one state.
type stateCount struct {
	State manifest.State
	Class string
	N     int
}

// memberEnv is one env of one member, as the group page shows it.
type memberEnv struct {
	Env        string
	Serving    *Label
	State      manifest.State
	StateClass string
	Same       bool   // serving the group's entry
	Override   bool   // the member's own manifest pins the env
	Held       string // pulld leaves the env as it is, and why
	Error      string
}

// memberView is one member of a group.
type memberView struct {
	Name      string
	Heartbeat Moment
	Stale     bool
	Pending   bool // has not acted on the group's current revision yet
	Envs      []memberEnv
}

// groupEnv is one entry of the group's manifest.
type groupEnv struct {
	Env, App string
	ShowEnv  bool
	Package  *Label
	Policy   manifest.Policy
	Config   string
	Done     int // members serving it
	// Rollout is the entry's active rollout, if any: Previous serves the
	// Members that have not taken Package yet.
	Rollout     *manifest.Rollout
	Previous    *Label
	RolloutURL  string
	RolloutStep string // "canaries", "10%"
}

// GroupView is a group as the console and the API show it: its manifest's
// entries joined with its members' statuses.
type GroupView struct {
	Name        string
	InConfig    bool
	Allowed     []string
	Version     string
	Revision    int64
	Exists      bool
	ManifestErr string
	Entries     []groupEnv
	Members     []memberView
	MemberCount int
	Counts      []stateCount
	Overrides   int
	Held        int      // member envs pulld holds (a conflict between groups, a missing group manifest)
	Others      []string // groups an entry can be promoted to
}

// BuildGroup joins a group's manifest with the statuses of its members.
func BuildGroup(st *State, conf *manifest.PushConfig, name string, now time.Time, lb *Labels) *GroupView {
	p := &GroupView{Name: name, InConfig: conf.Lists(manifest.Group(name)), Allowed: conf.Groups[name]}
	g := st.Groups[name]
	var m *manifest.Manifest
	if g != nil {
		p.Version, p.ManifestErr, p.Exists = string(g.Version), g.ManifestErr, g.Version != ""
		m = g.Manifest
	}
	if m != nil {
		p.Revision = m.Revision
		for _, e := range m.Packages {
			ge := groupEnv{Env: e.EnvName(), App: e.Package.App, ShowEnv: e.EnvName() != e.Package.App,
				Package: lb.Of(e.Package), Policy: e.Policy(), Config: formatConfigInline(e.Config)}
			if e.Rollout != nil {
				ge.Rollout, ge.Previous, ge.RolloutURL = e.Rollout, lb.Of(e.Rollout.Previous), RolloutURL(name, e.EnvName(), e.Rollout.ID)
				ge.RolloutStep = manifest.RolloutStep{Percent: e.Rollout.Percent, Canaries: e.Rollout.Canaries}.Label()
			}
			p.Entries = append(p.Entries, ge)
		}
	}
	counts := map[manifest.State]int{}
	for _, member := range st.Members(name) {
		ss := st.Servers[member]
		mv := memberView{Name: member, Heartbeat: At(ss.Status.Time, now), Stale: ss.Status.Stale(now)}
		for _, gs := range ss.Status.Groups {
			if gs.Name == name && m != nil && gs.Revision < m.Revision {
				mv.Pending = true
			}
		}
		for i, ge := range p.Entries {
			me := memberEnv{Env: ge.Env, State: manifest.StateUnknown}
			if ss.Version != "" && ss.Manifest != nil {
				if _, ok := ss.Manifest.Lookup(ge.Env); ok {
					me.Override = true // the host's own entry wins (manifest.Merge)
					p.Overrides++
				}
			}
			if es, ok := ss.Status.Lookup(ge.Env); ok {
				me.Serving, me.State, me.Held, me.Error = lb.ofString(es.Serving), es.State, es.Held, es.Error
				if me.State == "" {
					me.State = manifest.StateUnknown
				}
				me.Same = es.Serving == ge.Package.Name && es.State == manifest.StateServing && es.Held == ""
				if es.Held != "" {
					p.Held++
				}
			}
			if me.Same {
				p.Entries[i].Done++
			}
			me.StateClass = "s-" + strings.ToLower(string(me.State))
			counts[me.State]++
			mv.Envs = append(mv.Envs, me)
		}
		p.Members = append(p.Members, mv)
	}
	p.MemberCount = len(p.Members)
	for _, state := range slices.Sorted(func(yield func(manifest.State) bool) {
		for k := range counts {
			if !yield(k) {
				return
			}
		}
	}) {
		p.Counts = append(p.Counts, stateCount{State: state, Class: "s-" + strings.ToLower(string(state)), N: counts[state]})
	}
	p.Others = slices.DeleteFunc(st.GroupNames(conf), func(g string) bool { return g == name })
	return p
}

// Summaries summarizes every group of st and conf.
func Summaries(st *State, conf *manifest.PushConfig, now time.Time, lb *Labels) []client.GroupSummary {
	out := []client.GroupSummary{}
	for _, name := range st.GroupNames(conf) {
		p := BuildGroup(st, conf, name, now, lb)
		a := client.GroupSummary{Name: name, InConfig: p.InConfig, Allowed: append([]string{}, p.Allowed...), Exists: p.Exists, Revision: p.Revision,
			Version: strings.Trim(p.Version, `"`), Error: p.ManifestErr, Members: p.MemberCount, Override: p.Overrides, Held: p.Held, States: map[string]int{}}
		for _, c := range p.Counts {
			a.States[string(c.State)] = c.N
		}
		for _, m := range p.Members {
			if m.Stale {
				a.Stale++
			}
			if m.Pending {
				a.Pending++
			}
		}
		a.Rollouts = []client.ActiveRollout{}
		a.Envs = []client.EnvSummary{}
		for _, e := range p.Entries {
			a.Done += e.Done
			es := client.EnvSummary{Env: e.Env, Package: e.Package.Name, Done: e.Done, States: map[string]int{}}
			for _, m := range p.Members {
				for _, me := range m.Envs {
					if me.Env == e.Env {
						es.States[string(me.State)]++
					}
				}
			}
			a.Envs = append(a.Envs, es)
			if e.Rollout != nil {
				a.Rollouts = append(a.Rollouts, client.ActiveRollout{Env: e.Env, ID: e.Rollout.ID, Step: e.RolloutStep, URL: e.RolloutURL})
			}
		}
		out = append(out, a)
	}
	return out
}
