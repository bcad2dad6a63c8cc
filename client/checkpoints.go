package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/verify"
)

// The checkpoint cache closes the rollback a server could otherwise show a
// returning client: a shorter or different history, correctly signed. Like
// the Go checksum database client's cache, it remembers per origin the
// newest checkpoint this client has verified, and every later checkpoint of
// that origin must be proven consistent with it (rcons) before it is
// believed. Layout (docs/formats.md "Checkpoint cache"):
//
//	<dir of known_hosts>/checkpoints/<server-id>/<chain>
//
// each file the signed checkpoint note exactly as the server sent it, so
// that it can be handed to `vserv verify --expect` or published as evidence.
// Files are replaced atomically (write a temporary file, rename).

// RollbackError is a server's checkpoint that contradicts one this client
// verified before: a shorter history, or another root for the same size, or
// one that is not an extension of it. Both notes are evidence a person can
// publish: each is signed by the server.
type RollbackError struct {
	Origin string
	Reason string
	Cached string // the checkpoint verified before
	File   string // where it is kept
	Served string // the checkpoint the server gives now
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("ROLLBACK REFUSED: the server's history of %s contradicts a checkpoint this client verified before: %s\n"+
		"Keep and publish both signed checkpoints: together they prove the server signed two inconsistent histories.\n"+
		"--- verified before (%s):\n%s--- served now:\n%s",
		e.Origin, e.Reason, e.File, e.Cached, e.Served)
}

// ErrRollback matches every *RollbackError with errors.Is.
var ErrRollback = errors.New("rollback")

func (e *RollbackError) Is(target error) bool { return target == ErrRollback }

// cachePath is the cache file of an origin, or "" when this client keeps no
// cache (NoKnownHosts) or the origin cannot name a file.
func (c *Client) cachePath(origin string) string {
	if c.opts.NoKnownHosts {
		return ""
	}
	id, name, ok := strings.Cut(strings.TrimPrefix(origin, "vserv/"), "/")
	if !ok || !verify.ValidServerID(id) || !verify.ValidChainName(name) {
		return ""
	}
	kh := c.opts.KnownHosts
	if kh == "" {
		var err error
		if kh, err = secure.DefaultKnownHostsPath(); err != nil {
			return ""
		}
	}
	return filepath.Join(filepath.Dir(kh), "checkpoints", id, name)
}

// CheckpointKey is the key that signs the checkpoints of chain (a name or a
// full origin): the connected server's identity for its own chains; for a
// chain mirrored from another home, that home's key — one of
// Options.HomeKeys, else of known_hosts, whose server-id is the chain's
// origin; nil when no such key is known.
func (c *Client) CheckpointKey(chain string) ed25519.PublicKey {
	origin := c.ChainOrigin(chain)
	id := serverIDOf(origin)
	if id == c.ServerID() {
		return c.Identity()
	}
	for _, k := range c.opts.HomeKeys {
		if verify.ServerIDFromKey(k) == id {
			return k
		}
	}
	if c.opts.NoKnownHosts {
		return nil
	}
	path := c.opts.KnownHosts
	if path == "" {
		var err error
		if path, err = secure.DefaultKnownHostsPath(); err != nil {
			return nil
		}
	}
	kh, err := secure.OpenKnownHosts(path)
	if err != nil {
		return nil
	}
	for _, k := range kh.Keys() {
		if verify.ServerIDFromKey(k) == id {
			return k
		}
	}
	return nil
}

// CachedCheckpoint returns the newest checkpoint of chain this client has
// verified, and the file it is kept in; "" when there is none.
func (c *Client) CachedCheckpoint(chain string) (note, file string, err error) {
	file = c.cachePath(c.ChainOrigin(chain))
	if file == "" {
		return "", "", nil
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", file, nil
	}
	if err != nil {
		return "", file, fmt.Errorf("checkpoint cache: %w", err)
	}
	return string(b), file, nil
}

// track checks a checkpoint the server sent for chain against the cache and
// records it when it is newer. The cache is kept per origin line, so a
// chain's home and every mirror serving it (by full origin) are held to one
// history: a client that saw checkpoint N at the home refuses a shorter or
// other history at a mirror, and the other way round. A note that does not
// verify under CheckpointKey is left to the caller (it is not this client's
// evidence); a mirrored chain whose home's key is unknown is not tracked,
// and the person is told.
// When this account may not read the chain, the proof is not to be had: the
// person is told and the cache stays as it was (unproven).
func (c *Client) track(ctx context.Context, chain, served string) error {
	origin := c.ChainOrigin(chain)
	path := c.cachePath(origin)
	if path == "" || c.Identity() == nil {
		return nil
	}
	pub := c.CheckpointKey(chain)
	if pub == nil {
		c.notice(fmt.Sprintf("the checkpoint of %s is not checked against the checkpoint cache: no key of its home %s is known "+
			"(connect to the home once, so that known_hosts records it)", origin, serverIDOf(origin)))
		return nil
	}
	now, err := verify.OpenCheckpoint([]byte(served), origin, pub)
	if err != nil {
		return nil
	}
	cachedNote, _, err := c.CachedCheckpoint(chain)
	if err != nil {
		return err
	}
	if cachedNote == "" {
		return c.save(path, served)
	}
	text, _, _ := strings.Cut(cachedNote, "\n\n")
	old, err := verify.ParseCheckpoint(text + "\n")
	if err != nil || old.Origin != origin {
		return fmt.Errorf("checkpoint cache %s is damaged (%v): move it away to start afresh", path, err)
	}
	refuse := func(reason string, servedNote string) error {
		return &RollbackError{Origin: origin, Reason: reason, Cached: cachedNote, File: path, Served: servedNote}
	}
	switch {
	case now.Size == old.Size:
		if now.Root != old.Root {
			return refuse(fmt.Sprintf("both have size %d but different roots", now.Size), served)
		}
		return nil
	case now.Size > old.Size:
		hashes, _, err := c.consistency(ctx, chain, old.Size, now.Size)
		if unreadable(err) {
			c.unproven(chain, now.Size, old.Size, err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("prove checkpoint %d consistent with the one verified before (%d): %w", now.Size, old.Size, err)
		}
		if err := verify.VerifyConsistency(old, now, hashes); err != nil {
			return refuse(fmt.Sprintf("size %d is not an extension of size %d: %v", now.Size, old.Size, err), served)
		}
		return c.save(path, served)
	}
	// An older checkpoint (a receipt against a kept one): the newest must
	// still extend what was verified before.
	hashes, headNote, err := c.consistency(ctx, chain, now.Size, 0)
	if unreadable(err) {
		c.unproven(chain, now.Size, old.Size, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("prove checkpoint %d consistent with the newest: %w", now.Size, err)
	}
	head, err := verify.OpenCheckpoint([]byte(headNote), origin, pub)
	if err != nil {
		return fmt.Errorf("the newest checkpoint does not verify: %w", err)
	}
	if err := verify.VerifyConsistency(now, head, hashes); err != nil {
		return refuse(fmt.Sprintf("size %d is not consistent with the server's newest, size %d: %v", now.Size, head.Size, err), served)
	}
	if head.Size < old.Size {
		return refuse(fmt.Sprintf("the server's newest checkpoint has size %d, shorter than the %d verified before", head.Size, old.Size), headNote)
	}
	return c.track(ctx, chain, headNote)
}

// unreadable reports whether rcons was refused because this account may
// not read the chain: a writer without the read right gets ERR perm, or ERR
// notfound on a private chain.
func unreadable(err error) bool {
	return errors.Is(err, ErrPerm) || errors.Is(err, ErrNotFound)
}

// unproven tells the person that a checkpoint, which did verify under the
// server's key, could not be proven consistent with the cached one because
// this account may not read the chain. The call goes on (a write it answers
// was committed), and the cache keeps the checkpoint it had: replacing it
// with one never proven to extend it would let a server that forked this
// client hide the fork from every later reader of the cache, while keeping
// it loses nothing that was proven (docs/formats.md §12, "Writers without
// the read right").
func (c *Client) unproven(chain string, size, cached uint64, err error) {
	c.notice(fmt.Sprintf("consistency of %s's checkpoint %d with the one verified before (%d) was not checked: "+
		"this account may not read the chain (%v); the cache keeps checkpoint %d", chain, size, cached, err, cached))
}

// save records a verified checkpoint. A cache that cannot be written (a
// read-only home) does not stop the call: the checkpoint did verify; the
// person is told that it is not remembered.
func (c *Client) save(path, note string) error {
	if err := saveCheckpoint(path, note); err != nil {
		c.notice(fmt.Sprintf("%v (this checkpoint is not remembered, so a later rollback to before it would go unnoticed)", err))
	}
	return nil
}

// saveCheckpoint replaces a cache file atomically.
func saveCheckpoint(path, note string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("checkpoint cache: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoint cache: %w", err)
	}
	_, err = f.WriteString(note)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("checkpoint cache: %w", err)
	}
	return nil
}
