// Command devstack runs the whole drain on one machine without Docker (`make run`): NATS with
// JetStream, Redis, the four services built from this checkout, the web console
// (drainctl console, behind a token generated for the run) and a demo origin API whose
// resources examples/batch.json names. It prints the commands to try next, the console's
// address and token, and stops everything cleanly on Ctrl-C.
//
// It uses the NATS and Redis at NATS_URL and ROUTEMASTER_DRAIN_REDIS (defaults
// 127.0.0.1:4222 and 127.0.0.1:6379) when they answer, under a separate prefix and namespace
// ("devstack") so it never touches another deployment's data; otherwise it starts an
// embedded JetStream server and a private redis-server (from PATH) on those addresses.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// OriginAddr is where the demo origin listens; examples/batch.json names URLs under it.
const OriginAddr = "127.0.0.1:18090"

func main() {
	build := flag.Bool("build", true, "run `make build` first")
	quiet := flag.Bool("quiet", false, "do not copy service logs to the terminal (they stay in tmp/devstack/)")
	flag.Parse()
	if err := run(*build, *quiet); err != nil {
		log.SetFlags(0)
		log.Fatalf("devstack: %v", err)
	}
}

type env map[string]string

func (e env) list() []string {
	var out []string
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

func run(build, quiet bool) error {
	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work := filepath.Join(root, "tmp", "devstack")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Printf("devstack: "+format+"\n", args...)
	}

	if build {
		say("building the binaries (make build)")
		cmd := exec.CommandContext(ctx, "make", "build")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("make build: %w", err)
		}
	}
	bin := filepath.Join(root, "bin")
	for _, b := range stack.Binaries {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("bin/%s is missing (make build did not produce it): %w", b, err)
		}
	}

	// Shared settings. Prefix and namespace change only when we borrow servers.
	e := env{
		"ROUTEMASTER_DRAIN_TOKENS": "demo",
		"DRAIN_CACHE_MODE":         "warm",
		"DRAIN_SWEEP_INTERVAL":     "2m",
		"DRAIN_LOG_LEVEL":          "info",
	}
	shown := env{} // the settings drainctl needs that differ from its defaults

	// The servers drainctl would reach: NATS_URL and ROUTEMASTER_DRAIN_REDIS, or their defaults.
	base, err := config.Load(config.Drainctl, []string{"NATS_URL=" + os.Getenv("NATS_URL"), "ROUTEMASTER_DRAIN_REDIS=" + os.Getenv("ROUTEMASTER_DRAIN_REDIS")})
	if err != nil {
		return err
	}
	natsURL, rc := base.NATS.URL, base.DrainRedis
	borrowed := false

	natsHost := hostPort(natsURL, "4222")
	if stack.Answers(natsHost) {
		say("using the NATS server at %s", natsHost)
		borrowed = true
	} else {
		port, _ := strconv.Atoi(natsHost[strings.LastIndexByte(natsHost, ':')+1:])
		n, err := stack.StartNATS(port, filepath.Join(work, "nats"))
		if err != nil {
			return err
		}
		defer n.Stop()
		natsURL = n.URL()
		say("started an embedded JetStream server at %s (store %s)", natsURL, n.Dir)
	}
	e["NATS_URL"] = natsURL
	if natsURL != stream.DefaultURL {
		shown["NATS_URL"] = natsURL
	}

	if stack.Answers(rc.Options.Addr) {
		say("using the Redis server at %s", rc.Options.Addr)
		borrowed = true
	} else {
		port, _ := strconv.Atoi(rc.Options.Addr[strings.LastIndexByte(rc.Options.Addr, ':')+1:])
		r, err := stack.StartRedis(port, filepath.Join(work, "redis"), "everysec")
		if err != nil {
			return err
		}
		defer r.Stop()
		say("started a private redis-server at %s (AOF in %s)", r.Addr(), r.Dir)
	}
	ns := rc.Namespace
	prefix := stream.DefaultPrefix
	if borrowed {
		ns, prefix = "devstack", "devstack"
		shown["DRAIN_PREFIX"] = prefix
	}
	// examples/batch.json has fixed timestamps: start from a clean namespace so the sample
	// batch is fresh again on every run (only the demo's own keys are touched).
	if n, err := clearNamespace(ctx, rc, ns); err != nil {
		return fmt.Errorf("clear the demo's Redis keys: %w", err)
	} else if n > 0 {
		say("cleared %d Redis keys of the demo namespace %q from an earlier run", n, ns)
	}
	drainRedis := fmt.Sprintf("redis://%s/%d/%s", rc.Options.Addr, rc.Options.DB, ns)
	e["ROUTEMASTER_DRAIN_REDIS"] = drainRedis
	e["ROUTEMASTER_CACHE_REDIS"] = drainRedis
	e["DRAIN_PREFIX"] = prefix
	if def := config.Default(config.Drainctl).DrainRedis; rc.Options.Addr != def.Options.Addr || rc.Options.DB != def.Options.DB || ns != def.Namespace {
		shown["ROUTEMASTER_DRAIN_REDIS"] = drainRedis
	}

	// The demo origin: the resources examples/batch.json talks about.
	ln, err := net.Listen("tcp", OriginAddr)
	if err != nil {
		return fmt.Errorf("demo origin: %w (examples/batch.json names URLs on %s)", err, OriginAddr)
	}
	origin := &http.Server{Handler: demoOrigin(func(line string) { say("origin: %s", line) }), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = origin.Serve(ln) }()
	defer origin.Close()
	say("demo origin serving JSON at http://%s/widgets/<id> and /gadgets/<id> (widgets/3 is deleted: 404)", OriginAddr)

	// The services, each on its usual port when free.
	ingestAddr := pickAddr(8080)
	admin := map[string]string{"ingest": pickAddr(9090), "filter": pickAddr(9091), "warmer": pickAddr(9092), "sweeper": pickAddr(9093)}
	ingestURL := "http://" + ingestAddr + "/events"
	if ingestURL != "http://127.0.0.1:8080/events" {
		shown["DRAIN_INGEST_URL"] = ingestURL
	}
	var procs []*stack.Proc
	exited := make(chan string, len(stack.Binaries))
	for _, name := range stack.Binaries {
		pe := env{}
		for k, v := range e {
			pe[k] = v
		}
		// /readyz on the admin address: 200 once the service works (ingest's bus port is open).
		health := "http://" + admin[name] + "/readyz"
		pe["DRAIN_ADMIN_ADDR"] = admin[name]
		if name == "ingest" {
			pe["DRAIN_INGEST_ADDR"] = ingestAddr
		}
		logFile, err := os.Create(filepath.Join(work, name+".log"))
		if err != nil {
			return err
		}
		defer logFile.Close()
		var w io.Writer = logFile
		if !quiet {
			w = io.MultiWriter(logFile, &stack.PrefixWriter{W: os.Stdout, Prefix: fmt.Sprintf("%-8s| ", name), Mu: &outMu})
		}
		p := &stack.Proc{Name: name, Path: filepath.Join(bin, name), Env: pe.list(), Health: health, Log: w,
			Exited: func(p *stack.Proc, err error) {
				exited <- fmt.Sprintf("%s exited: %v (log: tmp/devstack/%s.log)", p.Name, err, p.Name)
			}}
		if err := p.Start(); err != nil {
			return err
		}
		procs = append(procs, p)
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = p.WaitHealthy(wctx)
		cancel()
		if err != nil {
			stopAll(procs)
			return fmt.Errorf("%s did not become healthy: %w (log: tmp/devstack/%s.log)", name, err, name)
		}
		say("%s is up (%s)", name, health)
	}
	defer stopAll(procs)

	// The web console, behind a token generated for this run (printed once, below).
	consoleAddr := pickAddr(9099)
	token, err := newToken()
	if err != nil {
		return err
	}
	statusURLs := fmt.Sprintf("ingest=http://%s,filter=http://%s,warmer=http://%s,sweeper=http://%s", ingestAddr, admin["filter"], admin["warmer"], admin["sweeper"])
	shown["DRAIN_STATUS_ADMIN_URLS"] = statusURLs
	ce := env{"DRAIN_CONSOLE_ADDR": consoleAddr, "DRAIN_CONSOLE_TOKEN": token, "DRAIN_STATUS_ADMIN_URLS": statusURLs}
	for k, v := range e {
		ce[k] = v
	}
	consoleLog, err := os.Create(filepath.Join(work, "console.log"))
	if err != nil {
		return err
	}
	defer consoleLog.Close()
	var cw io.Writer = consoleLog
	if !quiet {
		cw = io.MultiWriter(consoleLog, &stack.PrefixWriter{W: os.Stdout, Prefix: fmt.Sprintf("%-8s| ", "console"), Mu: &outMu})
	}
	console := &stack.Proc{Name: "console", Path: filepath.Join(bin, "drainctl"), Args: []string{"console"}, Env: ce.list(),
		Health: "http://" + consoleAddr + "/healthz", HealthAuth: "Bearer " + token, Log: cw,
		Exited: func(p *stack.Proc, err error) {
			exited <- fmt.Sprintf("%s exited: %v (log: tmp/devstack/%s.log)", p.Name, err, p.Name)
		}}
	if err := console.Start(); err != nil {
		return err
	}
	defer console.Stop(10 * time.Second) // before the services (defers run last first)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = console.WaitHealthy(wctx)
	cancel()
	if err != nil {
		return fmt.Errorf("the console did not start: %w (log: tmp/devstack/console.log)", err)
	}

	fmt.Println(nextSteps(shown, admin))
	fmt.Printf("Web console: http://%s/ with the token %s\n"+
		"  (send it as a Bearer token or as the Basic-auth password, any user name; it is printed only here and changes every run)\n\n", consoleAddr, token)

	select {
	case <-ctx.Done():
		say("stopping (SIGTERM to every service, then the servers)")
		return nil
	case msg := <-exited:
		return errors.New(msg)
	}
}

func nextSteps(shown env, admin map[string]string) string {
	prefix := ""
	for _, k := range []string{"NATS_URL", "DRAIN_PREFIX", "ROUTEMASTER_DRAIN_REDIS", "DRAIN_INGEST_URL"} {
		if v, ok := shown[k]; ok {
			prefix += k + "=" + v + " "
		}
	}
	var b strings.Builder
	b.WriteString("\nThe drain is running. In another terminal, from the repository root:\n\n")
	fmt.Fprintf(&b, "  %sROUTEMASTER_DRAIN_TOKENS=demo bin/drainctl send examples/batch.json\n", prefix)
	fmt.Fprintf(&b, "  %sbin/drainctl dirty list\n", prefix)
	fmt.Fprintf(&b, "  %sbin/drainctl cache get http://%s/widgets/1\n", prefix, OriginAddr)
	fmt.Fprintf(&b, "  %sDRAIN_STATUS_ADMIN_URLS=%s bin/drainctl status\n\n", prefix, shown["DRAIN_STATUS_ADMIN_URLS"])
	fmt.Fprintf(&b, "Metrics: http://%s/metrics (ingest), http://%s/metrics (filter), http://%s/metrics (warmer), http://%s/metrics (sweeper).\n",
		admin["ingest"], admin["filter"], admin["warmer"], admin["sweeper"])
	b.WriteString("Logs are in tmp/devstack/. Ctrl-C stops everything.\n")
	return b.String()
}

func stopAll(procs []*stack.Proc) {
	// ingest first, so nothing new arrives while the consumers finish their work.
	var wg sync.WaitGroup
	for i := len(procs) - 1; i >= 0; i-- {
		if procs[i].Name == "ingest" {
			procs[i].Stop(30 * time.Second)
			continue
		}
		wg.Add(1)
		go func(p *stack.Proc) { defer wg.Done(); p.Stop(30 * time.Second) }(procs[i])
	}
	wg.Wait()
}

// newToken returns a random console token: 32 hex digits.
func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("console token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// demoOrigin serves a JSON representation of /widgets/<id> and /gadgets/<id>; widgets/3 is
// gone (404), as the delete event in examples/batch.json says.
func demoOrigin(logf func(string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, id, ok := strings.Cut(strings.Trim(r.URL.Path, "/"), "/")
		status := http.StatusOK
		switch {
		case r.Method != http.MethodGet:
			status = http.StatusMethodNotAllowed
		case !ok || (kind != "widgets" && kind != "gadgets") || id == "" || strings.Contains(id, "/"):
			status = http.StatusNotFound
		case kind == "widgets" && id == "3":
			status = http.StatusNotFound
		}
		logf(fmt.Sprintf("%s %s → %d (User-Agent %q)", r.Method, r.URL.Path, status, r.UserAgent()))
		w.Header().Set("Content-Type", "application/json")
		if status != http.StatusOK {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":%q}`, http.StatusText(status))
			return
		}
		fmt.Fprintf(w, `{"url":"http://%s%s","kind":%q,"id":%q,"name":"%s %s","served_at":%q}`,
			OriginAddr, r.URL.Path, kind, id, strings.TrimSuffix(kind, "s"), id, time.Now().UTC().Format(time.RFC3339Nano))
	})
}

func pickAddr(port int) string {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if !stack.Answers(addr) {
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	p, err := stack.FreePort()
	if err != nil {
		return addr
	}
	return "127.0.0.1:" + strconv.Itoa(p)
}

func hostPort(raw, defPort string) string {
	first := strings.TrimSpace(strings.Split(raw, ",")[0])
	u, err := url.Parse(first)
	if err != nil || u.Host == "" {
		return "127.0.0.1:" + defPort
	}
	if u.Port() == "" {
		return u.Hostname() + ":" + defPort
	}
	return u.Host
}

// clearNamespace deletes the keys of namespace ns (filter state, dirty map, cache) and returns
// how many there were.
func clearNamespace(ctx context.Context, rc config.Redis, ns string) (int, error) {
	c := redis.NewClient(rc.Options)
	defer c.Close()
	n := 0
	for _, pattern := range []string{"{" + ns + "}:*", ns + ":*"} {
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return n, err
		}
		for len(batch) > 0 {
			k := batch[:min(500, len(batch))]
			if err := c.Del(ctx, k...).Err(); err != nil {
				return n, err
			}
			n += len(k)
			batch = batch[len(k):]
		}
	}
	return n, nil
}
