package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is one service process: a binary, its environment and the URL that answers 2xx once
// it is up. It can be started again after it exits or is killed.
type Proc struct {
	Name   string
	Path   string
	Args   []string // command-line arguments (drainctl's command: "console")
	Env    []string // added to the parent's environment
	Health string   // URL polled by WaitHealthy
	// HealthAuth, when set, is the Authorization header of the Health requests (the console
	// answers 401 without its token).
	HealthAuth string
	Log        io.Writer
	// Exited, when set, is called with the exit error of a process that ends by itself (not
	// through Kill or Stop).
	Exited func(p *Proc, err error)

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	stopping bool
	Starts   int
}

// Start launches the process. It does not wait for health.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.Name)
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	if p.Log != nil {
		cmd.Stdout, cmd.Stderr = p.Log, p.Log
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd, p.done, p.stopping = cmd, make(chan struct{}), false
	p.Starts++
	done := p.done
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		stopping := p.stopping
		if p.cmd == cmd {
			p.cmd = nil
		}
		p.mu.Unlock()
		close(done)
		if !stopping && p.Exited != nil {
			p.Exited(p, err)
		}
	}()
	return nil
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// PID is the process id, or 0 when not running.
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() { p.end(syscall.SIGKILL, 0) }

// Stop sends SIGTERM, waits up to grace, then SIGKILL.
func (p *Proc) Stop(grace time.Duration) { p.end(syscall.SIGTERM, grace) }

func (p *Proc) end(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	p.mu.Unlock()
	_ = cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

// WaitHealthy polls Health until it answers 2xx, the process exits, or ctx ends.
func (p *Proc) WaitHealthy(ctx context.Context) error {
	return waitHTTP(ctx, p.Health, p.HealthAuth, func() error {
		if !p.Running() {
			return fmt.Errorf("%s exited", p.Name)
		}
		return nil
	})
}

// WaitHTTP polls url until it answers 2xx, alive reports an error, or ctx ends.
func WaitHTTP(ctx context.Context, url string, alive func() error) error {
	return waitHTTP(ctx, url, "", alive)
}

func waitHTTP(ctx context.Context, url, auth string, alive func() error) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			err = fmt.Errorf("%s answered %d", url, resp.StatusCode)
		}
		if alive != nil {
			if aerr := alive(); aerr != nil {
				return aerr
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Answers reports whether something accepts TCP connections at host:port within a second.
func Answers(hostport string) bool {
	c, err := net.DialTimeout("tcp", hostport, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Binaries are the service binaries, in start order (consumers before the producer).
var Binaries = []string{"filter", "warmer", "sweeper", "ingest"}

// Build compiles the named binaries (default: the four services and drainctl) from the
// repository at root into dir with CGO_ENABLED=0, as `make build` does. It fails naming the
// first one that does not build.
func Build(ctx context.Context, root, dir string, log io.Writer, names ...string) error {
	targets := map[string]string{"drainctl": "cmd/drainctl"}
	for _, b := range Binaries {
		targets[b] = "services/" + b
	}
	if len(names) > 0 {
		only := map[string]string{}
		for _, n := range names {
			only[n] = targets[n]
		}
		targets = only
	}
	for name, src := range targets {
		if _, err := os.Stat(root + "/" + src + "/main.go"); errors.Is(err, os.ErrNotExist) {
			if name == "drainctl" {
				continue
			}
			return fmt.Errorf("%s has no main.go yet: %s", name, src)
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dir+"/"+name, ".")
		cmd.Dir = root + "/" + src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", name, err)
		}
	}
	return nil
}
