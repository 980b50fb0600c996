package pushctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/cli"
)

// The outcomes Run's error carries, besides cli.ErrUsage (2).
var (
	// ErrFailed: the rollout failed, was reverted or aborted, or a
	// deploy failed on a host (1).
	ErrFailed = errors.New("did not succeed")
	// ErrTimeout: -timeout was reached before the rollout ended (3).
	ErrTimeout = errors.New("timed out")
	// ErrCredentials: credentials are missing or refused (4).
	ErrCredentials = errors.New("credentials missing or refused")
)

// Exit statuses, as ExitCode returns them.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitTimeout     = 3
	ExitCredentials = 4
)

// EnvURL names pushui's URL when -url is not given.
const EnvURL = "PUSHCTL_URL"

// Config is one invocation of pushctl.
type Config struct {
	Args   []string // the arguments after the program's name
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Terminal says Stdout is a terminal: progress is redrawn in place
	// rather than printed one line per change.
	Terminal bool
}

// ExitCode prints err (if any) as one line on stderr and returns the exit
// status it calls for.
func ExitCode(stderr io.Writer, err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	}
	fmt.Fprintln(stderr, "pushctl:", err)
	switch {
	case errors.Is(err, ErrCredentials), errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrForbidden), errors.Is(err, client.ErrNoCredentials):
		return ExitCredentials
	case errors.Is(err, ErrTimeout):
		return ExitTimeout
	case errors.Is(err, cli.ErrUsage), errors.Is(err, client.ErrBadRequest), errors.Is(err, client.ErrNotFound), errors.Is(err, client.ErrConflict):
		return ExitUsage
	}
	return ExitFailed
}

// command is one subcommand.
type command struct {
	name, args, what string
	run              func(ctx context.Context, e *env, args []string) error
}

// env is what a subcommand runs with.
type env struct {
	cfg    Config
	url    string
	output string // "table" or "json"
	c      *client.Client
	drawn  int // lines of the progress block on the terminal, to redraw
}

func commands() []command {
	return []command{
		{"status", "[GROUP|SERVER]", "the fleet at a glance: per group and env, the desired build and its members by state; or one server's envs", runStatus},
		{"rollout", "start|get|watch|list|pause|resume|promote|abort|revert …", "start, follow and steer rollouts", runRollout},
		{"deploy", "(-server S[,S…] | -group G) PACKAGE|APP@VERSION", "set one app's version on servers or in a group: one write", runDeploy},
		{"history", "SERVER|GROUP", "a manifest's changes, newest first: who, when, what", runHistory},
		{"packages", "APP", "an app's packages, newest first", runPackages},
		{"logs", "SERVER ENV", "the last script output of an env, as its host reported it", runLogs},
	}
}

// Run runs one pushctl command line.
func Run(ctx context.Context, cfg Config) error {
	fs := flag.NewFlagSet("pushctl", flag.ContinueOnError)
	url := fs.String("url", "", "pushui's `URL` (default $"+EnvURL+", else http://127.0.0.1:8000)")
	fs.Usage = func() { usage(cfg.Stderr, fs) }
	fs.SetOutput(cfg.Stderr)
	if err := fs.Parse(cfg.Args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", cli.ErrUsage, err)
	}
	args := fs.Args()
	if len(args) == 0 || args[0] == "help" {
		if len(args) > 1 {
			return help(cfg.Stdout, args[1])
		}
		usage(cfg.Stdout, fs)
		return nil
	}
	e := &env{cfg: cfg, url: *url}
	if e.url == "" {
		e.url = cfg.Getenv(EnvURL)
	}
	if e.url == "" {
		e.url = "http://127.0.0.1:8000"
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	return fmt.Errorf("%w: unknown command %q (pushctl help lists them)", cli.ErrUsage, args[0])
}

// open parses a subcommand's flags and arguments (as parse) and connects
// e to pushui: what every command that only reads does first.
func (e *env) open(ctx context.Context, fs *flag.FlagSet, args []string, n int, what string) ([]string, error) {
	rest, err := parse(fs, args, n, what)
	if err != nil {
		return nil, err
	}
	return rest, e.connect(ctx)
}

// connect makes e's client, with the credentials of the environment.
func (e *env) connect(ctx context.Context) error {
	a, err := client.FromEnvironment(ctx, e.url, e.cfg.Getenv)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	if e.c, err = client.New(e.url, client.Options{Auth: a}); err != nil {
		return fmt.Errorf("%w: %w", cli.ErrUsage, err)
	}
	return nil
}

// flags returns a subcommand's flag set, with -o.
func (e *env) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("pushctl "+name, flag.ContinueOnError)
	fs.SetOutput(e.cfg.Stderr)
	fs.Func("o", "output `format`: table (default) or json (the API's JSON)", func(v string) error {
		if v != "table" && v != "json" {
			return errors.New("want table or json")
		}
		e.output = v
		return nil
	})
	return fs
}

// parse parses a subcommand's flags, wanting n arguments after them
// (n < 0: any number).
func parse(fs *flag.FlagSet, args []string, n int, what string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", cli.ErrUsage, err)
	}
	if n >= 0 && fs.NArg() != n {
		return nil, fmt.Errorf("%w: %s: want %s", cli.ErrUsage, strings.TrimPrefix(fs.Name(), "pushctl "), what)
	}
	return fs.Args(), nil
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: pushctl [-url URL] COMMAND [flags] [arguments]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n           %s\n", c.name, c.args, c.what)
	}
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nCredentials: PUSHCTL_USER and PUSHCTL_PASSWORD, ~/.netrc (machine HOST login USER password PASS),")
	fmt.Fprintln(w, "PUSHCTL_IAP_AUDIENCE for a pushui behind Identity-Aware Proxy, PUSHCTL_AUTH_HEADER=\"Name: value\".")
	fmt.Fprintln(w, "Exit status: 0 ok, 1 the rollout failed (reverted, aborted), 2 usage or refused input, 3 -timeout, 4 credentials.")
	fmt.Fprintln(w, "pushctl help COMMAND says more about one command.")
}

func help(w io.Writer, name string) error {
	for _, c := range commands() {
		if c.name == name {
			fmt.Fprintf(w, "usage: pushctl %s %s\n\n%s.\n", c.name, c.args, strings.ToUpper(c.what[:1])+c.what[1:])
			if c.name == "rollout" {
				fmt.Fprint(w, rolloutHelp)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: no command %q", cli.ErrUsage, name)
}
