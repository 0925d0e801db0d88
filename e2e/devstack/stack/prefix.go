package stack

import (
	"bytes"
	"io"
	"sync"
)

// PrefixWriter writes each complete line it receives to W with Prefix in front. Several
// PrefixWriters may share one W: lines are written whole under a shared lock.
type PrefixWriter struct {
	W      io.Writer
	Prefix string
	Mu     *sync.Mutex
	buf    []byte
}

// Write buffers p and emits every complete line.
func (w *PrefixWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.Mu.Lock()
		_, err := io.WriteString(w.W, w.Prefix+string(w.buf[:i+1]))
		w.Mu.Unlock()
		w.buf = w.buf[i+1:]
		if err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}
