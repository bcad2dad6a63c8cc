package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"

	"github.com/vserv/vserv/internal/wire"
)

// Hash sizes: a 128-bit salt and a 256-bit key, as RFC 9106 recommends.
const (
	saltLen = 16
	keyLen  = 32
)

// maxHashing is how many argon2id computations run at once (DESIGN.md
// §3.2). At 64 MiB each this bounds the memory a burst of logins can take;
// the rest wait in line.
const maxHashing = 2

// maxLoginHashes bounds the password checks of logins running or waiting
// for a slot, over all addresses. Each address has at most one login step in
// flight (Backoff.Begin), so a login waits behind at most this many hashes
// (a few tenths of a second at DESIGN costs); more are refused with ERR
// limit rather than queued, so that many addresses cannot make everyone's
// login take seconds.
const maxLoginHashes = 8

// errHashQueueFull is the refusal of a login when maxLoginHashes are queued.
var errHashQueueFull = wire.Errorf(wire.CodeLimit, "too many logins in progress; try again in a moment")

// kdfFunc is argon2.IDKey's signature; tests substitute a counting wrapper.
type kdfFunc func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte

// hasher runs argon2id under the concurrency limit.
type hasher struct {
	params Argon2Params
	slots  chan struct{}
	kdf    kdfFunc
	logins atomic.Int32 // login checks running or waiting (verify)
	log    *slog.Logger
}

func newHasher(p Argon2Params) *hasher {
	return &hasher{params: p, slots: make(chan struct{}, maxHashing), kdf: argon2.IDKey, log: slog.New(slog.DiscardHandler)}
}

// derive computes one argon2id key, waiting for a free slot or ctx.
func (h *hasher) derive(ctx context.Context, pass, salt []byte, p Argon2Params) ([]byte, error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for password hashing: %w", ctx.Err())
	}
	defer func() { <-h.slots }()
	return h.kdf(pass, salt, p.Time, p.MemoryKiB, p.Threads, keyLen), nil
}

// hash returns a PHC string for pass with a fresh salt.
func (h *hasher) hash(ctx context.Context, pass string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key, err := h.derive(ctx, []byte(pass), salt, h.params)
	if err != nil {
		return "", err
	}
	return phc{params: h.params, salt: salt, key: key}.String(), nil
}

// verify reports whether pass matches the PHC string encoded. It is the
// hash of logins, and is refused with ERR limit when maxLoginHashes are
// running or waiting already.
func (h *hasher) verify(ctx context.Context, encoded, pass string) (bool, error) {
	want, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	n := h.logins.Add(1)
	if n > maxLoginHashes {
		h.logins.Add(-1)
		return false, errHashQueueFull
	}
	defer h.logins.Add(-1)
	// The count lets an operator (and the tests) see how full the line is;
	// a refusal above is not logged, as a flood would fill the log.
	h.log.Debug("login password check queued", "logins", n, "max", maxLoginHashes)
	got, err := h.derive(ctx, []byte(pass), want.salt, want.params)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want.key) == 1, nil
}

// phc is an argon2id hash in the PHC string format used by the reference
// implementation and libsodium:
//
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>
//
// with salt and key in unpadded standard base64.
type phc struct {
	params    Argon2Params
	salt, key []byte
}

func (p phc) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.params.MemoryKiB, p.params.Time, p.params.Threads,
		b64.EncodeToString(p.salt), b64.EncodeToString(p.key))
}

// Upper bounds on stored parameters, so that a damaged or planted hash cannot
// make one login take the machine's memory.
const (
	maxStoredMemoryKiB = 4 << 20 // 4 GiB
	maxStoredTime      = 64
)

func parsePHC(s string) (phc, error) {
	bad := func(what string) (phc, error) {
		return phc{}, fmt.Errorf("stored password hash: %s", what)
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return bad("not an argon2id PHC string")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version " + f[2])
	}
	var p phc
	kvs := strings.Split(f[3], ",")
	if len(kvs) != 3 {
		return bad("malformed parameters")
	}
	var v [3]uint64
	for i, name := range [3]string{"m=", "t=", "p="} {
		digits, ok := strings.CutPrefix(kvs[i], name)
		n, err := strconv.ParseUint(digits, 10, 32)
		if !ok || err != nil {
			return bad("malformed parameters")
		}
		v[i] = n
	}
	m, t, l := v[0], v[1], v[2]
	if m == 0 || t == 0 || l == 0 || l > 255 || m > maxStoredMemoryKiB || t > maxStoredTime || m < 8*l {
		return bad("parameters out of range")
	}
	p.params = Argon2Params{Time: uint32(t), MemoryKiB: uint32(m), Threads: uint8(l)}
	var err1, err2 error
	p.salt, err1 = base64.RawStdEncoding.Strict().DecodeString(f[4])
	p.key, err2 = base64.RawStdEncoding.Strict().DecodeString(f[5])
	if err1 != nil || err2 != nil || len(p.salt) < 8 || len(p.key) < 16 {
		return bad("malformed salt or key")
	}
	return p, nil
}
