package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The kinds of answer a caller decides on, by the API's status codes.
var (
	ErrBadRequest   = errors.New("bad request")           // 400: input pushui refuses; nothing was written
	ErrUnauthorized = errors.New("not signed in")         // 401: no credentials, or wrong ones
	ErrForbidden    = errors.New("not allowed")           // 403: signed in, but not an admin
	ErrNotFound     = errors.New("not found")             // 404
	ErrConflict     = errors.New("conflict")              // 409: the state refuses it (an active rollout, a broken manifest)
	ErrPrecondition = errors.New("changed since read")    // 412: the document changed since its ETag
	ErrUnavailable  = errors.New("pushui is unavailable") // 502, 503, 504, or no answer at all
)

// Error is an error answer of pushui: its status and its message.
type Error struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("pushui: %s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// Unwrap returns the sentinel of e's status, so that errors.Is(err,
// ErrConflict) and the like hold.
func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusPreconditionRequired:
		return ErrBadRequest
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusPreconditionFailed:
		return ErrPrecondition
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ErrUnavailable
	}
	return nil
}

// Options configures a Client.
type Options struct {
	// HTTPClient sends the requests; nil means one with no overall
	// timeout (long polls last up to a minute; contexts bound calls).
	HTTPClient *http.Client
	// Auth sets each request's credentials; nil sends none (a pushui on
	// loopback without authentication).
	Auth Auth
}

// Client talks to one pushui. It is safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
	auth Auth
}

// New returns a Client of the pushui at baseURL (http:// or https://).
func New(baseURL string, o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: pushui URL %q: want http://HOST[:PORT] or https://…", baseURL)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, hc: hc, auth: o.Auth}, nil
}

// URL returns the pushui the client talks to.
func (c *Client) URL() string { return c.base.String() }

// call is one request: body (nil for none) is sent as JSON; the answer is
// decoded into out (nil: ignored). header, when not nil, receives the
// answer's header.
type call struct {
	method, path string
	query        url.Values
	body         any
	out          any
	reqHeader    http.Header
	header       *http.Header
}

// do sends cl and decodes its answer; a status of 300 or more is an
// *Error.
func (c *Client) do(ctx context.Context, cl call) error {
	u := *c.base
	u.Path += cl.path
	u.RawQuery = cl.query.Encode()
	var body io.Reader
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fmt.Errorf("client: encode %s %s: %w", cl.method, cl.path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range cl.reqHeader {
		req.Header[k] = vs
	}
	if c.auth != nil {
		if err := c.auth.Authorize(ctx, req); err != nil {
			return fmt.Errorf("client: credentials for %s: %w: %w", c.base.Host, ErrUnauthorized, err)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("client: %s %s: %w: %w", cl.method, cl.path, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("client: %s %s: read the answer: %w: %w", cl.method, cl.path, ErrUnavailable, err)
	}
	if cl.header != nil {
		*cl.header = resp.Header
	}
	if resp.StatusCode >= 300 {
		e := &Error{Method: cl.method, Path: cl.path, Status: resp.StatusCode}
		var msg struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &msg) == nil && msg.Error != "" {
			e.Message = msg.Error
		} else {
			e.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
		}
		return e
	}
	if cl.out != nil {
		if err := json.Unmarshal(data, cl.out); err != nil {
			return fmt.Errorf("client: %s %s: decode the answer: %w", cl.method, cl.path, err)
		}
	}
	return nil
}

// waitParam renders a long poll's wait for the query.
func waitParam(d time.Duration) string { return d.Round(time.Millisecond).String() }
