package verify

import (
	"crypto/ed25519"
	"crypto/sha256"
)

// recordSigPrefix domain-separates record signatures from every other
// Ed25519 use of a key.
const recordSigPrefix = "vserv-record-v1\n"

// RecordSigMessage is what `sig` signs: "vserv-record-v1\n" ‖ origin ‖ "\n" ‖
// record hash, origin being the chain's origin line vserv/<server-id>/<chain>.
// Binding the origin stops a signed record from being replayed onto another
// chain or server.
func RecordSigMessage(origin string, recordHash [32]byte) []byte {
	msg := make([]byte, 0, len(recordSigPrefix)+len(origin)+1+32)
	msg = append(msg, recordSigPrefix...)
	msg = append(msg, origin...)
	msg = append(msg, '\n')
	return append(msg, recordHash[:]...)
}

// CheckSig verifies r's signature for origin; ErrUnsigned if it has none.
func (r *Record) CheckSig(origin string) error {
	if r.Sig == nil {
		return recordErr("sig", ErrUnsigned, "record is not signed")
	}
	if !ed25519.Verify(r.Author, RecordSigMessage(origin, r.Hash), r.Sig) {
		return recordErr("sig", ErrBadSignature, "does not verify for author and origin %s", origin)
	}
	return nil
}

// CheckRecordSig checks rec (CheckRecord) and its signature for origin.
func CheckRecordSig(origin string, rec []byte) error {
	r, err := CheckRecord(rec)
	if err != nil {
		return err
	}
	return r.CheckSig(origin)
}

// SignRecord returns rec with `author` set to priv's public key and `sig` over
// origin and the resulting record hash. rec must be a valid record apart from
// the signature fields; any `pow` is kept (it does not cover `sig`).
func SignRecord(origin string, rec []byte, priv ed25519.PrivateKey) ([]byte, error) {
	var m map[string]any
	if err := decMode.Unmarshal(rec, &m); err != nil {
		return nil, decodeErr(err)
	}
	delete(m, "sig")
	m["author"] = []byte(priv.Public().(ed25519.PublicKey))
	pow, hasPoW := m["pow"]
	delete(m, "pow")
	unsigned, err := encMode.Marshal(m)
	if err != nil {
		return nil, recordErr("", ErrMalformed, "encode: %v", err)
	}
	m["sig"] = ed25519.Sign(priv, RecordSigMessage(origin, sha256.Sum256(unsigned)))
	if hasPoW {
		m["pow"] = pow
	}
	out, err := encMode.Marshal(m)
	if err != nil {
		return nil, recordErr("", ErrMalformed, "encode: %v", err)
	}
	if _, err := CheckRecord(out); err != nil {
		return nil, err
	}
	return out, nil
}
