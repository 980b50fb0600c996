package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/oauth2"
	"google.golang.org/api/idtoken"
)

// Auth sets the credentials of a request to pushui.
type Auth interface {
	Authorize(ctx context.Context, req *http.Request) error
}

// Basic is HTTP Basic authentication, for a pushui run with -htpasswd.
type Basic struct{ User, Password string }

// Authorize sets req's Basic credentials.
func (b Basic) Authorize(_ context.Context, req *http.Request) error {
	req.SetBasicAuth(b.User, b.Password)
	return nil
}

// Header sends the user's identity in a header, for a pushui run with
// -auth-header behind a trusted proxy, or reached on loopback as that
// proxy would (local use).
type Header struct{ Name, Value string }

// Authorize sets the header.
func (h Header) Authorize(_ context.Context, req *http.Request) error {
	req.Header.Set(h.Name, h.Value)
	return nil
}

// Bearer sends a token from Source as "Authorization: Bearer": for a
// pushui behind Identity-Aware Proxy, an ID token for the IAP client's
// audience (IAP, below).
type Bearer struct{ Source oauth2.TokenSource }

// Authorize sets the bearer token, fetching a new one when it expired.
func (b Bearer) Authorize(_ context.Context, req *http.Request) error {
	tok, err := b.Source.Token()
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return nil
}

// IAP returns the credentials of a pushui behind Identity-Aware Proxy:
// Google ID tokens for audience (the IAP OAuth client ID), minted from the
// application default credentials (a service account, or
// GOOGLE_APPLICATION_CREDENTIALS).
func IAP(ctx context.Context, audience string) (Auth, error) {
	ts, err := idtoken.NewTokenSource(ctx, audience)
	if err != nil {
		return nil, fmt.Errorf("client: IAP ID token for %s: %w", audience, err)
	}
	return Bearer{Source: ts}, nil
}

// The environment FromEnvironment reads.
const (
	EnvUser        = "PUSHCTL_USER"         // with EnvPassword: Basic credentials
	EnvPassword    = "PUSHCTL_PASSWORD"     //
	EnvIAPAudience = "PUSHCTL_IAP_AUDIENCE" // an IAP-protected pushui: mint ID tokens for this audience
	EnvAuthHeader  = "PUSHCTL_AUTH_HEADER"  // "Name: value", a trusted identity header (local use)
	EnvNetrc       = "NETRC"                // the netrc file, as curl reads it; default ~/.netrc
)

// ErrNoCredentials is wrapped when the environment names credentials that
// cannot be used (a user without a password, an unreadable netrc file).
var ErrNoCredentials = errors.New("no usable credentials")

// FromEnvironment returns the credentials for the pushui at baseURL, the
// first that applies of: PUSHCTL_IAP_AUDIENCE (IAP ID tokens),
// PUSHCTL_AUTH_HEADER ("Name: value"), PUSHCTL_USER and PUSHCTL_PASSWORD
// (Basic), and the netrc file's entry for the URL's host ($NETRC, else
// ~/.netrc: "machine HOST login USER password PASS", as curl and git read
// it). With none it returns nil: no credentials, as a loopback pushui
// without authentication needs. getenv is os.Getenv in a program.
func FromEnvironment(ctx context.Context, baseURL string, getenv func(string) string) (Auth, error) {
	if aud := getenv(EnvIAPAudience); aud != "" {
		return IAP(ctx, aud)
	}
	if h := getenv(EnvAuthHeader); h != "" {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(value) == "" {
			return nil, fmt.Errorf("client: %s=%q: want \"Name: value\": %w", EnvAuthHeader, h, ErrNoCredentials)
		}
		return Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)}, nil
	}
	if u := getenv(EnvUser); u != "" {
		p := getenv(EnvPassword)
		if p == "" {
			return nil, fmt.Errorf("client: %s is set but %s is not: %w", EnvUser, EnvPassword, ErrNoCredentials)
		}
		return Basic{User: u, Password: p}, nil
	}
	path := getenv(EnvNetrc)
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		path = filepath.Join(home, ".netrc")
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && getenv(EnvNetrc) == "":
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("client: %w: %w", ErrNoCredentials, err)
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: pushui URL %q: %w", baseURL, err)
	}
	entries, err := ParseNetrc(data)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w: %w", path, ErrNoCredentials, err)
	}
	if e, ok := Lookup(entries, u.Hostname()); ok {
		return Basic{User: e.Login, Password: e.Password}, nil
	}
	return nil, nil
}
