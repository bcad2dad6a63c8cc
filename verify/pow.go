package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// MaxPoWBits is the largest pow_bits a chain may demand.
const MaxPoWBits = 32

// powPrefix domain-separates the proof-of-work digest from every other hash.
const powPrefix = "vserv-pow-v1"

// PoWValid reports whether pow meets bits for a record with the given hash:
// the first bits bits of SHA-256("vserv-pow-v1" ‖ recordHash ‖ pow) are zero,
// most significant bit of the first byte first. With bits = 0 any pow
// (including none) is valid; otherwise pow must be 1–32 bytes.
func PoWValid(recordHash [32]byte, pow []byte, bits int) bool {
	if bits < 0 || bits > MaxPoWBits {
		return false
	}
	if bits == 0 {
		return true
	}
	if len(pow) < 1 || len(pow) > 32 {
		return false
	}
	return leadingZeroBits(powDigest(recordHash, pow)) >= bits
}

func powDigest(recordHash [32]byte, pow []byte) [32]byte {
	var buf [len(powPrefix) + 32 + 32]byte
	n := copy(buf[:], powPrefix)
	n += copy(buf[n:], recordHash[:])
	n += copy(buf[n:], pow)
	return sha256.Sum256(buf[:n])
}

func leadingZeroBits(d [32]byte) int {
	return bits.LeadingZeros32(binary.BigEndian.Uint32(d[:4]))
}

// SolvePoW finds an 8-byte nonce meeting bits for recordHash (about 2^bits
// hashes). It is for clients and benchmarks; bits must be in [0, 32].
func SolvePoW(recordHash [32]byte, bits int) []byte {
	nonce := make([]byte, 8)
	for n := uint64(0); ; n++ {
		binary.BigEndian.PutUint64(nonce, n)
		if PoWValid(recordHash, nonce, bits) {
			return nonce
		}
	}
}
