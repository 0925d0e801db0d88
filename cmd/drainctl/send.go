package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/routemaster-drain/drain/pkg/event"
)

var sendCommand = &Command{
	Name:    "send",
	Usage:   "<file.json|->",
	Summary: "POST a batch file to DRAIN_INGEST_URL as the bus does (checked locally first)",
	Run:     runSend,
}

// sendTimeout bounds one send: connecting, posting and reading the answer.
const sendTimeout = 10 * time.Second

// maxSendAnswer is how much of ingest's answer is read and printed.
const maxSendAnswer = 64 << 10

// sendResult is the --json form of `send`.
type sendResult struct {
	URL    string `json:"url"`
	Events int    `json:"events"`
	Status int    `json:"status"`
	Body   string `json:"body"`
}

func runSend(ctx context.Context, e *Env, args []string) error {
	file, err := oneArg(args, "file (or - for stdin)")
	if err != nil {
		return err
	}
	var body []byte
	if file == "-" {
		body, err = io.ReadAll(os.Stdin)
	} else {
		body, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	events, err := event.Parse(body)
	if err != nil {
		return fmt.Errorf("%s: %w (nothing sent)", file, err)
	}
	if len(e.Cfg.Ingest.Tokens) == 0 {
		return errors.New("ROUTEMASTER_DRAIN_TOKENS is empty: send authenticates with its first token, as the bus does (nothing sent)")
	}
	token := e.Cfg.Ingest.Tokens[0]

	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.Cfg.IngestURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(token, "x")
	client := &http.Client{
		// A redirect is reported, not followed: the bus does not follow them either.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", e.Cfg.IngestURL, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxSendAnswer))
	if err != nil {
		return fmt.Errorf("POST %s: %d, reading the answer: %w", e.Cfg.IngestURL, resp.StatusCode, err)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if e.JSON {
		if err := e.PrintJSON(sendResult{URL: e.Cfg.IngestURL, Events: len(events), Status: resp.StatusCode, Body: string(answer)}); err != nil {
			return err
		}
	} else if _, err := fmt.Fprintf(e.Stdout, "%s (%d events)\n", resp.Status, len(events)); err != nil {
		return err
	}
	if !ok {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("ingest answered %s: %s", resp.Status, strings.TrimSpace(string(answer)))}
	}
	return nil
}
