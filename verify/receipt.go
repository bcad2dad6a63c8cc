package verify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// receiptHeader is the first line of a C2SP tlog-proof.
const receiptHeader = "c2sp.org/tlog-proof@v1"

// FormatReceipt returns the C2SP tlog-proof (§4.5) of the entry at seq, with
// its inclusion proof (leaf sibling first) and the checkpoint note verbatim.
func FormatReceipt(entry []byte, seq uint64, hashes [][]byte, checkpointNote []byte) []byte {
	var b bytes.Buffer
	b.WriteString(receiptHeader + "\nextra ")
	b.WriteString(base64.StdEncoding.EncodeToString(entry))
	b.WriteString("\nindex ")
	b.WriteString(strconv.FormatUint(seq, 10))
	b.WriteByte('\n')
	for _, h := range hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(checkpointNote)
	return b.Bytes()
}

// WitnessKey is a witness trusted to cosign. A vserv witness is named by
// its server-id: its cosignature key name is vserv/<ServerID>, and ServerID
// may be empty when Key is the witness's first identity key. Any other C2SP
// witness (torchwood's, Sigsum's) is named by Name, the cosignature key name
// it publishes; when Name is set, ServerID is ignored.
type WitnessKey struct {
	ServerID string
	Name     string
	Key      ed25519.PublicKey
}

// KeyName is the cosignature key name whose lines w signs.
func (w WitnessKey) KeyName() string {
	if w.Name != "" {
		return w.Name
	}
	id := w.ServerID
	if id == "" {
		id = ServerIDFromKey(w.Key)
	}
	return WitnessName(id)
}

// verifier is the note verifier of w's cosignature lines.
func (w WitnessKey) verifier() note.Verifier {
	return NamedCosignatureVerifier(w.KeyName(), w.Key)
}

// ReceiptOptions says whom to trust.
type ReceiptOptions struct {
	ServerKey ed25519.PublicKey
	// ServerID is the home's server-id; empty means ServerKey is its first
	// identity key and the id is derived from it.
	ServerID  string
	Witnesses []WitnessKey
	Quorum    int // cosignatures needed from distinct Witnesses
}

// VerifiedReceipt is what a receipt proves.
type VerifiedReceipt struct {
	Entry      *Entry
	Record     *Record
	EntryBytes []byte
	Leaf       [32]byte
	Checkpoint *Checkpoint
	Cosigners  []WitnessKey // witnesses whose cosignature verified
}

// parsedReceipt is a receipt split into its parts, before any checking.
type parsedReceipt struct {
	entry  []byte
	index  uint64
	hashes [][]byte
	note   []byte
}

func parseReceipt(r []byte) (*parsedReceipt, error) {
	// The proof ends at the first empty line; everything after it is the
	// checkpoint note, which has an empty line of its own.
	split := bytes.Index(r, []byte("\n\n"))
	if split < 0 {
		return nil, fmt.Errorf("%w: no empty line", ErrBadReceipt)
	}
	lines := bytes.Split(r[:split], []byte("\n"))
	p := &parsedReceipt{note: r[split+2:]}
	if len(lines) < 3 || string(lines[0]) != receiptHeader {
		return nil, fmt.Errorf("%w: want %q, extra and index lines", ErrBadReceipt, receiptHeader)
	}
	extra, ok := bytes.CutPrefix(lines[1], []byte("extra "))
	if !ok {
		return nil, fmt.Errorf("%w: second line must be extra", ErrBadReceipt)
	}
	entry, err := base64.StdEncoding.DecodeString(string(extra))
	if err != nil || len(entry) == 0 {
		return nil, fmt.Errorf("%w: extra is not base64", ErrBadReceipt)
	}
	p.entry = entry
	index, ok := bytes.CutPrefix(lines[2], []byte("index "))
	if !ok {
		return nil, fmt.Errorf("%w: third line must be index", ErrBadReceipt)
	}
	p.index, err = strconv.ParseUint(string(index), 10, 64)
	if err != nil || strconv.FormatUint(p.index, 10) != string(index) {
		return nil, fmt.Errorf("%w: bad index %q", ErrBadReceipt, index)
	}
	for _, l := range lines[3:] {
		h, err := base64.StdEncoding.DecodeString(string(l))
		if err != nil || len(h) != 32 {
			return nil, fmt.Errorf("%w: proof hash %q is not 32 bytes in base64", ErrBadReceipt, l)
		}
		p.hashes = append(p.hashes, h)
	}
	return p, nil
}

// ReceiptServerID returns the server-id a receipt's entry names as its
// origin, without checking anything else: it tells a verifier which key to
// look up, and VerifyReceipt then checks the receipt with that key.
func ReceiptServerID(receipt []byte) (string, error) {
	p, err := parseReceipt(receipt)
	if err != nil {
		return "", err
	}
	e, _, err := ParseEntry(p.entry)
	if err != nil {
		return "", fmt.Errorf("%w: entry: %w", ErrBadReceipt, err)
	}
	return e.Origin, nil
}

// VerifyReceipt checks a receipt by every rule of §4.5: the entry is valid
// with v = 1 and seq = index < size, its origin is the server-id and the
// checkpoint's origin line is vserv/<server-id>/<entry chain>, the checkpoint
// is signed by ServerKey, the entry's leaf is included under its root, and at
// least Quorum distinct Witnesses cosigned it. A cosignature line from a
// listed witness that does not verify makes the receipt invalid.
func VerifyReceipt(receipt []byte, opts ReceiptOptions) (*VerifiedReceipt, error) {
	if len(opts.ServerKey) != ed25519.PublicKeySize {
		return nil, errors.New("verify receipt: server key must be 32 bytes")
	}
	serverID := opts.ServerID
	if serverID == "" {
		serverID = ServerIDFromKey(opts.ServerKey)
	}
	p, err := parseReceipt(receipt)
	if err != nil {
		return nil, err
	}
	e, rec, err := ParseEntry(p.entry)
	if err != nil {
		return nil, fmt.Errorf("%w: entry: %w", ErrBadReceipt, err)
	}
	if e.Seq != p.index {
		return nil, fmt.Errorf("%w: entry seq %d but index %d", ErrBadReceipt, e.Seq, p.index)
	}
	if e.Origin != serverID {
		return nil, fmt.Errorf("%w: entry origin %s, want server-id %s", ErrWrongOrigin, e.Origin, serverID)
	}
	origin := OriginLine(serverID, e.Chain)

	text, cosigners, err := openCosigned(p.note, origin, opts.ServerKey, opts.Witnesses)
	if err != nil {
		return nil, err
	}
	c, err := ParseCheckpoint(text)
	if err != nil {
		return nil, err
	}
	if c.Origin != origin {
		return nil, fmt.Errorf("%w: checkpoint origin %q, want %q", ErrWrongOrigin, c.Origin, origin)
	}
	if p.index >= c.Size {
		return nil, fmt.Errorf("%w: index %d not below tree size %d", ErrBadReceipt, p.index, c.Size)
	}
	leaf := LeafHash(p.entry)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.index, c.Size, leaf[:], p.hashes, c.Root[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotIncluded, err)
	}
	if len(cosigners) < opts.Quorum {
		return nil, quorumErr(cosigners, opts.Quorum)
	}
	return &VerifiedReceipt{Entry: e, Record: rec, EntryBytes: p.entry, Leaf: leaf, Checkpoint: c, Cosigners: cosigners}, nil
}

// CosignedCheckpoint is a checkpoint note opened with the witnesses that
// cosigned it.
type CosignedCheckpoint struct {
	Checkpoint *Checkpoint
	Cosigners  []WitnessKey // listed witnesses whose cosignature verified, each once
}

// OpenCosignedCheckpoint opens the checkpoint note msg of origin under the
// log's key logKey and checks its cosignature lines against witnesses, as a
// receipt's checkpoint is checked (§4.5): the log's signature must verify,
// every line by a listed witness must verify (else ErrWitnessFailed), lines
// by others are ignored, and at least quorum distinct listed witnesses must
// have cosigned (else ErrQuorum, whose message names those that did).
func OpenCosignedCheckpoint(msg []byte, origin string, logKey ed25519.PublicKey, witnesses []WitnessKey, quorum int) (*CosignedCheckpoint, error) {
	if len(logKey) != ed25519.PublicKeySize {
		return nil, errors.New("open checkpoint: log key must be 32 bytes")
	}
	text, cosigners, err := openCosigned(msg, origin, logKey, witnesses)
	if err != nil {
		return nil, err
	}
	c, err := ParseCheckpoint(text)
	if err != nil {
		return nil, err
	}
	if c.Origin != origin {
		return nil, fmt.Errorf("%w: checkpoint origin %q, want %q", ErrWrongOrigin, c.Origin, origin)
	}
	if len(cosigners) < quorum {
		return nil, quorumErr(cosigners, quorum)
	}
	return &CosignedCheckpoint{Checkpoint: c, Cosigners: cosigners}, nil
}

// quorumErr is ErrQuorum saying which listed witnesses did cosign.
func quorumErr(cosigners []WitnessKey, quorum int) error {
	names := make([]string, len(cosigners))
	for i, w := range cosigners {
		names[i] = w.KeyName()
	}
	who := "no listed witness cosigned"
	if len(names) > 0 {
		who = "verified: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("%w: %d of %d (%s)", ErrQuorum, len(cosigners), quorum, who)
}

// openCosigned opens a note signed by logKey under origin and returns its
// text and the listed witnesses whose cosignature verified (distinct keys;
// the log's own key never counts). A line by a listed witness that does not
// verify is ErrWitnessFailed.
func openCosigned(msg []byte, origin string, logKey ed25519.PublicKey, witnesses []WitnessKey) (string, []WitnessKey, error) {
	logV := NewNoteVerifier(origin, logKey)
	verifiers := []note.Verifier{logV}
	witnessOf := map[string]int{} // name+keyhash → index in witnesses
	for i, w := range witnesses {
		if len(w.Key) != ed25519.PublicKeySize {
			return "", nil, fmt.Errorf("verify cosignatures: witness %d: key must be 32 bytes", i)
		}
		v := w.verifier()
		k := v.Name() + "/" + strconv.FormatUint(uint64(v.KeyHash()), 16)
		if _, dup := witnessOf[k]; dup {
			continue
		}
		witnessOf[k] = i
		verifiers = append(verifiers, v)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		var invalid *note.InvalidSignatureError
		if errors.As(err, &invalid) && invalid.Name != origin {
			return "", nil, fmt.Errorf("%w: %v", ErrWitnessFailed, err)
		}
		return "", nil, noteErr(err)
	}
	if err := verifyEveryListedLine(msg, n.Text, logV, verifiers); err != nil {
		return "", nil, err
	}
	logSigned := false
	var cosigners []WitnessKey
	seenKey := map[string]bool{string(logKey): true} // the log's own key never counts
	for _, s := range n.Sigs {
		if s.Name == logV.Name() && s.Hash == logV.KeyHash() {
			logSigned = true
			continue
		}
		i, ok := witnessOf[s.Name+"/"+strconv.FormatUint(uint64(s.Hash), 16)]
		if !ok || seenKey[string(witnesses[i].Key)] {
			continue
		}
		seenKey[string(witnesses[i].Key)] = true
		cosigners = append(cosigners, witnesses[i])
	}
	if !logSigned {
		return "", nil, fmt.Errorf("%w for %s", ErrNoLogSig, origin)
	}
	return n.Text, cosigners, nil
}

// verifyEveryListedLine checks every signature line of the note msg whose name
// and key hash belong to one of verifiers. note.Open verifies only the first
// line of each (name, key hash) and skips later ones unchecked, while §4.5
// says that a failing line from a listed key invalidates the receipt. (A
// witness that cosigns twice, with two timestamps, has two valid lines.)
func verifyEveryListedLine(msg []byte, text string, logV note.Verifier, verifiers []note.Verifier) error {
	if len(msg) <= len(text) {
		return nil
	}
	sigs := string(msg[len(text)+1:]) // after the blank line that ends the text
	for line := range strings.Lines(sigs) {
		name, b64, ok := strings.Cut(strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "— "), " ")
		if !ok {
			continue // note.Open has refused malformed lines already
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) < 5 {
			continue
		}
		hash := binary.BigEndian.Uint32(raw)
		for _, v := range verifiers {
			if v.Name() != name || v.KeyHash() != hash || v.Verify([]byte(text), raw[4:]) {
				continue
			}
			if v == logV {
				return fmt.Errorf("%w: a signature line by the server key does not verify", ErrBadReceipt)
			}
			return fmt.Errorf("%w: a cosignature line by listed witness %s does not verify", ErrWitnessFailed, name)
		}
	}
	return nil
}

// VerifyInclusion checks that leaf is at index in the tree of checkpoint c.
func VerifyInclusion(c *Checkpoint, index uint64, leaf [32]byte, hashes [][]byte) error {
	if index >= c.Size {
		return fmt.Errorf("%w: index %d not below tree size %d", ErrNotIncluded, index, c.Size)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, c.Size, leaf[:], hashes, c.Root[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrNotIncluded, err)
	}
	return nil
}

// VerifyConsistency checks that newer extends older (same origin). Unlike
// proof.VerifyConsistency it checks the empty root when older has size 0.
func VerifyConsistency(older, newer *Checkpoint, hashes [][]byte) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("%w: %q and %q", ErrWrongOrigin, older.Origin, newer.Origin)
	}
	switch {
	case older.Size > newer.Size:
		return fmt.Errorf("%w: size %d is after %d", ErrInconsistent, older.Size, newer.Size)
	case older.Size == 0:
		if older.Root != EmptyRoot {
			return fmt.Errorf("%w: size 0 with a root that is not the empty root", ErrInconsistent)
		}
		if len(hashes) != 0 {
			return fmt.Errorf("%w: proof from size 0 must be empty", ErrInconsistent)
		}
		return nil
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, hashes, older.Root[:], newer.Root[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	return nil
}
