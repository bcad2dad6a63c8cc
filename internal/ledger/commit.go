package ledger

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Limits of one append call and of one group commit.
const (
	MaxBatch        = 10000 // records in one Append
	maxGroupRecords = 20000 // records gathered into one transaction
)

// Result is what Append answers for each record, in order.
type Result struct {
	ID      string
	Seq     uint64
	Leaf    [32]byte
	Receipt []byte // when AppendOptions.Receipt
	EID     string // the electronic ID a vote.register allocated (§6.2)
}

// AppendOptions modify Append.
type AppendOptions struct {
	Receipt bool // also return each record's receipt (§4.5)
	// Manage says the submitting account holds the manage right on the
	// chain (§3.2), which the rules of a schema chain ask for authority
	// events; the caller has checked the write right.
	Manage bool
}

// job is a unit of work for the committer goroutine.
type job interface{ isJob() }

// appendJob is one Append call: records already checked on their own
// (format, PoW, signature) by the caller's goroutine, so the one committer
// spends its time only on what needs the database.
type appendJob struct {
	chain  string
	checks []precheck
	manage bool // the account holds the manage right (AppendOptions.Manage)
	resp   chan appendOutcome
}

type precheck struct {
	rec *verify.Record
	err error // the record's own fault; the batch fails here unless it failed earlier
}

type appendOutcome struct {
	results []Result
	err     error
	// The checkpoint this commit signed for the chain, if it touched it.
	size uint64
	note []byte
}

// adminJob runs fn alone on the committer goroutine (chain creation and
// other rare writes), so it never interleaves with a group commit.
type adminJob struct {
	fn   func() error
	resp chan error
}

func (*appendJob) isJob() {}
func (*adminJob) isJob()  {}

// Append validates records and appends them to chain, all or nothing. It
// returns after the entries and the chain's new signed checkpoint are
// durable. A bad record fails the batch with a *wire.Error whose Extra is
// []any{index of the first bad record}; a record whose id is already in the
// chain with the same record hash gets the existing seq.
func (l *Ledger) Append(ctx context.Context, chain string, records [][]byte, opts AppendOptions) ([]Result, error) {
	cs, err := l.ownState(chain)
	if err != nil {
		return nil, err
	}
	if cs.meta.ServerWritten {
		return nil, wire.Errorf(wire.CodePerm, "chain %q is written only by the server", cs.meta.Name)
	}
	return l.append(ctx, cs, records, opts)
}

// AppendServer appends one record written by the server itself to a
// server-written chain (audit, keys).
func (l *Ledger) AppendServer(ctx context.Context, chain string, record []byte) (Result, error) {
	cs, err := l.ownState(chain)
	if err != nil {
		return Result{}, err
	}
	if !cs.meta.ServerWritten {
		return Result{}, fmt.Errorf("append server record: chain %q is not server-written", cs.meta.Name)
	}
	rotation, err := l.isRotation(cs.meta.Name, record)
	if err != nil {
		return Result{}, err
	}
	res, err := l.append(ctx, cs, [][]byte{record}, AppendOptions{})
	if err != nil {
		return Result{}, err
	}
	if rotation {
		l.retired.Store(true)
	}
	return res[0], nil
}

// isRotation reports whether record is a key.rotate record for the keys
// chain, and refuses one that this ledger's signer did not author: the
// checkpoint that first covers a rotation must be signed by the key it
// retires (§2.4), and that checkpoint is the one this append signs.
func (l *Ledger) isRotation(chain string, record []byte) (bool, error) {
	if chain != verify.KeysChain {
		return false, nil
	}
	rec, err := verify.CheckRecord(record)
	if err != nil || rec.Type != verify.RotateType {
		return false, nil // Append reports a bad record
	}
	old, _, err := verify.ParseRotation(l.cfg.ServerID, record)
	if err != nil {
		return false, wire.Errorf(wire.CodeInvalid, "%v", err)
	}
	if !old.Equal(l.pub) {
		return false, wire.Errorf(wire.CodeInvalid, "key.rotate record is not authored by the key that signs this ledger's checkpoints")
	}
	return true, nil
}

func (l *Ledger) append(ctx context.Context, cs *chainState, records [][]byte, opts AppendOptions) ([]Result, error) {
	switch {
	case len(records) == 0:
		return nil, wire.Errorf(wire.CodeInvalid, "no records")
	case len(records) > MaxBatch:
		return nil, wire.Errorf(wire.CodeLimit, "%d records in one batch, the limit is %d", len(records), MaxBatch)
	}
	origin := l.origin(cs.meta.Name)
	checks := make([]precheck, 0, len(records))
	for _, raw := range records {
		rec, err := checkRecord(raw, cs.meta.PoWBits, origin, cs.app != nil)
		checks = append(checks, precheck{rec: rec, err: err})
		if err != nil {
			break // later records cannot matter: the batch fails here at the latest
		}
	}
	j := &appendJob{chain: cs.meta.Name, checks: checks, manage: opts.Manage, resp: make(chan appendOutcome, 1)}
	if err := l.submit(ctx, j); err != nil {
		return nil, err
	}
	var out appendOutcome
	select {
	case out = <-j.resp:
	case <-ctx.Done():
		// The batch may still commit; a retry with the same ids is idempotent.
		return nil, ctx.Err()
	}
	if out.err != nil {
		return nil, out.err
	}
	if opts.Receipt {
		if err := l.addReceipts(ctx, cs.meta.Name, out); err != nil {
			return nil, err
		}
	}
	return out.results, nil
}

// checkRecord applies every rule about a record that needs no database. The
// payload is decoded only for the rules of a schema chain.
func checkRecord(raw []byte, powBits int, origin string, payload bool) (*verify.Record, error) {
	check := verify.CheckRecordNoPayload
	if payload {
		check = verify.CheckRecord
	}
	rec, err := check(raw)
	if err != nil {
		if errors.Is(err, verify.ErrTooLarge) {
			return nil, wire.Errorf(wire.CodeLimit, "%v", err)
		}
		return nil, wire.Errorf(wire.CodeInvalid, "%v", err)
	}
	if !verify.PoWValid(rec.Hash, rec.PoW, powBits) {
		return nil, wire.Errorf(wire.CodeInvalid, "record pow: does not meet the chain's %d bits", powBits)
	}
	if rec.Sig != nil {
		if err := rec.CheckSig(origin); err != nil {
			return nil, wire.Errorf(wire.CodeInvalid, "%v", err)
		}
	}
	return rec, nil
}

func (l *Ledger) submit(ctx context.Context, j job) error {
	l.closeM.RLock()
	defer l.closeM.RUnlock()
	if l.closed {
		return wire.Errorf(wire.CodeInternal, "ledger is closed")
	}
	select {
	case l.jobs <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Ledger) runAdmin(ctx context.Context, fn func() error) error {
	j := &adminJob{fn: fn, resp: make(chan error, 1)}
	if err := l.submit(ctx, j); err != nil {
		return err
	}
	return <-j.resp
}

// commitLoop is the one writer. It takes a job, gathers every append already
// waiting (up to maxGroupRecords) into the same transaction, and runs admin
// jobs on their own.
func (l *Ledger) commitLoop() {
	defer close(l.done)
	l.headsQ = make(chan headsWrite, 64)
	written := make(chan struct{})
	go l.headsWriter(written)
	defer func() { close(l.headsQ); <-written }()
	var held job
	for {
		j := held
		held = nil
		if j == nil {
			var ok bool
			if j, ok = <-l.jobs; !ok {
				return
			}
		}
		if a, ok := j.(*adminJob); ok {
			a.resp <- a.fn()
			continue
		}
		group := []*appendJob{j.(*appendJob)}
		n := len(group[0].checks)
	gather:
		for n < maxGroupRecords {
			select {
			case next, ok := <-l.jobs:
				if !ok {
					break gather
				}
				aj, isAppend := next.(*appendJob)
				if !isAppend {
					held = next
					break gather
				}
				group = append(group, aj)
				n += len(aj.checks)
			default:
				break gather
			}
		}
		l.commitGroup(group)
	}
}

// chainWork is a chain as one group commit extends it: the state it
// started from (locked and, if needed, reloaded inside the transaction),
// updated batch by batch, and what the group appends to it, written with one
// Append and one PutNodes at the end of the group.
type chainWork struct {
	*chainState
	rows  []store.Row
	nodes []store.Node
	// ids are the record ids rows holds, for the duplicate check of the
	// group's later batches (the store has not seen them yet).
	ids map[[16]byte]pendingRef
	// points are the batch points (batch.go) the group's appends passed,
	// with the root there, taken from the compact range while appending.
	points []batchPoint
}

type pendingRef struct {
	store.IDRef
	leaf [32]byte
}

// lookupID finds a record id in the chain: among the group's pending rows,
// then in the store. It returns the record's leaf hash too.
func (w *chainWork) lookupID(tx store.ReadTx, id [16]byte) (ref store.IDRef, leaf [32]byte, found bool, err error) {
	if p, ok := w.ids[id]; ok {
		return p.IDRef, p.leaf, true, nil
	}
	ref, found, err = tx.LookupID(w.meta.Key(), id)
	if err != nil || !found {
		return ref, leaf, found, err
	}
	h, err := node(tx, w.meta.Key(), compact.NewNodeID(0, ref.Seq))
	copy(leaf[:], h)
	return ref, leaf, true, err
}

// flush writes the group's rows and nodes of the chain.
func (w *chainWork) flush(tx store.WriteTx) error {
	if len(w.rows) == 0 {
		return nil
	}
	if err := tx.Append(w.meta.Key(), w.rows); err != nil {
		return err
	}
	return tx.PutNodes(w.meta.Key(), w.nodes)
}

// commitGroup writes a group of appends in one transaction. Each append is
// validated against the state left by the earlier ones in the group and
// writes nothing if it fails, so a bad batch never fails its neighbours.
func (l *Ledger) commitGroup(group []*appendJob) {
	outcomes := make([]appendOutcome, len(group))
	var work map[string]*chainWork
	// The group is many callers' work: none of their contexts may cancel it.
	err := l.store.Update(context.Background(), func(tx store.WriteTx) error {
		work = map[string]*chainWork{}
		touched := map[string]bool{}
		for i, j := range group {
			outcomes[i] = appendOutcome{}
			res, err := l.apply(tx, work, touched, j)
			var we *wire.Error
			if errors.As(err, &we) {
				outcomes[i].err = err
				continue
			}
			if err != nil {
				return err
			}
			outcomes[i].results = res
		}
		for name := range touched {
			w := work[name]
			if err := w.flush(tx); err != nil {
				return fmt.Errorf("chain %q: append: %w", name, err)
			}
			if err := l.storeCheckpoint(tx, w.chainState); err != nil {
				return fmt.Errorf("chain %q: checkpoint: %w", name, err)
			}
			// After the new head, so that putHead compared it with the
			// previous head, not with a batch point below it.
			if err := l.storeBatchPoints(tx, w); err != nil {
				return fmt.Errorf("chain %q: checkpoint: %w", name, err)
			}
		}
		for name := range work {
			if !touched[name] {
				delete(work, name)
			}
		}
		return nil
	})
	committed := map[string]*chainState{}
	if err != nil {
		l.log.Error("ledger commit failed", "err", err, "batches", len(group))
		for i := range outcomes {
			if outcomes[i].err == nil {
				outcomes[i] = appendOutcome{err: wire.Errorf(wire.CodeInternal, "ledger write failed")}
			}
		}
	} else {
		l.mu.Lock()
		for name, w := range work {
			l.chains[name] = w.chainState
			committed[name] = w.chainState
		}
		l.mu.Unlock()
		for name, cs := range committed {
			l.signed.notify(name, cs.headSize)
			l.notifyWatchers(cs.meta.Key(), cs.headSize)
		}
	}
	reply := func() {
		for i, j := range group {
			if cs, ok := committed[j.chain]; ok {
				outcomes[i].size, outcomes[i].note = cs.headSize, cs.head
			}
			j.resp <- outcomes[i]
		}
	}
	// Appenders are answered once the commit is durable, without waiting
	// for the heads file: waiting for its fsync too halved the records/s of
	// 32 single-record writers (2,450 vs 5,770 /s measured with vbench rput).
	reply()
	if err == nil {
		l.recordHeads(committed, nil)
	}
}

// workOn returns the group's work on a chain, starting it on first use: the
// chain's head is locked in the transaction, and when the store holds
// another size than the committed state in memory (another front end on a
// shared store appended), the state is reloaded from the transaction, so
// that the checkpoint this commit signs extends the head as stored.
func (l *Ledger) workOn(tx store.WriteTx, work map[string]*chainWork, chain string) (*chainWork, error) {
	if w := work[chain]; w != nil {
		return w, nil
	}
	l.mu.RLock()
	cs := l.chains[chain]
	l.mu.RUnlock()
	if cs == nil {
		return nil, wire.Errorf(wire.CodeNotFound, "no chain %q", chain)
	}
	size, err := tx.LockHead(cs.meta.Key())
	if err != nil {
		return nil, fmt.Errorf("chain %q: lock head: %w", chain, err)
	}
	if size != cs.size && cs.readOnly == "" {
		l.log.Info("chain grew in the store behind this ledger; reloading its head", "chain", chain, "size", cs.size, "stored", size)
		if cs, err = l.loadChainAt(tx, cs.meta, size); err != nil {
			return nil, fmt.Errorf("chain %q: reload head: %w", chain, err)
		}
	} else {
		cs = cs.clone()
	}
	w := &chainWork{chainState: cs}
	work[chain] = w
	return w, nil
}

// apply validates one batch in order, as if its records came one by one, and
// adds it to the group's work only if every record passes.
func (l *Ledger) apply(tx store.WriteTx, work map[string]*chainWork, touched map[string]bool, j *appendJob) ([]Result, error) {
	w, err := l.workOn(tx, work, j.chain)
	if err != nil {
		return nil, err
	}
	if w.readOnly != "" {
		return nil, wire.Errorf(wire.CodeConflict, "chain %q is read-only: %s", j.chain, w.readOnly)
	}
	if l.retired.Load() {
		return nil, wire.Errorf(wire.CodeConflict, "chain %q is read-only: %s", j.chain, l.writeRefusal())
	}
	if why := l.held(j.chain); why != "" {
		return nil, wire.Errorf(wire.CodeConflict, "chain %q is held, writes are refused: %s", j.chain, why)
	}
	type pending struct {
		id    [16]byte
		rec   *verify.Record
		entry []byte
		leaf  [32]byte
	}
	var (
		key     = w.meta.Key()
		results = make([]Result, len(j.checks))
		news    = make([]pending, 0, len(j.checks))
		inBatch = make(map[string]int, len(j.checks)) // id → index of its first record in this batch
		seq     = w.size
		prev    = w.lastLeaf
		now     = max(uint64(l.cfg.Now().UnixMilli()), w.lastTime)
		arena   []byte     // the batch's entries, one allocation: the store keeps them until the commit
		state   *overlayKV // the rules' state with this batch's writes, schema chains only
	)
	for i, c := range j.checks {
		if c.err != nil {
			return nil, withIndex(c.err, i)
		}
		rec := c.rec
		if k, ok := inBatch[rec.ID]; ok {
			if j.checks[k].rec.Hash != rec.Hash {
				return nil, withIndex(wire.Errorf(wire.CodeConflict, "id %s repeats record %d of the batch with other content", rec.ID, k), i)
			}
			results[i] = results[k]
			continue
		}
		inBatch[rec.ID] = i
		id := uuidBytes(rec.ID)
		ref, leaf, found, err := w.lookupID(tx, id)
		if err != nil {
			return nil, err
		}
		if found {
			if ref.Hash != rec.Hash {
				return nil, withIndex(wire.Errorf(wire.CodeConflict, "id %s is already in the chain with other content", rec.ID), i)
			}
			// A retry: already judged by the rules, not applied again.
			results[i] = Result{ID: rec.ID, Seq: ref.Seq, Leaf: leaf}
			if w.meta.Schema == "vote" && rec.Type == "vote.register" {
				results[i].EID = apps.EID(results[i].Leaf)
			}
			continue
		}
		e := verify.Entry{V: verify.EntryVersion, Seq: seq, Prev: prev, Time: now,
			Chain: j.chain, Origin: l.cfg.ServerID, Record: rec.Raw}
		if arena == nil {
			n, fixed := 0, verify.EntrySize(e)-len(rec.Raw)+8 // seq and time may grow a little
			for _, c := range j.checks[i:] {
				if c.rec != nil {
					n += fixed + len(c.rec.Raw)
				}
			}
			arena = make([]byte, 0, n)
		}
		start := len(arena)
		arena = verify.AppendEntry(arena, e)
		entry := arena[start:len(arena):len(arena)]
		leaf = verify.LeafHash(entry)
		results[i] = Result{ID: rec.ID, Seq: seq, Leaf: leaf}
		if w.app != nil {
			if state == nil {
				base, at, ok, err := tx.AppState(key)
				if err != nil {
					return nil, err
				}
				if ok && at != w.size {
					return nil, wire.Errorf(wire.CodeConflict, "chain %q: the rules' state reflects %d entries, the chain has %d; restart the server to rebuild it", j.chain, at, w.size)
				}
				state = &overlayKV{base: base}
			}
			r, err := w.app.Apply(state, w.appChain, apps.EventOf(&e, rec, leaf))
			if err == nil && r.Needs == apps.Manage && !j.manage {
				return nil, ruleRefusal(nil, i, rec.Type, j.chain, r.Needs)
			}
			if err != nil {
				if errors.Is(err, apps.ErrRefused) {
					return nil, ruleRefusal(err, i, rec.Type, j.chain, 0)
				}
				return nil, fmt.Errorf("chain %q: rules: %w", j.chain, err)
			}
			results[i].EID = r.EID
		}
		news = append(news, pending{id: id, rec: rec, entry: entry, leaf: leaf})
		prev = leaf
		seq++
	}
	if len(news) == 0 {
		return results, nil
	}
	visit := func(id compact.NodeID, hash []byte) {
		w.nodes = append(w.nodes, store.Node{ID: id, Hash: hash})
	}
	if w.ids == nil {
		w.ids = make(map[[16]byte]pendingRef, len(news))
	}
	for k := range news {
		p := &news[k]
		s := w.size + uint64(k)
		w.rows = append(w.rows, store.Row{Seq: s, Entry: p.entry, ID: p.id, RecordHash: p.rec.Hash, Ms: now})
		w.ids[p.id] = pendingRef{IDRef: store.IDRef{Seq: s, Hash: p.rec.Hash}, leaf: p.leaf}
		if err := w.rng.Append(p.leaf[:], visit); err != nil {
			return nil, err
		}
		if end := w.rng.End(); isBatchPoint(end) {
			root, err := rootOf(w.rng)
			if err != nil {
				return nil, err
			}
			w.points = append(w.points, batchPoint{size: end, root: root})
		}
	}
	if state != nil {
		if err := state.flush(); err != nil {
			return nil, err
		}
		if err := tx.PutAppStateSize(key, seq); err != nil {
			return nil, err
		}
	}
	w.size, w.lastLeaf, w.lastTime = seq, prev, now
	touched[j.chain] = true
	return results, nil
}

// storeCheckpoint signs the chain's new checkpoint and stores it, dropping
// the previous newest unless it is one to keep.
func (l *Ledger) storeCheckpoint(tx store.WriteTx, w *chainState) error {
	root, err := rootOf(w.rng)
	if err != nil {
		return err
	}
	origin := l.origin(w.meta.Name)
	note, err := verify.SignCheckpoint(verify.Checkpoint{Origin: origin, Size: w.size, Root: root},
		verify.NewNoteSigner(origin, l.cfg.Signer))
	if err != nil {
		return err
	}
	if err := putHead(tx, w.meta.Key(), w.size, note); err != nil {
		return err
	}
	w.head, w.headSize, w.headRoot = note, w.size, root
	return nil
}

// putHead stores a chain's new newest checkpoint and drops the previous
// newest unless it is one to keep (§4.4): the first to reach or pass each
// multiple of 1,000, every batch point (batch.go), and every one marked kept.
func putHead(tx store.WriteTx, k store.ChainKey, size uint64, note []byte) error {
	prev, hadPrev, err := tx.LatestCheckpoint(k)
	if err != nil {
		return err
	}
	var keep store.Keep
	if !hadPrev || size/1000 > prev.Size/1000 {
		keep = store.KeepMilestone
	}
	if isBatchPoint(size) {
		keep |= store.KeepBatchPoint
	}
	if err := tx.PutCheckpoint(k, store.StoredCheckpoint{Size: size, Note: note, Keep: keep}); err != nil {
		return err
	}
	if hadPrev && prev.Keep == 0 && prev.Size != size {
		return tx.DeleteCheckpoint(k, prev.Size)
	}
	return nil
}

func withIndex(err error, i int) error {
	var we *wire.Error
	if errors.As(err, &we) {
		return &wire.Error{Code: we.Code, Text: fmt.Sprintf("record %d: %s", i, we.Text), Extra: []any{i}}
	}
	return err
}

// uuidBytes is the 16-byte form of a canonical UUID (already checked).
func uuidBytes(id string) [16]byte {
	var b [16]byte
	var hexDigits [32]byte
	n := 0
	for i := 0; i < len(id); i++ {
		if id[i] != '-' {
			hexDigits[n] = id[i]
			n++
		}
	}
	hex.Decode(b[:], hexDigits[:])
	return b
}

// uuidString is the canonical text of a 16-byte UUID.
func uuidString(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
