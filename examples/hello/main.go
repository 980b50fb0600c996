// Command hello is pushpull's sample app: a tiny HTTP server that answers
// GET / with its version, deployed by `make demo` and by the end-to-end
// test through the Teletraan scripts in its teletraan/ directory.
//
//	hello [-config FILE]                  serve
//	hello [-config FILE] -check TIMEOUT   wait until this version answers
//
// The configuration is a file of key=value lines (teletraan/hello.conf,
// which pulld renders from hello.conf.tmpl with the env's manifest config):
//
//	port=8081
//	message=Hello from pushpull
//	drain_file=/path/to/drain
//
// The environment variables PORT, MESSAGE and DRAIN_FILE give the same
// settings; the file's values win. The version is set at build time:
//
//	go build -ldflags "-X main.version=v2" -o DIR/hello ./examples/hello
//
// A build with -X main.crash=yes exits as soon as it starts: it is the
// broken release the demo and the test roll back from.
//
// The server answers GET / with "hello VERSION on SERVER: MESSAGE", GET
// /healthz with 200 (or 503 while the drain file exists, which the
// PRE_RESTART script creates), and stops cleanly on SIGTERM or SIGINT.
// With -check, hello is the client POST_RESTART uses: it polls the
// configured port until a hello of its own version answers, so a build
// whose server did not come up fails its deploy.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// version and crash are set with -ldflags "-X main.version=… -X main.crash=yes".
var (
	version = "dev"
	crash   = ""
)

// config is what hello reads from its configuration file or environment.
type config struct {
	Port      string
	Message   string
	DrainFile string
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	log.SetPrefix("hello " + version + ": ")
	configFile := flag.String("config", "", "configuration `file` of key=value lines (default: the environment)")
	check := flag.Duration("check", 0, "instead of serving, wait up to this `long` for this version to answer on the configured port")
	flag.Parse()
	cfg, err := loadConfig(*configFile)
	if err != nil {
		log.Fatal(err)
	}
	if *check > 0 {
		if err := waitFor(cfg, *check); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("hello %s answers on port %s\n", version, cfg.Port)
		return
	}
	if crash != "" {
		log.Fatalf("crashing on purpose (built with -X main.crash=%s)", crash)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg); err != nil {
		log.Fatal(err)
	}
}

// loadConfig reads the settings from the environment (PORT, MESSAGE,
// DRAIN_FILE) and then from file, when given, whose values win. The port
// is required.
func loadConfig(file string) (config, error) {
	cfg := config{Port: os.Getenv("PORT"), Message: os.Getenv("MESSAGE"), DrainFile: os.Getenv("DRAIN_FILE")}
	if cfg.Message == "" {
		cfg.Message = "Hello from pushpull"
	}
	if file != "" {
		if err := readConfigFile(file, &cfg); err != nil {
			return cfg, err
		}
	}
	if cfg.Port == "" {
		return cfg, errors.New("no port configured (port= in the config file, or PORT)")
	}
	return cfg, nil
}

// readConfigFile sets cfg's fields from the key=value lines of file.
// Blank lines and lines starting with # are skipped; an empty value leaves
// the environment's (a template renders a config key the entry does not
// set as empty); an unknown key is an error, so that a typo in a template
// is not silently ignored.
func readConfigFile(file string, cfg *config) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want key=value, got %q", file, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if v == "" && (k == "port" || k == "message" || k == "drain_file") {
			continue
		}
		switch k {
		case "port":
			cfg.Port = v
		case "message":
			cfg.Message = v
		case "drain_file":
			cfg.DrainFile = v
		default:
			return fmt.Errorf("%s:%d: unknown key %q", file, n, k)
		}
	}
	return sc.Err()
}

// serve answers HTTP requests on the configured port until ctx is done,
// then shuts down within five seconds.
func serve(ctx context.Context, cfg config) error {
	server := os.Getenv("STAGE_NAME") // set by pulld for deploy scripts and their children
	if server == "" {
		server, _ = os.Hostname()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s on %s: %s\n", version, server, cfg.Message)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if cfg.DrainFile != "" {
			if _, err := os.Stat(cfg.DrainFile); err == nil {
				http.Error(w, "draining", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", cfg.Port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s/", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Print("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// waitFor polls GET / on the configured port until it answers with this
// build's version, or fails after timeout with the last thing it saw.
func waitFor(cfg config, timeout time.Duration) error {
	url := "http://" + net.JoinHostPort("127.0.0.1", cfg.Port) + "/"
	want := "hello " + version + " "
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), want) {
				return nil
			}
			last = fmt.Sprintf("%s: %s %q", url, resp.Status, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hello %s did not answer on port %s within %s; last: %s", version, cfg.Port, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
