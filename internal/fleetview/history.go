package fleetview

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

type HistoryEntry struct {
	Time    Moment
	User    string
	Action  string
	Changes []string
	// Outcome says what the hosts did with the build this change set,
	// while it is the one in force ("serving on 3 of 3", "rolled back on
	// web-2"), or, once a later change replaced it, what the hosts had
	// done with it by then, from the outcomes each keeps (pastOutcome).
	Outcome string
	// Back, when set, is the build this change set, which differs from
	// the one in force: the row's "roll back to this" deploys it again
	// (to BackURL, conditional on Version).
	Back             *Label
	BackURL, Version string
}

// HistoryLimit is how many audit records a server's or group's page shows.
const HistoryLimit = 50

// History returns the newest historyLimit changes of t's manifest, each
// manifest as see returns it (the viewer's view), or why they could not be
// listed.
func (c *View) History(ctx context.Context, t manifest.Target, now time.Time, see func(*manifest.Manifest) *manifest.Manifest) ([]HistoryEntry, string) {
	recs, err := c.b.ListAudit(ctx, t, HistoryLimit)
	st := c.Load()
	var cur *manifest.Manifest
	var version blobstore.Version
	var statuses []*manifest.Status
	if t.IsGroup() {
		if g := st.Groups[t.Name]; g != nil {
			cur, version = g.Manifest, g.Version
		}
		for _, m := range st.Members(t.Name) {
			statuses = append(statuses, st.Servers[m].Status)
		}
	} else if ss := st.Servers[t.Name]; ss != nil {
		cur, version = ss.Manifest, ss.Version
		if ss.Status != nil {
			statuses = append(statuses, ss.Status)
		}
	}
	lb := c.Labels()
	replaced := map[string]time.Time{} // envs a newer record set, and when
	var out []HistoryEntry
	for _, rec := range recs { // newest first
		h := HistoryEntry{Time: At(rec.Time, now), User: rec.User, Action: rec.Action, Changes: DescribeChange(see(rec.Before), see(rec.After))}
		if e, ok := setEntry(rec.Before, rec.After); ok {
			env := e.EnvName()
			inForceEntry, inForce := manifest.Entry{}, false
			if cur != nil {
				inForceEntry, inForce = cur.Lookup(env)
			}
			switch until, ok := replaced[env]; {
			case ok:
				h.Outcome = PastOutcome(statuses, env, e.Package, rec.Time, until)
			case inForce && inForceEntry.Package == e.Package:
				h.Outcome = outcome(statuses, env, e.Package)
			}
			if !inForce || inForceEntry.Package != e.Package {
				h.Back, h.Version = lb.Of(e.Package), string(version)
				h.BackURL = "/servers/" + t.Name + "/apps/" + e.Package.App + "/deploy"
				if t.IsGroup() {
					h.BackURL = "/groups/" + t.Name + "/apps/" + e.Package.App + "/deploy"
				}
			}
			replaced[env] = rec.Time
		}
		out = append(out, h)
	}
	if err != nil {
		return out, err.Error()
	}
	return out, ""
}

// setEntry returns the one entry whose package a change set, if it set
// exactly one.
func setEntry(before, after *manifest.Manifest) (manifest.Entry, bool) {
	if after == nil {
		return manifest.Entry{}, false
	}
	var set []manifest.Entry
	for _, e := range after.Packages {
		if before != nil {
			if b, ok := before.Lookup(e.EnvName()); ok && b.Package == e.Package {
				continue
			}
		}
		set = append(set, e)
	}
	if len(set) != 1 {
		return manifest.Entry{}, false
	}
	return set[0], true
}

// outcome says what the hosts whose statuses are given did with p in env.
func outcome(statuses []*manifest.Status, env string, p manifest.PackageName) string {
	var serving, deploying, total int
	var rolledBack, failed []string
	for _, st := range statuses {
		if st == nil {
			continue
		}
		total++
		es, ok := st.Lookup(env)
		switch {
		case !ok:
		case es.Serving == p.String() && es.State == manifest.StateServing:
			serving++
		case es.State == manifest.StateDeploying:
			deploying++
		case es.Desired == p.String() && es.State == manifest.StateRolledBack:
			rolledBack = append(rolledBack, st.Server+where(es.Step, es.ExitCode))
		case es.Desired == p.String() && es.State == manifest.StateFailed:
			failed = append(failed, st.Server+where(es.Step, es.ExitCode))
		}
	}
	if total == 0 {
		return "no host has reported yet"
	}
	parts := []string{fmt.Sprintf("serving on %d of %d", serving, total)}
	if deploying > 0 {
		parts = append(parts, fmt.Sprintf("%d deploying", deploying))
	}
	if len(rolledBack) > 0 {
		parts = append(parts, "rolled back on "+strings.Join(rolledBack, ", "))
	}
	if len(failed) > 0 {
		parts = append(parts, "failed on "+strings.Join(failed, ", "))
	}
	return strings.Join(parts, "; ")
}

// where says where a host's attempt failed: " (at POST_RESTART, exit 1)".
func where(step manifest.Step, exit int) string {
	var parts []string
	if step != "" {
		parts = append(parts, "at "+string(step))
	}
	if exit != 0 {
		parts = append(parts, "exit "+strconv.Itoa(exit))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// PastOutcome says what the hosts whose statuses are given did with p in
// env after a change set it at from, until a later change at until
// replaced it, from the outcomes each host keeps (EnvStatus.Recent): the
// last outcome for p in that window counts. A host whose kept outcomes do
// not reach back to from has no record of it.
func PastOutcome(statuses []*manifest.Status, env string, p manifest.PackageName, from, until time.Time) string {
	var serving, unknown, total int
	var rolledBack, failed []string
	for _, st := range statuses {
		if st == nil {
			continue
		}
		total++
		es, _ := st.Lookup(env)
		var last *manifest.Outcome
		reaches := len(es.Recent) > 0 && len(es.Recent) < manifest.RecentOutcomes // it kept every outcome it had
		for i := range es.Recent {
			o := &es.Recent[i]
			// An outcome may be stamped up to manifest.ClockSkew before
			// the change's audit time: the two clocks are different
			// machines'.
			if o.Time.Before(from.Add(-manifest.ClockSkew)) {
				reaches = true
				break
			}
			if last == nil && o.Package == p.String() && o.Time.Before(until) {
				last = o
			}
		}
		switch {
		case last == nil && !reaches:
			unknown++
		case last == nil:
		case last.State == manifest.StateServing:
			serving++
		case last.State == manifest.StateRolledBack:
			rolledBack = append(rolledBack, st.Server+where(last.Step, last.ExitCode))
		case last.State == manifest.StateFailed:
			failed = append(failed, st.Server+where(last.Step, last.ExitCode))
		}
	}
	parts := []string{"replaced by a later change"}
	if total == 0 {
		return parts[0]
	}
	parts = append(parts, fmt.Sprintf("had served on %d of %d", serving, total))
	if len(rolledBack) > 0 {
		parts = append(parts, "rolled back on "+strings.Join(rolledBack, ", "))
	}
	if len(failed) > 0 {
		parts = append(parts, "failed on "+strings.Join(failed, ", "))
	}
	if unknown > 0 {
		parts = append(parts, fmt.Sprintf("no record on %d", unknown))
	}
	return strings.Join(parts, "; ")
}

// VersionText names a package as people know it: its app, commit and
// release note ("hello 2222222222bb “faster greetings”"), for flashes and
// prompts.
func (c *View) VersionText(ctx context.Context, p manifest.PackageName) string {
	t := p.App + " " + p.Commit
	if p.Dirty {
		t += " (dirty)"
	}
	if d := c.describe(ctx, []manifest.PackageName{p}); len(d) == 1 && d[0].Meta.Note != "" {
		t += " “" + d[0].Meta.Note + "”"
	}
	return t
}

// DescribeChange lists, per env, how after differs from before, for the
// History.
func DescribeChange(before, after *manifest.Manifest) []string {
	if before == nil {
		before = &manifest.Manifest{}
	}
	if after == nil {
		after = &manifest.Manifest{}
	}
	var out []string
	for _, e := range after.Packages {
		env := e.EnvName()
		b, ok := before.Lookup(env)
		if !ok {
			out = append(out, "+ "+env+": "+e.Package.ID())
			continue
		}
		if b.Package != e.Package {
			out = append(out, env+": "+b.Package.ID()+" → "+e.Package.ID())
		}
		if !mapsEqual(b.Config, e.Config) {
			out = append(out, env+": config "+formatConfigInline(b.Config)+" → "+formatConfigInline(e.Config))
		}
		if b.Restart != e.Restart {
			out = append(out, env+": restart requested")
		}
		if b.Policy() != e.Policy() {
			out = append(out, env+": on_failure "+string(b.Policy())+" → "+string(e.Policy()))
		}
	}
	for _, b := range before.Packages {
		if _, ok := after.Lookup(b.EnvName()); !ok {
			out = append(out, "− "+b.EnvName()+": "+b.Package.ID())
		}
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func formatConfigInline(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	return "{" + strings.ReplaceAll(strings.TrimSuffix(FormatConfigText(m), "\n"), "\n", ", ") + "}"
}

// formatConfigText is the inverse of parseConfigText: sorted KEY=VALUE
// lines. Values holding a line break cannot be edited in the form; the
// caller shows them read-only.
func FormatConfigText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
		b.WriteByte('\n')
	}
	return b.String()
}
