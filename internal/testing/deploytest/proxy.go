package deploytest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is an HTTP reverse proxy in front of a bucket server. It counts
// the requests it forwards and the bytes on its client connections (request
// and response, headers included, as on the wire), and can be switched to
// answer every request with 500 Internal Server Error without forwarding
// it, as an overloaded or broken server would.
//
// The Host header is passed through unchanged, so S3 request signatures
// (which cover it) stay valid. Its methods are safe for concurrent use.
type Proxy struct {
	// URL is the proxy's base URL, http://127.0.0.1:P.
	URL string

	srv      *httptest.Server
	failing  atomic.Bool
	requests atomic.Int64
	failed   atomic.Int64
	in, out  atomic.Int64 // bytes from and to clients

	mu      sync.Mutex
	log     []string // "METHOD path" of each forwarded request
	rewrite func(*http.Request)
	after   func(*http.Request)
}

// StartProxy starts a proxy to target (http://host:port). It is closed
// when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
			if rw := p.hooks(); rw != nil {
				rw(r.Out)
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			p.mu.Lock()
			after := p.after
			p.mu.Unlock()
			if after != nil {
				after(resp.Request)
			}
			return nil
		},
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.failing.Load() {
			p.failed.Add(1)
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by deploytest.Proxy</Message></Error>`)
			return
		}
		p.requests.Add(1)
		p.mu.Lock()
		p.log = append(p.log, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	p.srv.Listener = countingListener{Listener: p.srv.Listener, in: &p.in, out: &p.out}
	p.srv.Start()
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// SetHooks installs functions the proxy calls for every forwarded request:
// rewrite changes the outgoing request before it is sent (a test drops a
// header and signs the request again, say); after runs once the server has
// answered and before the client sees the answer, which is where a test
// puts a second writer. Either may be nil.
func (p *Proxy) SetHooks(rewrite, after func(*http.Request)) {
	p.mu.Lock()
	p.rewrite, p.after = rewrite, after
	p.mu.Unlock()
}

func (p *Proxy) hooks() func(*http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rewrite
}

// Fail switches 500 answers on or off.
func (p *Proxy) Fail(on bool) { p.failing.Store(on) }

// Counts are what a Proxy has seen.
type Counts struct {
	Requests int64 // forwarded requests
	Failed   int64 // requests answered 500 by the proxy
	BytesIn  int64 // bytes received from clients
	BytesOut int64 // bytes sent to clients
}

// Counts returns the counts so far.
func (p *Proxy) Counts() Counts {
	return Counts{Requests: p.requests.Load(), Failed: p.failed.Load(), BytesIn: p.in.Load(), BytesOut: p.out.Load()}
}

// Log returns "METHOD path" of every forwarded request so far.
func (p *Proxy) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// countingListener counts the bytes of every connection it accepts.
type countingListener struct {
	net.Listener
	in, out *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, in: l.in, out: l.out}, nil
}

type countingConn struct {
	net.Conn
	in, out *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}
