package pushctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/manifest"
)

// runStatus shows the fleet at a glance, as nomad status does: per group
// and env the desired build and how many members serve it, are on their
// way, failed or went silent, with the active rollouts; or, for one
// server, its envs desired against actual.
func runStatus(ctx context.Context, e *env, args []string) error {
	fs := e.flags("status")
	rest, err := parse(fs, args, -1, "at most one GROUP or SERVER")
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return fmt.Errorf("%w: status: want at most one GROUP or SERVER", cli.ErrUsage)
	}
	if err := e.connect(ctx); err != nil {
		return err
	}
	if _, err := e.c.Live(ctx); err != nil { // the fleet as the bucket has it now
		return err
	}
	groups, err := e.c.Groups(ctx)
	if err != nil {
		return err
	}
	if len(rest) == 1 {
		i := slices.IndexFunc(groups.Groups, func(g client.GroupSummary) bool { return g.Name == rest[0] })
		if i < 0 {
			return e.serverStatus(ctx, rest[0])
		}
		groups.Groups = groups.Groups[i : i+1]
	}
	return e.show(groups, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tENV\tDESIRED\tMEMBERS\tSERVING\tIN PROGRESS\tFAILED\tSILENT\tROLLOUT")
		for _, g := range groups.Groups {
			if len(g.Envs) == 0 {
				fmt.Fprintf(tw, "%s\t-\t-\t%d\t-\t-\t-\t%d\t-\n", g.Name, g.Members, g.Stale)
			}
			for _, env := range g.Envs {
				rollout := "-"
				for _, ro := range g.Rollouts {
					if ro.Env == env.Env {
						rollout = ro.ID + " (" + ro.Step + ")"
					}
				}
				desired := "-"
				if p, err := manifest.ParsePackageName(env.Package); err == nil {
					desired = short(p)
				}
				failed := env.States[string(manifest.StateFailed)] + env.States[string(manifest.StateRolledBack)]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", g.Name, env.Env, desired,
					g.Members, env.Done, env.States[string(manifest.StateDeploying)], failed, g.Stale, rollout)
			}
		}
		tw.Flush()
	})
}

// serverStatus shows one server's envs.
func (e *env) serverStatus(ctx context.Context, name string) error {
	servers, err := e.c.Servers(ctx, "")
	if err != nil {
		return err
	}
	i := slices.IndexFunc(servers.Servers, func(s client.ServerInfo) bool { return s.Name == name })
	if i < 0 {
		return fmt.Errorf("%w: no group or server %s", client.ErrNotFound, name)
	}
	s := servers.Servers[i]
	return e.show(s, func(w io.Writer) {
		fmt.Fprintf(w, "server %s (groups: %s)", s.Name, strings.Join(s.Groups, ", "))
		if s.Stale {
			fmt.Fprint(w, ", silent")
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ENV\tDESIRED\tSERVING\tSTATE\tSTEP\tERROR")
		for _, env := range s.Envs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", env.Env, orDash(env.Desired), orDash(env.Serving), orDash(env.State), orDash(string(env.Step)), env.Error)
		}
		tw.Flush()
	})
}

// runHistory lists a server's or group's manifest changes.
func runHistory(ctx context.Context, e *env, args []string) error {
	fs := e.flags("history")
	limit := fs.Int("limit", 20, "at most `N` changes")
	rest, err := e.open(ctx, fs, args, 1, "a SERVER or GROUP")
	if err != nil {
		return err
	}
	h, err := e.c.GroupHistory(ctx, rest[0], *limit)
	if err != nil && !isNotFound(err) {
		return err
	}
	if err != nil {
		if h, err = e.c.ServerHistory(ctx, rest[0], *limit); err != nil {
			return err
		}
	}
	return e.show(h, func(w io.Writer) {
		for _, r := range h.Records {
			fmt.Fprintf(w, "%s  %-12s %s\n", r.Time.UTC().Format("2006-01-02 15:04:05Z"), r.User, r.Action)
			for _, c := range r.Changes {
				fmt.Fprintf(w, "    %s\n", c)
			}
		}
	})
}

// runPackages lists an app's packages, newest first.
func runPackages(ctx context.Context, e *env, args []string) error {
	fs := e.flags("packages")
	rest, err := e.open(ctx, fs, args, 1, "an APP")
	if err != nil {
		return err
	}
	p, err := e.c.Packages(ctx, rest[0])
	if err != nil {
		return err
	}
	return e.show(p, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PACKAGE\tBUILT\tCOMMIT\tNOTE")
		for _, pk := range p.Packages {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", pk.Name, pk.Built.UTC().Format("2006-01-02 15:04Z"), short7(pk.Commit), pk.Note)
		}
		tw.Flush()
	})
}

// resolve turns APP@VERSION into the one package of APP whose commit
// starts with VERSION or whose name holds it; a full package name is
// returned as it is.
func (e *env) resolve(ctx context.Context, arg string) (string, error) {
	app, version, ok := strings.Cut(arg, "@")
	if !ok {
		return arg, nil
	}
	p, err := e.c.Packages(ctx, app)
	if err != nil {
		return "", err
	}
	var found []string
	for _, pk := range p.Packages {
		if strings.HasPrefix(pk.Commit, version) || strings.Contains(pk.Name, version) {
			found = append(found, pk.Name)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("%w: %s: no package of %s matches %q (pushctl packages %s lists them)", cli.ErrUsage, arg, app, version, app)
	}
	return "", fmt.Errorf("%w: %s: %d packages match (%s): give more of the commit", cli.ErrUsage, arg, len(found), strings.Join(found[:min(3, len(found))], ", "))
}

func short(p manifest.PackageName) string {
	if p.IsZero() {
		return "-"
	}
	return p.App + " " + short7(p.Commit)
}

func short7(s string) string { return s[:min(7, len(s))] }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func isNotFound(err error) bool { return errors.Is(err, client.ErrNotFound) }
