package main

import (
	"context"
	"errors"
	"sync"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/client"
)

// A recount compares every view of the replayed state with the server's
// answer: one voter view per voter, so 100,000 round trips for an election
// of 100,000 voters. One connection spends most of a recount waiting for
// them (about 200 µs each, two thirds of the whole), so the answers are
// fetched ahead, a chunk at a time, over a few connections at once.
const (
	viewFetchConns = 8    // connections asking at once, the recount's own included
	viewFetchChunk = 4096 // answers fetched ahead of the comparison
	viewFetchMin   = 256  // fewer queries than this use the one connection
)

type viewAnswer struct {
	view    []byte // the server's CBOR, nil when missing
	size    uint64
	missing bool // ERR notfound: the server holds no such item
}

type viewFetcher struct {
	ctx   context.Context
	chain string
	conns []*client.Client
	own   int // conns[:own] are this fetcher's to close

	base    int // index of answers[0] in the queries
	answers []viewAnswer
}

// newViewFetcher uses c and, when there are many queries, up to
// viewFetchConns-1 more connections made like c (logged in when c is). A
// connection that cannot be made only means fewer at once.
func (a *app) newViewFetcher(ctx context.Context, c *client.Client, chain string, queries int) *viewFetcher {
	f := &viewFetcher{ctx: ctx, chain: chain, conns: []*client.Client{c}, own: 1}
	if queries < viewFetchMin {
		return f
	}
	// One at a time: a server lets one address log in only once at a time.
	for len(f.conns) < viewFetchConns {
		extra, err := a.connect(ctx, a.opts.user != "")
		if err != nil {
			break
		}
		f.conns = append(f.conns, extra)
	}
	f.own = len(f.conns)
	return f
}

// get returns the server's answer to qs[i]; i only grows.
func (f *viewFetcher) get(qs []apps.Query, i int) (viewAnswer, error) {
	if i < f.base || i >= f.base+len(f.answers) {
		if err := f.fetch(qs, i); err != nil {
			return viewAnswer{}, err
		}
	}
	return f.answers[i-f.base], nil
}

// fetch asks for qs[from:from+viewFetchChunk], spread over the connections.
func (f *viewFetcher) fetch(qs []apps.Query, from int) error {
	n := min(viewFetchChunk, len(qs)-from)
	f.base, f.answers = from, make([]viewAnswer, n)
	var wg sync.WaitGroup
	errs := make([]error, len(f.conns))
	for w, c := range f.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < n; k += len(f.conns) {
				q := qs[from+k]
				v, size, err := c.ViewRaw(f.ctx, f.chain, q.Name, q.Args)
				switch {
				case errors.Is(err, client.ErrNotFound):
					f.answers[k] = viewAnswer{missing: true}
				case err != nil:
					errs[w] = err
					return
				default:
					f.answers[k] = viewAnswer{view: v, size: size}
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// close ends the connections the fetcher made (not the recount's own).
func (f *viewFetcher) close() {
	for _, c := range f.conns[1:f.own] {
		c.Close()
	}
	f.conns, f.own = f.conns[:1], 1
}
