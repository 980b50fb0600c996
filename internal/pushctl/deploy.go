package pushctl

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/cli"
)

func runDeploy(ctx context.Context, e *env, args []string) error {
	fs := e.flags("deploy")
	servers := fs.String("server", "", "the `servers` to deploy to, comma-separated")
	group := fs.String("group", "", "the `group` whose manifest to set (one write, whatever its size)")
	abort := fs.Bool("abort-rollout", false, "abort the active rollout that would refuse the deploy first")
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
	return e.show(out, func(w io.Writer) {
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
	})
}

func runLogs(ctx context.Context, e *env, args []string) error {
	fs := e.flags("logs")
	rest, err := parse(fs, args, 2, "SERVER ENV")
	if err != nil {
		return err
	}
	if err := e.connect(ctx); err != nil {
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
