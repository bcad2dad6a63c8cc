package ledger

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/verify"
)

// The heads file remembers, outside ledger.db, the newest checkpoint this
// server signed for each chain: its size and root. A copy of ledger.db that
// is older than the heads file (restored from a backup, truncated with a
// bbolt tool, a chain deleted) passes every check that only looks inside the
// database, because it is a consistent, correctly signed, shorter history.
// Signing on top of it would give the same origin two checkpoints of one
// size with different roots. The heads file is what makes the server notice
// (docs/formats.md "Heads file").
//
// Format, text, one chain a line, sorted by name:
//
//	vserv-heads v1
//	<chain> <size> <base64 root>
//
// It is rewritten whole after each commit (write a temporary file, fsync,
// rename). Losing the rename in a crash leaves the previous file, which is
// behind the database: that is safe, because a database ahead of the heads
// file is accepted when its tree at the recorded size has the recorded root.

// HeadsFileName is the heads file's name in the data directory.
const HeadsFileName = datadir.HeadsFile

const headsMagic = "vserv-heads v1"

// Head is one chain's newest signed tree size and root.
type Head struct {
	Size uint64
	Root [32]byte
}

// ReadHeads parses a heads file; a missing file is an empty map and ok false.
func ReadHeads(path string) (heads map[string]Head, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Head{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read heads file: %w", err)
	}
	heads, err = parseHeads(b)
	if err != nil {
		return nil, false, fmt.Errorf("heads file %s: %w", path, err)
	}
	return heads, true, nil
}

func parseHeads(b []byte) (map[string]Head, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() || sc.Text() != headsMagic {
		return nil, fmt.Errorf("first line is not %q", headsMagic)
	}
	heads := map[string]Head{}
	for n := 2; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), " ")
		if len(f) != 3 || !verify.ValidChainName(f[0]) {
			return nil, fmt.Errorf("line %d: want \"<chain> <size> <base64 root>\"", n)
		}
		size, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || strconv.FormatUint(size, 10) != f[1] {
			return nil, fmt.Errorf("line %d: bad size %q", n, f[1])
		}
		root, err := base64.StdEncoding.DecodeString(f[2])
		if err != nil || len(root) != 32 {
			return nil, fmt.Errorf("line %d: bad root", n)
		}
		if _, dup := heads[f[0]]; dup {
			return nil, fmt.Errorf("line %d: chain %s repeats", n, f[0])
		}
		h := Head{Size: size}
		copy(h.Root[:], root)
		heads[f[0]] = h
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return heads, nil
}

func formatHeads(heads map[string]Head) []byte {
	names := make([]string, 0, len(heads))
	for n := range heads {
		names = append(names, n)
	}
	slices.Sort(names)
	b := make([]byte, 0, 16+len(names)*96)
	b = append(b, headsMagic+"\n"...)
	for _, n := range names {
		h := heads[n]
		b = fmt.Appendf(b, "%s %d %s\n", n, h.Size, base64.StdEncoding.EncodeToString(h.Root[:]))
	}
	return b
}

// writeHeads replaces the heads file atomically with the data directory's
// one durable writer (datadir.WriteFile: a small write, its fsync, the
// rename and the directory's fsync). At most one write per headsInterval
// keeps those fsyncs out of the way of the database's.
func writeHeads(path string, heads map[string]Head) error {
	if err := datadir.WriteFile(path, formatHeads(heads)); err != nil {
		return fmt.Errorf("write heads file %s: %w", filepath.Base(path), err)
	}
	return nil
}

// rollbackAdvice ends every refusal caused by the heads file.
const rollbackAdvice = "this looks like a restored or truncated database: writes are refused; " +
	"put the newer ledger.db back, or keep this one with `vserv resume --accept-rollback` (docs/operations.md \"Rollback\")"

// compareHead (with no advice appended) says what is wrong when the chain state (size, root of its
// newest stored checkpoint) is not an extension of the recorded head h;
// rootAt returns the database's root at a smaller size.
func compareHead(chain string, size uint64, root [32]byte, h Head, rootAt func(uint64) ([32]byte, error)) string {
	b64 := base64.StdEncoding.EncodeToString
	switch {
	case size < h.Size:
		return fmt.Sprintf("chain %s: the database has size %d (root %s), but this server already signed size %d (root %s)",
			chain, size, b64(root[:]), h.Size, b64(h.Root[:]))
	case size == h.Size && root != h.Root:
		return fmt.Sprintf("chain %s: the database's tree of size %d has root %s, but this server signed root %s for that size",
			chain, size, b64(root[:]), b64(h.Root[:]))
	case size > h.Size:
		r, err := rootAt(h.Size)
		if err != nil {
			return fmt.Sprintf("chain %s: cannot compute the root at the signed size %d: %v", chain, h.Size, err)
		}
		if r != h.Root {
			return fmt.Sprintf("chain %s: the database's tree at size %d has root %s, but this server signed root %s for that size",
				chain, h.Size, b64(r[:]), b64(h.Root[:]))
		}
	}
	return ""
}

// lostChainText is the refusal for a chain the heads file knows and the
// database has lost.
func lostChainText(chain string, h Head) string {
	return fmt.Sprintf("chain %s is missing from the database, but this server already signed its checkpoint of size %d (root %s)",
		chain, h.Size, base64.StdEncoding.EncodeToString(h.Root[:]))
}

// Heads returns the newest signed size and root of every chain that is not
// read-only: what a heads file re-anchored on this database holds (`vserv
// resume --accept-rollback`). Open the ledger without a HeadsFile for that,
// so that the file's own refusals do not hide the database's state.
func (l *Ledger) Heads() map[string]Head {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[string]Head, len(l.chains))
	for name, cs := range l.chains {
		if cs.readOnly == "" && cs.head != nil {
			out[name] = Head{Size: cs.headSize, Root: cs.headRoot}
		}
	}
	return out
}

// WriteHeads replaces a heads file atomically. Only a stopped server's
// operator tool uses it; a running ledger writes its own.
func WriteHeads(path string, heads map[string]Head) error { return writeHeads(path, heads) }
