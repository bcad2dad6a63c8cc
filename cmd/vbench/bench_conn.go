package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vserv/vserv/client"
)

func benchHandshake(ctx context.Context, env *benchEnv) ([]result, error) {
	const clients = 8
	cpu0, cpuErr := env.cpuSeconds()
	st, err := runLoad(ctx, clients, env.opts.duration,
		func(context.Context, int) (struct{}, error) { return struct{}{}, nil },
		func(ctx context.Context, _ struct{}) (int, error) {
			c, err := env.dial(ctx)
			if err != nil {
				return 0, err
			}
			c.Close()
			return 1, nil
		},
		func(struct{}) {})
	if err != nil {
		return nil, err
	}
	res := []result{
		{what: "full handshake, 8 clients", value: st.perSecond(), unit: "/s", target: "≥ 1,000/s (stretch 2,000)"},
		{what: "full handshake latency p50", value: ms(st.percentile(0.5)), unit: "ms", target: ""},
		{what: "full handshake latency p99", value: ms(st.percentile(0.99)), unit: "ms", target: ""},
	}
	if cpuErr == nil && env.pid() != 0 {
		cpu1, err := env.cpuSeconds()
		if err == nil && st.ops > 0 {
			res = append(res, result{what: "server CPU per handshake", value: (cpu1 - cpu0) * 1000 / float64(st.ops), unit: "ms", target: "≤ 0.5 ms"})
		}
	}
	return res, nil
}

func benchHello(ctx context.Context, env *benchEnv) ([]result, error) {
	return helloLoad(ctx, env, "", func(ctx context.Context, _ int) (*client.Client, error) { return env.dial(ctx) })
}

// benchHelloLogin is benchHello in logged-in sessions, where every command
// first re-reads the account's generation (docs/protocol.md, "Login
// concurrency and account changes").
func benchHelloLogin(ctx context.Context, env *benchEnv) ([]result, error) {
	return helloLoad(ctx, env, ", logged in", func(ctx context.Context, _ int) (*client.Client, error) { return benchLogin(ctx, env) })
}

func helloLoad(ctx context.Context, env *benchEnv, what string, open func(context.Context, int) (*client.Client, error)) ([]result, error) {
	const sessions = 32
	st, err := runLoad(ctx, sessions, env.opts.duration,
		open,
		func(ctx context.Context, c *client.Client) (int, error) {
			_, err := c.Hello(ctx)
			return 1, err
		},
		func(c *client.Client) { c.Close() })
	if err != nil {
		return nil, err
	}
	return []result{
		{what: "hello round trips, 32 sessions" + what, value: st.perSecond(), unit: "/s", target: "≥ 30,000/s"},
		{what: "hello latency p50" + what, value: ms(st.percentile(0.5)), unit: "ms"},
		{what: "hello latency p99" + what, value: ms(st.percentile(0.99)), unit: "ms"},
	}, nil
}

func benchRSS(ctx context.Context, env *benchEnv) ([]result, error) {
	if env.pid() == 0 {
		return nil, fmt.Errorf("needs --vserv (it reads the server's memory)")
	}
	time.Sleep(500 * time.Millisecond)
	idle, err := env.rssMB()
	if err != nil {
		return nil, err
	}
	const n = 1000
	conns := make([]*client.Client, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := env.dial(ctx)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("open %d sessions: %w", n, err)
	}
	time.Sleep(time.Second)
	busy, err := env.rssMB()
	if err != nil {
		return nil, err
	}
	return []result{
		{what: "server RSS, idle, empty data directory", value: idle, unit: "MB", target: "≤ 30 MB"},
		{what: "server RSS, 1,000 idle sessions", value: busy, unit: "MB", target: "≤ 150 MB"},
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
