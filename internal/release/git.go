package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
)

// GitFacts are what release reads from DIR's repository.
type GitFacts struct {
	Commit, Branch, Repo string
	Dirty                bool
}

// ReadGit returns the git facts of the repository holding dir: HEAD's
// commit, the branch, origin without credentials, and whether the tree has
// changes (untracked files included). Its error wraps ErrNotGit when dir is
// in no repository (or git is missing).
func ReadGit(ctx context.Context, dir string) (GitFacts, error) {
	var g GitFacts
	if _, err := git(ctx, dir, "rev-parse", "--show-toplevel"); err != nil {
		return g, fmt.Errorf("%w: %s: %v", ErrNotGit, dir, err)
	}
	var err error
	if g.Commit, err = git(ctx, dir, "rev-parse", "--verify", "HEAD^{commit}"); err != nil {
		return g, fmt.Errorf("git commit of %s: %w", dir, err)
	}
	// No branch on a detached HEAD: symbolic-ref then fails, quietly.
	g.Branch, _ = git(ctx, dir, "symbolic-ref", "--short", "-q", "HEAD")
	if repo, err := git(ctx, dir, "config", "--get", "remote.origin.url"); err == nil {
		g.Repo = RedactURL(repo)
	}
	status, err := git(ctx, dir, "status", "--porcelain")
	if err != nil {
		return g, fmt.Errorf("git status of %s: %w", dir, err)
	}
	g.Dirty = status != ""
	return g, nil
}

// git runs git with args in dir and returns its trimmed output. Its error
// carries git's own message.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(cmd.Environ(), "GIT_OPTIONAL_LOCKS=0", "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if msg := strings.TrimSpace(stderr.String()); errors.As(err, &ee) && msg != "" {
			return "", errors.New(msg)
		}
		return "", err
	}
	return strings.TrimSpace(stdout.String()), nil
}

// RedactURL removes credentials from a repository URL
// (https://user:token@host/x → https://host/x) so they never reach the
// bucket. scp-like addresses (git@host:x) and paths are returned as they are.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.User == nil {
		return s
	}
	if u.Scheme == "ssh" || u.Scheme == "git+ssh" {
		if _, hasPassword := u.User.Password(); !hasPassword {
			return s // ssh://git@host/x names a login, not a secret
		}
		u.User = url.User(u.User.Username())
		return u.String()
	}
	u.User = nil
	return u.String()
}
