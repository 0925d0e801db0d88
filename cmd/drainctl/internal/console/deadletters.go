package console

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/routemaster-drain/drain/pkg/stream"
)

// Page sizes of the dead-letter list: the default and the largest a ?limit= may ask.
const (
	pageSize    = 50
	maxPageSize = 200
)

// maxReplay bounds the dead letters one replay request republishes (three JetStream requests
// each), so a request stays within its time bound; the result page says how many remain.
const maxReplay = 200

// maxShownBody bounds the part of a dead letter's body the inspect page shows.
const maxShownBody = 256 << 10

var stageRE = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)

// dlqFilter is the selection of the dead-letter pages: ?stage=S&from=N&limit=N.
type dlqFilter struct {
	Stage string
	From  uint64
	Limit int
}

func parseFilter(q url.Values) (dlqFilter, error) {
	f := dlqFilter{Stage: q.Get("stage"), Limit: pageSize}
	if !stageRE.MatchString(f.Stage) {
		return f, fmt.Errorf("stage %q: must match [A-Za-z0-9_-]+", f.Stage)
	}
	if s := q.Get("from"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return f, fmt.Errorf("from %q: not a sequence", s)
		}
		f.From = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			return f, fmt.Errorf("limit %q: must be 1 to %d", s, maxPageSize)
		}
		f.Limit = n
	}
	return f, nil
}

// query returns the URL query of f for a page starting at from.
func (f dlqFilter) query(from uint64) string {
	q := url.Values{}
	if f.Stage != "" {
		q.Set("stage", f.Stage)
	}
	if from != 0 {
		q.Set("from", strconv.FormatUint(from, 10))
	}
	if f.Limit != pageSize {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

type dlqList struct {
	Filter  dlqFilter
	Stream  string
	Total   uint64 // dead letters of the selection
	Stages  []stream.StageCount
	Letters []stream.DLQMsg
	Next    string // query of the next page, "" when none
	First   string // query of the first page, "" when this is it
}

// deadLetters lists one page of dead letters, oldest first.
func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Dead letters", Nav: "dead-letters"}
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		p.Error = err.Error()
		c.render(w, http.StatusBadRequest, "deadletters", p)
		return
	}
	d := dlqList{Filter: f}
	p.Data = &d
	dlq, err := c.openDLQ(r.Context())
	if err == nil {
		d.Stream = dlq.Stream()
		d.Stages, err = dlq.CountByStage(r.Context())
	}
	if err == nil {
		d.Total, err = dlq.Count(r.Context(), stream.Selection{Stage: f.Stage})
	}
	var next uint64
	if err == nil {
		d.Letters, next, err = dlq.Page(r.Context(), stream.Selection{Stage: f.Stage, Limit: f.Limit}, f.From)
	}
	if err != nil {
		p.Error = "Cannot read the dead letters: " + err.Error()
		c.render(w, http.StatusServiceUnavailable, "deadletters", p)
		return
	}
	if next != 0 {
		d.Next = f.query(next)
	}
	if f.From != 0 {
		d.First = f.query(0)
		if d.First == "" {
			d.First = "?"
		}
	}
	c.render(w, http.StatusOK, "deadletters", p)
}

type dlqOne struct {
	Letter    stream.DLQMsg
	Headers   []header
	Body      string
	Truncated int // bytes of the body not shown
	Binary    bool
}

type header struct{ Name, Value string }

// deadLetter shows one dead letter: its fields, every header, the error and the body.
func (c *Console) deadLetter(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Dead letter " + r.PathValue("seq"), Nav: "dead-letters"}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		p.Error = fmt.Sprintf("%q is not a DLQ sequence", r.PathValue("seq"))
		c.render(w, http.StatusBadRequest, "deadletter", p)
		return
	}
	var one dlqOne
	dlq, err := c.openDLQ(r.Context())
	if err == nil {
		err = dlq.Each(r.Context(), stream.Selection{Seq: seq}, func(m stream.DLQMsg) error {
			one.Letter = m
			return nil
		})
	}
	switch {
	case errors.Is(err, stream.ErrNoDeadLetter):
		p.Error = err.Error() + " (replayed or purged meanwhile?)"
		c.render(w, http.StatusNotFound, "deadletter", p)
		return
	case err != nil:
		p.Error = "Cannot read the dead letter: " + err.Error()
		c.render(w, http.StatusServiceUnavailable, "deadletter", p)
		return
	}
	for k, vs := range one.Letter.Header {
		for _, v := range vs {
			one.Headers = append(one.Headers, header{k, v})
		}
	}
	slices.SortFunc(one.Headers, func(a, b header) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Value, b.Value))
	})
	one.Body, one.Truncated, one.Binary = showBody(one.Letter.Data)
	p.Data = &one
	c.render(w, http.StatusOK, "deadletter", p)
}

// showBody returns the body as the page shows it: indented when it is JSON, cut at
// maxShownBody, and whether it is not text.
func showBody(b []byte) (string, int, bool) {
	cut := 0
	if len(b) > maxShownBody {
		cut, b = len(b)-maxShownBody, b[:maxShownBody]
	} else {
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			return out.String(), 0, false
		}
	}
	if !utf8.Valid(b) {
		return fmt.Sprintf("%q", b), cut, true
	}
	return string(b), cut, false
}

// selection reads the target of a replay or purge form: seq (one dead letter) or stage
// (every dead letter of it), neither for all.
func selection(r *http.Request) (stream.Selection, error) {
	var sel stream.Selection
	sel.Stage = r.PostForm.Get("stage")
	if !stageRE.MatchString(sel.Stage) {
		return sel, fmt.Errorf("stage %q: must match [A-Za-z0-9_-]+", sel.Stage)
	}
	if s := r.PostForm.Get("seq"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return sel, fmt.Errorf("seq %q: not a DLQ sequence", s)
		}
		sel.Seq = n
	}
	return sel, nil
}

// describe names a selection for the pages: "dead letter 3", "every dead letter of stage warm".
func describe(sel stream.Selection) string {
	switch {
	case sel.Seq != 0:
		return fmt.Sprintf("dead letter %d", sel.Seq)
	case sel.Stage != "":
		return "every dead letter of stage " + sel.Stage
	}
	return "every dead letter"
}

type replayResult struct {
	What     string
	Outcomes []stream.Replayed
	Failed   int
	Remain   uint64 // dead letters of the selection still in the DLQ (failures included)
	Stage    string // the selection's stage, for the "replay again" form
	More     bool   // the request stopped at maxReplay
}

// replay republishes the selected dead letters to their original subjects (stream.Replay)
// and shows each outcome. Only a same-origin form POST of this console is accepted.
func (c *Console) replay(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Replay", Nav: "dead-letters"}
	if err := c.checkForm(w, r); err != nil {
		p.Error = err.Error()
		c.render(w, http.StatusForbidden, "replayed", p)
		return
	}
	sel, err := selection(r)
	if err != nil {
		p.Error = err.Error()
		c.render(w, http.StatusBadRequest, "replayed", p)
		return
	}
	res := replayResult{What: describe(sel), Stage: sel.Stage}
	p.Data = &res
	if sel.Seq == 0 {
		sel.Limit = maxReplay
	}
	dlq, err := c.openDLQ(r.Context())
	if err == nil {
		err = dlq.Replay(r.Context(), sel, func(out stream.Replayed) error {
			res.Outcomes = append(res.Outcomes, out)
			if out.Err != nil {
				res.Failed++
			}
			return nil
		})
	}
	switch {
	case errors.Is(err, stream.ErrNoDeadLetter):
		p.Error = err.Error() + " (replayed or purged meanwhile?)"
		c.render(w, http.StatusNotFound, "replayed", p)
		return
	case err != nil:
		p.Error = "Replay stopped: " + err.Error()
		c.render(w, http.StatusServiceUnavailable, "replayed", p)
		return
	}
	if sel.Seq == 0 {
		res.More = len(res.Outcomes) == maxReplay
		res.Remain, err = dlq.Count(r.Context(), stream.Selection{Stage: sel.Stage})
		if err != nil {
			p.Error = "Replayed, but cannot count what remains: " + err.Error()
		}
	}
	c.cfg.Log.Info("console: replayed dead letters", "selection", res.What, "replayed", len(res.Outcomes)-res.Failed,
		"failed", res.Failed, "remote", r.RemoteAddr)
	c.render(w, http.StatusOK, "replayed", p)
}

type purgeStep struct {
	Selection stream.Selection
	What      string
	Stream    string
	Count     uint64
	Purged    uint64
	Done      bool
}

// purge deletes the selected dead letters in two steps: a form POST without confirm=yes only
// counts them and asks for the confirmation (a second form, with confirm=yes); only that one
// deletes. Both must be same-origin form POSTs of this console.
func (c *Console) purge(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Purge dead letters", Nav: "dead-letters"}
	if err := c.checkForm(w, r); err != nil {
		p.Error = err.Error()
		c.render(w, http.StatusForbidden, "purge", p)
		return
	}
	sel, err := selection(r)
	if err != nil {
		p.Error = err.Error()
		c.render(w, http.StatusBadRequest, "purge", p)
		return
	}
	step := purgeStep{Selection: sel, What: describe(sel)}
	p.Data = &step
	dlq, err := c.openDLQ(r.Context())
	if err != nil {
		p.Error = "Cannot open the dead letters: " + err.Error()
		c.render(w, http.StatusServiceUnavailable, "purge", p)
		return
	}
	step.Stream = dlq.Stream()
	if r.PostForm.Get("confirm") != "yes" {
		if step.Count, err = dlq.Count(r.Context(), sel); err != nil {
			p.Error = "Cannot count the dead letters: " + err.Error()
			c.render(w, http.StatusServiceUnavailable, "purge", p)
			return
		}
		c.render(w, http.StatusOK, "purge", p)
		return
	}
	step.Purged, err = dlq.Purge(r.Context(), sel)
	switch {
	case errors.Is(err, stream.ErrNoDeadLetter):
		p.Error = err.Error() + " (replayed or purged meanwhile?)"
		c.render(w, http.StatusNotFound, "purge", p)
		return
	case err != nil:
		p.Error = "Purge failed: " + err.Error()
		c.render(w, http.StatusServiceUnavailable, "purge", p)
		return
	}
	step.Done = true
	c.cfg.Log.Info("console: purged dead letters", "selection", step.What, "purged", step.Purged, "remote", r.RemoteAddr)
	c.render(w, http.StatusOK, "purge", p)
}
