package draintest

import (
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a program under test run as its own process (a service binary from BuildBinary),
// which a test can kill with SIGKILL, stop with SIGTERM and start again with the same
// arguments and environment. Its standard error is kept in Output; cleanup kills it and, when
// the test failed, logs what it wrote.
type Process struct {
	t      T
	bin    string
	args   []string
	env    []string
	Output *Buffer // standard output and standard error of every run, in order
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the last run's exit error, valid once exited is closed
}

// StartProcess starts bin with args and env (PATH and HOME are added), stopped with SIGKILL at
// cleanup.
func StartProcess(t T, bin string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, bin: bin, args: args, Output: &Buffer{},
		env: append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)}
	p.Start()
	t.Cleanup(func() {
		p.Kill()
		if failed, ok := t.(interface{ Failed() bool }); ok && failed.Failed() {
			if l, ok := t.(interface{ Logf(string, ...any) }); ok {
				l.Logf("%s output:\n%s", bin, p.Output.String())
			}
		}
	})
	return p
}

// Start starts the program again after Kill or Term (or a first time).
func (p *Process) Start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.Output, p.Output
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("draintest: start %s: %v", p.bin, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { p.err = cmd.Wait(); close(exited) }(p.exited)
}

// Pid is the process id of the current run.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL and waits for the process to end. Safe to call when it has ended.
func (p *Process) Kill() { p.signal(syscall.SIGKILL, 0) }

// Term sends SIGTERM and waits up to timeout for the process to end, then kills it; it reports
// the exit error (nil for exit status 0) and whether the process ended by itself in time.
func (p *Process) Term(timeout time.Duration) (exitErr error, inTime bool) {
	return p.signal(syscall.SIGTERM, timeout)
}

func (p *Process) signal(sig syscall.Signal, timeout time.Duration) (error, bool) {
	if p.cmd == nil {
		return nil, false
	}
	_ = p.cmd.Process.Signal(sig)
	inTime := true
	if timeout > 0 {
		select {
		case <-p.exited:
		case <-time.After(timeout):
			inTime = false
			_ = p.cmd.Process.Kill()
		}
	}
	<-p.exited
	p.cmd = nil
	return p.err, inTime
}

// Exited is closed when the current run ends.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// WaitHTTP polls url until it answers status (for example a service's /readyz answering 200)
// and fails the test after timeout or when the process ends first.
func (p *Process) WaitHTTP(url string, status int, timeout time.Duration) {
	p.t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.t.Fatalf("draintest: %s exited (%v) before %s answered %d:\n%s", p.bin, p.err, url, status, p.Output.String())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(25 * time.Millisecond)
	}
	p.t.Fatalf("draintest: %s did not answer %d within %s (last: %s):\n%s", url, status, timeout, last, p.Output.String())
}
