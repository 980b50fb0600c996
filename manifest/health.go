package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"time"
)

// Health is how a host checks that an env it serves is healthy: an HTTP GET
// that must answer 2xx, or a program of the build that must exit 0, run
// every Every for at most Timeout. pulld reports the outcome in status
// (EnvStatus.Healthy, HealthySince); a rollout's controller waits for it.
type Health struct {
	// HTTP is the URL to GET (http:// or https://), or Exec the path of a
	// program inside the build, relative to it (such as bin/check); one of
	// the two.
	HTTP, Exec string
	// Every is the period of the check (default DefaultHealthEvery), and
	// Timeout bounds one check (default DefaultHealthTimeout).
	Every, Timeout time.Duration
}

// Defaults and bounds of a Health.
const (
	DefaultHealthEvery   = 10 * time.Second
	DefaultHealthTimeout = 5 * time.Second
	MinHealthEvery       = time.Second
)

// healthJSON is a Health as manifests hold it: durations as Go durations.
type healthJSON struct {
	HTTP    string `json:"http,omitempty"`
	Exec    string `json:"exec,omitempty"`
	Every   string `json:"every,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

func (h *Health) toJSON() *healthJSON {
	out := &healthJSON{HTTP: h.HTTP, Exec: h.Exec}
	if h.Every != 0 {
		out.Every = h.Every.String()
	}
	if h.Timeout != 0 {
		out.Timeout = h.Timeout.String()
	}
	return out
}

func (j *healthJSON) toHealth() (*Health, error) {
	h := &Health{HTTP: j.HTTP, Exec: j.Exec}
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{j.Every, &h.Every}, {j.Timeout, &h.Timeout}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return nil, fmt.Errorf("health: %w", err)
		}
		*d.dst = v
	}
	return h, nil
}

// Period and Limit are Every and Timeout with their defaults.
func (h *Health) Period() time.Duration { return orDefault(h.Every, DefaultHealthEvery) }
func (h *Health) Limit() time.Duration  { return orDefault(h.Timeout, DefaultHealthTimeout) }

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Validate checks that h names one check, an absolute http(s) URL or a
// relative path that stays inside the build, with sane periods.
func (h *Health) Validate() error {
	switch {
	case (h.HTTP == "") == (h.Exec == ""):
		return errors.New("health: give one of http and exec")
	case h.HTTP != "":
		u, err := url.Parse(h.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("health: http %q is not an http:// or https:// URL", h.HTTP)
		}
	default:
		// fs.ValidPath: relative, slash-separated, canonical, no ".." (or
		// "."); the build's root itself is not a program.
		if !fs.ValidPath(h.Exec) || h.Exec == "." {
			return fmt.Errorf("health: exec %q is not a path inside the build", h.Exec)
		}
	}
	switch {
	case h.Every != 0 && h.Every < MinHealthEvery:
		return fmt.Errorf("health: every %v is shorter than %v", h.Every, MinHealthEvery)
	case h.Timeout < 0 || h.Every < 0:
		return errors.New("health: negative duration")
	case h.Limit() > h.Period():
		return fmt.Errorf("health: timeout %v is longer than every %v", h.Limit(), h.Period())
	}
	return nil
}
