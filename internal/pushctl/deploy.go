package pushctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/backoff"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/manifest"
)

func runDeploy(ctx context.Context, e *env, args []string) error {
	fs := e.flags("deploy")
	servers := fs.String("server", "", "the `servers` to deploy to, comma-separated")
	group := fs.String("group", "", "the `group` whose manifest to set (one write, whatever its size)")
	abort := fs.Bool("abort-rollout", false, "abort the active rollout that would refuse the deploy first")
	wait := fs.Bool("wait", false, "follow the deploy until every host serves the build (exit 0) or one failed it (exit 1)")
	timeout := fs.Duration("timeout", 30*time.Minute, "with -wait: give up after `D` (exit status 3)")
	rest, err := parse(fs, args, 1, "a PACKAGE (app/name.tar.zst) or APP@VERSION (a commit)")
	if err != nil {
		return err
	}
	if (*servers == "") == (*group == "") {
		return fmt.Errorf("%w: deploy: give one of -server and -group", cli.ErrUsage)
	}
	if err := e.connect(ctx); err != nil {
		return err
	}
	pkg, err := e.resolve(ctx, rest[0])
	if err != nil {
		return err
	}
	req := client.DeployRequest{Package: pkg, Group: *group, AbortRollout: *abort}
	if *servers != "" {
		req.Servers = strings.Split(*servers, ",")
	}
	out, err := e.c.Deploy(ctx, req)
	if err != nil {
		return err
	}
	if err := e.show(out, func(w io.Writer) { deployed(w, out) }); err != nil || !*wait {
		return err
	}
	return e.waitDeploy(ctx, out.Package, req, *timeout)
}

// deployed prints what a deploy wrote.
func deployed(w io.Writer, out client.DeployResponse) {
	for _, r := range out.Results {
		where := "server " + r.Server
		if r.Group != "" {
			where = "group " + r.Group
		}
		switch {
		case r.Error != "":
			fmt.Fprintf(w, "%s: failed: %s\n", where, r.Error)
		case r.Skipped != "":
			fmt.Fprintf(w, "%s: skipped: %s\n", where, r.Skipped)
		case r.Changed:
			fmt.Fprintf(w, "%s: set to %s (revision %d)\n", where, out.Package, r.Revision)
		default:
			fmt.Fprintf(w, "%s: already %s\n", where, out.Package)
		}
	}
}

// deployPoll is how often a followed deploy reads the hosts' state.
const deployPoll = 2 * time.Second

// waitDeploy follows a deploy of pkg until every host it names (the
// group's members, or the servers) serves it, one failed it, or timeout
// passes: nil, ErrFailed after the failing hosts and their output, or
// ErrTimeout.
func (e *env) waitDeploy(ctx context.Context, pkg string, req client.DeployRequest, timeout time.Duration) error {
	p, err := manifest.ParsePackageName(pkg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	shown := ""
	for {
		_, err := e.c.Live(ctx) // the hosts' state as the bucket has it now
		var list client.Servers
		if err == nil {
			list, err = e.c.Servers(ctx, req.Group)
		}
		switch {
		case ctx.Err() != nil:
			e.endLine()
			return fmt.Errorf("deploy of %s: not everywhere after -timeout %v (%s): %w", pkg, timeout, shown, ErrTimeout)
		case errors.Is(err, client.ErrUnavailable):
			_ = backoff.Sleep(ctx, deployPoll)
			continue
		case err != nil:
			return err
		}
		var serving, failed []string
		hosts := 0
		for _, s := range list.Servers {
			if req.Group == "" && !slices.Contains(req.Servers, s.Name) {
				continue
			}
			hosts++
			for _, env := range s.Envs {
				if env.App != p.App || env.Desired != pkg || s.Pending || env.InProgress {
					continue // not this build, or the host has yet to act on it
				}
				switch {
				case env.Serving == pkg && env.State == string(manifest.StateServing):
					serving = append(serving, s.Name)
				case env.Failed:
					failed = append(failed, s.Name)
				}
			}
		}
		line := fmt.Sprintf("deploy of %s: %d of %d hosts serve it", pkg, len(serving), hosts)
		if len(failed) > 0 {
			line += fmt.Sprintf(", %d failed (%s)", len(failed), strings.Join(failed, ", "))
		}
		if line != shown && e.output != "json" {
			if e.cfg.Terminal {
				fmt.Fprintf(e.cfg.Stdout, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(e.cfg.Stdout, line)
			}
			shown = line
		}
		switch {
		case len(failed) > 0:
			if e.cfg.Terminal {
				fmt.Fprintln(e.cfg.Stdout)
			}
			rec := &manifest.RolloutRecord{Strategy: manifest.RolloutStrategy{Env: p.App, Package: p}}
			for _, host := range failed {
				fmt.Fprintf(e.cfg.Stderr, "  %s failed%s\n", host, e.hostFailure(ctx, host, rec))
			}
			return fmt.Errorf("deploy of %s failed on %s: %w", pkg, strings.Join(failed, ", "), ErrFailed)
		case hosts > 0 && len(serving) == hosts:
			if e.cfg.Terminal {
				fmt.Fprintln(e.cfg.Stdout)
			}
			return nil
		}
		_ = backoff.Sleep(ctx, deployPoll)
	}
}

func runLogs(ctx context.Context, e *env, args []string) error {
	fs := e.flags("logs")
	rest, err := e.open(ctx, fs, args, 2, "SERVER ENV")
	if err != nil {
		return err
	}
	st, err := e.c.Status(ctx, rest[0])
	if err != nil {
		return err
	}
	es, ok := st.Lookup(rest[1])
	if !ok {
		return fmt.Errorf("%w: %s reports no env %s", cli.ErrUsage, rest[0], rest[1])
	}
	return e.show(es, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s: %s", rest[0], es.Env, es.State)
		if es.Step != "" && string(es.Step) != string(es.State) {
			fmt.Fprintf(w, " at %s", es.Step)
		}
		if es.Error != "" {
			fmt.Fprintf(w, ": %s", es.Error)
		}
		fmt.Fprintln(w)
		if es.Output != "" {
			fmt.Fprint(w, es.Output)
			return
		}
		// The current attempt said nothing: the last one that did.
		for i := len(es.Recent) - 1; i >= 0; i-- {
			if o := es.Recent[i]; o.Output != "" {
				fmt.Fprintf(w, "last output, of the %s of %s (%s at %s, %s):\n%s", o.Action, o.Package, o.State, o.Step, o.Time.UTC().Format("2006-01-02 15:04:05Z"), o.Output)
				return
			}
		}
	})
}
