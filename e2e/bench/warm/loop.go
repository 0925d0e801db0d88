package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// loopArgs run the bare loop of the CPU case: the least a warmer must do per URL, at the
// warmer's concurrency. One goroutine pulls (as the warmer's consumer does) and hands each
// message to one of conc workers, which parses it, GETs its URL through a plain net/http client
// keeping conc connections alive, stores the answer with the cache's own conditional-store
// script under the request's index (one EVALSHA) and acks. It prints "ready" once connected,
// "done stored=<n> alloc=<bytes>" after n acks, then waits for its stdin to close so the
// caller can read its CPU time.
type loopArgs struct {
	on                       bool
	nats, redis, prefix, lua string
	profile                  string
	n, conc                  int
}

func (a loopArgs) run() error {
	ctx := context.Background()
	src, err := os.ReadFile(a.lua)
	if err != nil {
		return err
	}
	script := redis.NewScript(string(src))
	nc, err := nats.Connect(a.nats)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	names := stream.Names{Prefix: a.prefix}
	cons, err := js.CreateOrUpdateConsumer(ctx, names.Stream(stream.Warm), jetstream.ConsumerConfig{
		Durable: "bareloop", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000, AckWait: time.Minute,
	})
	if err != nil {
		return err
	}
	// The pool the drain's services get (config.MinPoolSize), on the same Redis.
	rdb := redis.NewClient(&redis.Options{Addr: a.redis, PoolSize: config.MinPoolSize})
	defer rdb.Close()
	if err := script.Load(ctx, rdb).Err(); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: a.conc}}
	ttl := time.Hour.Milliseconds()
	prefix := cache.Variant{}.Prefix()

	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if a.profile != "" {
		f, err := os.Create(a.profile + "-cpu.pprof")
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * a.conc))
	if err != nil {
		return err
	}
	work := make(chan jetstream.Msg, a.conc)
	go func() {
		defer close(work)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			work <- m
		}
	}()
	var stored atomic.Int64
	var failed atomic.Value
	finished := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for range a.conc {
		wg.Go(func() {
			for m := range work {
				if err := a.one(ctx, hc, rdb, script, prefix, ttl, m); err != nil {
					failed.Store(err)
					once.Do(func() { close(finished) })
					return
				}
				if stored.Add(1) == int64(a.n) {
					once.Do(func() { close(finished) })
				}
			}
		})
	}
	<-finished
	if a.profile != "" {
		pprof.StopCPUProfile()
	}
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	if a.profile != "" {
		f, err := os.Create(a.profile + "-allocs.pprof")
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	fmt.Printf("done stored=%d alloc=%d\n", stored.Load(), m1.TotalAlloc-m0.TotalAlloc)
	_, _ = io.Copy(io.Discard, os.Stdin)
	it.Stop()
	return nil
}

// one is the loop's work on one message.
func (a loopArgs) one(ctx context.Context, hc *http.Client, rdb *redis.Client, script *redis.Script, prefix string, ttl int64, m jetstream.Msg) error {
	req, err := cache.ParseWarmRequest(m.Data())
	if err != nil {
		return err
	}
	started := time.Now()
	resp, err := hc.Get(req.URL)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil {
		return err
	}
	headers, _ := json.Marshal(map[string]string{"Content-Type": resp.Header.Get("Content-Type")})
	res, err := script.Run(ctx, rdb, []string{cache.Key(a.prefix, req.URL)},
		req.Index, prefix, resp.StatusCode, headers, body, started.UnixMilli(), ttl).Int64Slice()
	if err != nil {
		return err
	}
	if len(res) == 0 || res[0] != 1 {
		return errors.New("the store script refused a store: the index moved")
	}
	return m.Ack()
}
