package testserver

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// proxy forwards TCP connections from a fixed client-facing address to the
// server's current address and counts the bytes the server sends. Closing it
// drops every connection; reopening listens on the same address again.
type proxy struct {
	addr string       // client-facing host:port; fixed for the proxy's life
	sent atomic.Int64 // bytes copied from the server to clients

	mu      sync.Mutex
	ln      net.Listener // nil while closed
	backend string       // server host:port connections are forwarded to
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// newProxy listens on a free 127.0.0.1 port. It forwards nothing until
// setBackend is called.
func newProxy() (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testserver: proxy listen: %w", err)
	}
	p := &proxy{addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	return p, nil
}

// setBackend points new connections at addr.
func (p *proxy) setBackend(addr string) {
	p.mu.Lock()
	p.backend = addr
	p.mu.Unlock()
}

// reopen listens on p.addr again after close. It is a no-op when open.
func (p *proxy) reopen() error {
	p.mu.Lock()
	open := p.ln != nil
	p.mu.Unlock()
	if open {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("testserver: proxy listen again on %s: %w", p.addr, err)
	}
	p.serve(ln)
	return nil
}

// close stops accepting, drops every open connection and waits for the
// forwarding goroutines to finish. It is idempotent.
func (p *proxy) close() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			if !p.track(c) {
				c.Close()
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c)
			}()
		}
	}()
}

// track registers c so close can drop it; it reports false (and registers
// nothing) when the proxy is closed.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

// forward copies bytes both ways between client and the backend until the
// backend closes its side or either connection fails.
func (p *proxy) forward(client net.Conn) {
	p.mu.Lock()
	backend := p.backend
	p.mu.Unlock()
	server, err := net.Dial("tcp", backend)
	if err != nil || !p.track(server) {
		if server != nil {
			server.Close()
		}
		p.untrack(client)
		return
	}
	defer p.untrack(client, server)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(server, client)
		if tc, ok := server.(*net.TCPConn); ok {
			tc.CloseWrite() // pass a client's half-close on
		}
	}()
	// An error here means either side went away; both are closed below.
	io.Copy(countingWriter{client, &p.sent}, server)
	client.Close()
	server.Close()
	<-done
}

// countingWriter adds the length of every successful write to n.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (cw countingWriter) Write(b []byte) (int, error) {
	n, err := cw.w.Write(b)
	cw.n.Add(int64(n))
	return n, err
}
