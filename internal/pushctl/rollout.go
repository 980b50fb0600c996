package pushctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/backoff"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/manifest"
)

const rolloutHelp = `
  rollout start -group G [strategy flags] [-wait [-timeout D]] PACKAGE
      start a rollout of PACKAGE (app/name.tar.zst, as release prints it,
      or APP@COMMIT, the one package of APP whose commit starts so)
      to group G; the strategy flags left out take the group's default
      from the push config. With -wait, follow it to its end.
  rollout get ID            the record: state, step, the history of steps
  rollout watch ID          follow a rollout to its end (as start -wait)
  rollout list [-group G]   rollouts, newest first
  rollout pause|resume|promote|abort|revert ID

  Strategy flags, one per field of the API's strategy (docs/api.md):
    -env E -canary N -steps 10,50,100 -min-healthy-time 30s
    -healthy-deadline 5m -progress-deadline 10m -max-failures 0|10%
    -min-staged 100% -auto-revert -pause-after-canary -stage-first
    -allow-empty

  Following a rollout ends with exit status 0 when it succeeded, 1 when it
  failed, was reverted or aborted (the failing hosts and the first lines
  of their script output printed), 3 when -timeout passed first (a paused
  rollout counts: resume it from anywhere, pushctl follows on). A pushui
  that restarts meanwhile is waited for.
`

// watchPoll is how long one long poll of a followed rollout lasts.
const watchPoll = 30 * time.Second

func runRollout(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: rollout: want start, get, watch, list, pause, resume, promote, abort or revert", cli.ErrUsage)
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "start":
		return rolloutStart(ctx, e, args)
	case "get", "watch":
		fs := e.flags("rollout " + sub)
		timeout := fs.Duration("timeout", 30*time.Minute, "with watch: give up after `D` (exit status 3)")
		rest, err := e.open(ctx, fs, args, 1, "a rollout ID")
		if err != nil {
			return err
		}
		if sub == "watch" {
			return e.watch(ctx, rest[0], *timeout)
		}
		r, err := e.c.GetRollout(ctx, rest[0])
		if err != nil {
			return err
		}
		return e.show(r.RolloutRecord, func(w io.Writer) { describe(w, r.RolloutRecord) })
	case "list":
		fs := e.flags("rollout list")
		group := fs.String("group", "", "only group `G`'s")
		limit := fs.Int("limit", 20, "at most `N` (0: all)")
		if _, err := parse(fs, args, 0, "no arguments"); err != nil {
			return err
		}
		if err := e.connect(ctx); err != nil {
			return err
		}
		recs, err := e.c.Rollouts(ctx, *group, *limit)
		if err != nil {
			return err
		}
		return e.show(recs, func(w io.Writer) {
			fmt.Fprintf(w, "%-24s %-12s %-10s %-10s %s\n", "ID", "GROUP/ENV", "STATE", "STEP", "PACKAGE")
			for _, r := range recs {
				fmt.Fprintf(w, "%-24s %-12s %-10s %-10s %s\n", r.ID, r.Strategy.Group+"/"+r.Strategy.Env, r.State, stepOf(r), r.Strategy.Package)
			}
		})
	case "pause", "resume", "promote", "abort", "revert":
		fs := e.flags("rollout " + sub)
		rest, err := e.open(ctx, fs, args, 1, "a rollout ID")
		if err != nil {
			return err
		}
		rec, err := e.c.RolloutCommand(ctx, rest[0], sub)
		if err != nil {
			return err
		}
		return e.show(rec, func(w io.Writer) { fmt.Fprintf(w, "rollout %s: %s done; it is %s\n", rec.ID, sub, rec.State) })
	}
	return fmt.Errorf("%w: rollout %s: want start, get, watch, list, pause, resume, promote, abort or revert", cli.ErrUsage, sub)
}

// rolloutStart parses the start command's strategy flags: only those
// given are sent, so the rest take the group's default.
func rolloutStart(ctx context.Context, e *env, args []string) error {
	fs := e.flags("rollout start")
	group := fs.String("group", "", "the `group` to roll out to (required)")
	wait := fs.Bool("wait", false, "follow the rollout to its end; the exit status says how it ended")
	timeout := fs.Duration("timeout", 30*time.Minute, "with -wait: give up after `D` (exit status 3)")
	set := map[string]any{}
	str := func(name, field, what string, conv func(string) (any, error)) {
		fs.Func(name, what, func(v string) error {
			x, err := conv(v)
			if err != nil {
				return err
			}
			set[field] = x
			return nil
		})
	}
	asIs := func(v string) (any, error) { return v, nil }
	duration := func(v string) (any, error) {
		if _, err := time.ParseDuration(v); err != nil {
			return nil, errors.New("want a duration such as 30s")
		}
		return v, nil
	}
	quota := func(v string) (any, error) {
		if n, err := strconv.Atoi(v); err == nil {
			return n, nil
		}
		return v, nil // "10%": pushui checks it
	}
	str("env", "env", "the `env` to roll out (default: the package's app)", asIs)
	str("canary", "canary", "how many canary `hosts` first (0: none)", func(v string) (any, error) { return strconv.Atoi(v) })
	str("steps", "steps", "the waves, as `percentages` of the group ending at 100 (10,50,100)", func(v string) (any, error) {
		var out []float64
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(f), "%"), 64)
			if err != nil {
				return nil, errors.New("want percentages such as 10,50,100")
			}
			out = append(out, n)
		}
		return out, nil
	})
	str("min-healthy-time", "min_healthy_time", "how long a step's hosts must serve healthy (`D`)", duration)
	str("healthy-deadline", "healthy_deadline", "how long a host may take to get healthy (`D`)", duration)
	str("progress-deadline", "progress_deadline", "how long a step may go without progress (`D`)", duration)
	str("max-failures", "max_failures", "failed hosts a step tolerates: a `count` or a percentage (10%)", quota)
	str("min-staged", "min_staged", "with -stage-first: the members that must stage first (`N or P%`)", quota)
	boolean := func(name, field, what string) {
		fs.BoolFunc(name, what, func(v string) error {
			b, err := strconv.ParseBool(v)
			set[field] = b
			return err
		})
	}
	boolean("auto-revert", "auto_revert", "revert the group when the rollout fails")
	boolean("pause-after-canary", "pause_after_canary", "pause after the canaries, for a person to resume")
	boolean("stage-first", "stage_first", "stage the build on every member before any switches")
	boolean("allow-empty", "allow_empty", "start even when the group has no members")
	rest, err := parse(fs, args, 1, "a PACKAGE (app/name.tar.zst) or APP@VERSION (a commit)")
	if err != nil {
		return err
	}
	if *group == "" {
		return fmt.Errorf("%w: rollout start: -group is required", cli.ErrUsage)
	}
	if err := e.connect(ctx); err != nil {
		return err
	}
	name, err := e.resolve(ctx, rest[0])
	if err != nil {
		return err
	}
	p, err := manifest.ParsePackageName(name)
	if err != nil {
		return fmt.Errorf("%w: rollout start: %v", cli.ErrUsage, err)
	}
	rec, err := e.c.StartRollout(ctx, client.RolloutStart{Group: *group, Package: p, Set: set})
	if err != nil {
		return err
	}
	if !*wait {
		return e.show(rec, func(w io.Writer) {
			fmt.Fprintf(w, "rollout %s of %s to group %s started (%s)\n", rec.ID, p, *group, stepOf(rec))
		})
	}
	if e.output != "json" {
		fmt.Fprintf(e.cfg.Stdout, "rollout %s of %s to group %s started\n", rec.ID, p, *group)
	}
	return e.watch(ctx, rec.ID, *timeout)
}

// watch follows rollout id until it ends or timeout passes: one long poll
// at a time, a line (or, on a terminal, a redrawn line) per change, and a
// pushui that stops answering is waited for with backoff. The error says
// how it ended (nil: succeeded).
func (e *env) watch(ctx context.Context, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last *client.Rollout
	shown := ""
	fails := 0
	for {
		etag := ""
		if last != nil {
			etag = last.ETag
		}
		r, err := e.c.WaitRollout(ctx, id, etag, watchPoll)
		switch {
		case ctx.Err() != nil:
			state := "running"
			if last != nil {
				state = string(last.State)
			}
			e.endLine()
			return fmt.Errorf("rollout %s: still %s after -timeout %v: %w", id, state, timeout, ErrTimeout)
		case errors.Is(err, client.ErrUnavailable):
			fails++
			if fails == 1 {
				e.endLine()
				fmt.Fprintf(e.cfg.Stderr, "pushctl: pushui does not answer (%v); waiting for it\n", err)
			}
			if backoff.Sleep(ctx, backoff.Delay(fails, 500*time.Millisecond, 10*time.Second)) != nil {
				continue // the timeout case above reports it
			}
			continue
		case err != nil:
			e.endLine()
			return err
		}
		fails = 0
		last = r
		if line := progress(r.RolloutRecord); line != shown {
			e.progressLine(ctx, r.RolloutRecord, line)
			shown = line
		}
		if !r.State.Active() && r.State != manifest.RolloutInvalid {
			e.endLine()
			return e.ended(ctx, r.RolloutRecord)
		}
	}
}

// ended reports how a finished rollout ended: nil when it succeeded,
// ErrFailed otherwise, after the failing hosts and their output.
func (e *env) ended(ctx context.Context, rec *manifest.RolloutRecord) error {
	if e.output == "json" {
		b, _ := json.Marshal(rec)
		fmt.Fprintln(e.cfg.Stdout, string(b))
	}
	if rec.State == manifest.RolloutSucceeded {
		if e.output != "json" {
			fmt.Fprintf(e.cfg.Stdout, "rollout %s succeeded: every member of %s serves %s\n", rec.ID, rec.Strategy.Group, rec.Strategy.Package)
		}
		return nil
	}
	w := e.cfg.Stderr
	fmt.Fprintf(w, "rollout %s %s: %s\n", rec.ID, rec.State, rec.Reason)
	seen := map[string]bool{}
	for i, st := range rec.History {
		for _, host := range st.Failed {
			if seen[host] {
				continue
			}
			seen[host] = true
			fmt.Fprintf(w, "  %s failed in step %d (%s)%s\n", host, i+1, st.Label(), e.hostFailure(ctx, host, rec))
		}
	}
	return fmt.Errorf("rollout %s %s: %w", rec.ID, rec.State, ErrFailed)
}

// hostFailure is what host's status says of its failed attempt at rec's
// build: the step, the exit code and the first lines of the script's
// output, indented.
func (e *env) hostFailure(ctx context.Context, host string, rec *manifest.RolloutRecord) string {
	st, err := e.c.Status(ctx, host)
	if err != nil {
		return ": its status cannot be read: " + err.Error()
	}
	es, ok := st.Lookup(rec.Strategy.Env)
	if !ok {
		return ""
	}
	for i := len(es.Recent) - 1; i >= 0; i-- {
		o := es.Recent[i]
		if o.Package != rec.Strategy.Package.String() || o.Error == "" {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, ": at %s", o.Step)
		if o.ExitCode != 0 {
			fmt.Fprintf(&b, ", exit code %d", o.ExitCode)
		}
		fmt.Fprintf(&b, ": %s", o.Error)
		for line := range strings.Lines(strings.TrimSpace(o.Output)) {
			b.WriteString("\n      " + strings.TrimRight(line, "\n"))
		}
		return b.String()
	}
	return ""
}

// progress is one line about where rec stands.
func progress(rec *manifest.RolloutRecord) string {
	if len(rec.History) == 0 {
		return fmt.Sprintf("rollout %s: %s", rec.ID, rec.State)
	}
	st := rec.History[rec.Step]
	line := fmt.Sprintf("rollout %s: %s, step %d of %s: %s, %d/%d hosts done", rec.ID, rec.State, rec.Step+1, stepsOf(rec), st.Label(), st.Done, st.Hosts)
	if len(st.Failed) > 0 {
		line += fmt.Sprintf(", %d failed (%s)", len(st.Failed), strings.Join(st.Failed, ", "))
	}
	return line
}

func stepsOf(rec *manifest.RolloutRecord) string {
	n := len(rec.Strategy.Steps)
	if rec.Strategy.Canary > 0 {
		n++
	}
	if rec.Strategy.StageFirst {
		n++
	}
	return strconv.Itoa(n)
}

func stepOf(rec *manifest.RolloutRecord) string {
	if len(rec.History) == 0 {
		return "-"
	}
	return rec.History[rec.Step].Label()
}

// progressLine shows where rec stands: without a terminal as line, a
// line of its own per change; on a terminal as a block redrawn in place —
// the step with a bar of its hosts done, the group's members by state, the
// failing hosts.
func (e *env) progressLine(ctx context.Context, rec *manifest.RolloutRecord, line string) {
	if e.output == "json" {
		return
	}
	if !e.cfg.Terminal {
		fmt.Fprintln(e.cfg.Stdout, line)
		return
	}
	block := display(rec, e.members(ctx, rec.Strategy.Group))
	var b strings.Builder
	if e.drawn > 0 {
		fmt.Fprintf(&b, "\033[%dA", e.drawn) // back to the block's first line
	}
	for _, l := range block {
		b.WriteString("\r\033[K" + l + "\n")
	}
	fmt.Fprint(e.cfg.Stdout, b.String())
	e.drawn = len(block)
}

// members returns group's members by state ("" when they cannot be read).
func (e *env) members(ctx context.Context, group string) string {
	if _, err := e.c.Live(ctx); err != nil {
		return ""
	}
	gs, err := e.c.Groups(ctx)
	if err != nil {
		return ""
	}
	for _, g := range gs.Groups {
		if g.Name != group {
			continue
		}
		var parts []string
		for _, st := range slices.Sorted(maps.Keys(g.States)) {
			parts = append(parts, fmt.Sprintf("%d %s", g.States[st], strings.ToLower(st)))
		}
		if g.Stale > 0 {
			parts = append(parts, fmt.Sprintf("%d silent", g.Stale))
		}
		return fmt.Sprintf("%d members: %s", g.Members, strings.Join(parts, ", "))
	}
	return ""
}

// display is the terminal's block for rec: its state, the current step
// with a bar of its hosts done, the members line, the failing hosts.
func display(rec *manifest.RolloutRecord, members string) []string {
	out := []string{fmt.Sprintf("rollout %s of %s to group %s: %s", rec.ID, rec.Strategy.Package, rec.Strategy.Group, rec.State)}
	if len(rec.History) > 0 {
		st := rec.History[rec.Step]
		const width = 30
		done := 0
		if st.Hosts > 0 {
			done = min(width, width*st.Done/st.Hosts)
		}
		out = append(out, fmt.Sprintf("  step %d of %s, %-10s [%s%s] %d/%d hosts done", rec.Step+1, stepsOf(rec), st.Label(),
			strings.Repeat("#", done), strings.Repeat(".", width-done), st.Done, st.Hosts))
	}
	if members != "" {
		out = append(out, "  "+members)
	}
	var failing []string
	for _, st := range rec.History {
		for _, h := range st.Failed {
			if !slices.Contains(failing, h) {
				failing = append(failing, h)
			}
		}
	}
	if len(failing) > 0 {
		out = append(out, "  failing: "+strings.Join(failing, ", "))
	}
	return out
}

// endLine ends the progress display: nothing more to redraw.
func (e *env) endLine() { e.drawn = 0 }

// describe prints a record for a person.
func describe(w io.Writer, r *manifest.RolloutRecord) {
	fmt.Fprintf(w, "rollout %s of %s to group %s env %s: %s", r.ID, r.Strategy.Package, r.Strategy.Group, r.Strategy.Env, r.State)
	if r.Reason != "" {
		fmt.Fprintf(w, " (%s)", r.Reason)
	}
	fmt.Fprintln(w)
	for i, st := range r.History {
		mark := " "
		if i == r.Step && r.State.Active() {
			mark = ">"
		}
		fmt.Fprintf(w, "%s %d. %-12s %d/%d done", mark, i+1, st.Label(), st.Done, st.Hosts)
		if len(st.Failed) > 0 {
			fmt.Fprintf(w, ", failed: %s", strings.Join(st.Failed, ", "))
		}
		if st.Outcome != "" {
			fmt.Fprintf(w, " [%s]", st.Outcome)
		}
		fmt.Fprintln(w)
	}
}

// show prints v as the API's JSON with -o json, else as table does.
func (e *env) show(v any, table func(io.Writer)) error {
	if e.output == "json" {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(e.cfg.Stdout, string(b))
		return err
	}
	table(e.cfg.Stdout)
	return nil
}
