// Command healthcheck is the container health probe of the drain images. Distroless images
// have no shell and no curl, so compose runs this static binary instead:
//
//	healthcheck http://127.0.0.1:9091/healthz
//
// It GETs the URL with a short timeout and exits 0 on a 2xx answer and 1 otherwise, printing
// one line saying why.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

func run(args []string, out io.Writer) int {
	if len(args) != 1 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(out, "usage: healthcheck <url>  (exit 0 when a GET answers 2xx)")
		return 2
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(args[0])
	if err != nil {
		fmt.Fprintf(out, "unhealthy: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(out, "unhealthy: %s answered %d\n", args[0], resp.StatusCode)
		return 1
	}
	fmt.Fprintf(out, "healthy: %s answered %d\n", args[0], resp.StatusCode)
	return 0
}
