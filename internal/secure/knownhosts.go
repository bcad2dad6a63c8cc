package secure

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/vserv/vserv/internal/datadir"
)

// KnownHosts is the client's record of server identity keys (§2.4): the file
// ~/.config/vserv/known_hosts, one "HOST:PORT KEY" line per server, IPv6
// hosts in brackets, KEY the padded base64 public key. Blank lines and lines
// starting with # are kept as they are.
//
// A malformed line makes OpenKnownHosts fail instead of being skipped: a
// skipped line would look like a first contact and silently trust whatever
// key the next server presents. Two processes updating the file at the same
// time may lose one update (the last rewrite wins); neither corrupts it.
type KnownHosts struct {
	path string

	mu    sync.Mutex
	lines []knownHostLine
}

type knownHostLine struct {
	text     string // the line as read, for comments and blank lines
	hostport string // canonical HOST:PORT; empty for comments
	key      ed25519.PublicKey
}

// DefaultKnownHostsPath is $XDG_CONFIG_HOME/vserv/known_hosts, or
// $HOME/.config/vserv/known_hosts when XDG_CONFIG_HOME is unset or not
// absolute (as the XDG specification says).
func DefaultKnownHostsPath() (string, error) {
	if dir := os.Getenv("XDG_CONFIG_HOME"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "vserv", "known_hosts"), nil
	}
	home := os.Getenv("HOME")
	if home == "" {
		return "", errors.New("known_hosts: neither $XDG_CONFIG_HOME nor $HOME is set")
	}
	return filepath.Join(home, ".config", "vserv", "known_hosts"), nil
}

// OpenKnownHosts reads the file at path; a missing file is an empty list.
func OpenKnownHosts(path string) (*KnownHosts, error) {
	kh := &KnownHosts{path: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return kh, nil
	}
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	seen := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			kh.lines = append(kh.lines, knownHostLine{text: text})
			continue
		}
		fields := strings.Fields(trimmed)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"HOST:PORT KEY\"", path, n)
		}
		hostport, err := CanonicalHostPort(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		key, err := ParsePublicKey(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if first, dup := seen[hostport]; dup {
			return nil, fmt.Errorf("%s:%d: %s is already listed on line %d", path, n, hostport, first)
		}
		seen[hostport] = n
		kh.lines = append(kh.lines, knownHostLine{hostport: hostport, key: key})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	return kh, nil
}

// CanonicalHostPort is the form known_hosts stores an address in: host names
// lowercased, IP addresses in their canonical text (IPv6 in brackets), the
// port as a plain decimal number. "[0:0::1]:06666" and "[::1]:6666" are the
// same server.
func CanonicalHostPort(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", hostport, err)
	}
	if host == "" {
		return "", fmt.Errorf("address %q: empty host", hostport)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil || pn == 0 {
		return "", fmt.Errorf("address %q: bad port", hostport)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	} else {
		host = strings.ToLower(host)
		if strings.ContainsAny(host, " \t#") {
			return "", fmt.Errorf("address %q: bad host", hostport)
		}
	}
	return net.JoinHostPort(host, strconv.FormatUint(pn, 10)), nil
}

// Lookup returns the key recorded for hostport.
func (kh *KnownHosts) Lookup(hostport string) (ed25519.PublicKey, bool) {
	hp, err := CanonicalHostPort(hostport)
	if err != nil {
		return nil, false
	}
	kh.mu.Lock()
	defer kh.mu.Unlock()
	for _, l := range kh.lines {
		if l.hostport == hp {
			return l.key, true
		}
	}
	return nil, false
}

// Keys returns the recorded keys, in file order.
func (kh *KnownHosts) Keys() []ed25519.PublicKey {
	kh.mu.Lock()
	defer kh.mu.Unlock()
	var keys []ed25519.PublicKey
	for _, l := range kh.lines {
		if l.hostport != "" {
			keys = append(keys, l.key)
		}
	}
	return keys
}

// FindByFingerprint returns a recorded key whose Fingerprint is fp.
func (kh *KnownHosts) FindByFingerprint(fp string) (ed25519.PublicKey, bool) {
	kh.mu.Lock()
	defer kh.mu.Unlock()
	for _, l := range kh.lines {
		if l.hostport != "" && Fingerprint(l.key) == fp {
			return l.key, true
		}
	}
	return nil, false
}

// Set records key for hostport (replacing any previous key) and rewrites the
// file atomically, 0600 in a 0700 directory.
func (kh *KnownHosts) Set(hostport string, key ed25519.PublicKey) error {
	hp, err := CanonicalHostPort(hostport)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	if len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("known_hosts: key is %d bytes, want %d", len(key), ed25519.PublicKeySize)
	}
	kh.mu.Lock()
	defer kh.mu.Unlock()
	lines := append([]knownHostLine(nil), kh.lines...)
	entry := knownHostLine{hostport: hp, key: append(ed25519.PublicKey(nil), key...)}
	replaced := false
	for i, l := range lines {
		if l.hostport == hp {
			lines[i] = entry
			replaced = true
		}
	}
	if !replaced {
		lines = append(lines, entry)
	}
	var buf bytes.Buffer
	for _, l := range lines {
		if l.hostport == "" {
			buf.WriteString(l.text)
		} else {
			buf.WriteString(l.hostport + " " + PublicKeyText(l.key))
		}
		buf.WriteByte('\n')
	}
	if err := datadir.MakePrivateDir(filepath.Dir(kh.path)); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	if err := datadir.WriteFile(kh.path, buf.Bytes()); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	kh.lines = lines
	return nil
}
