// Package secure holds vserv's transport cryptography: the server's Ed25519
// identity, its pool of signed session keys, the Noise handshake that opens an
// encrypted session, the per-frame transport cipher, and the client's
// known_hosts file (DESIGN.md §2.3, §2.4, §2.6). Framing and networking are
// package wire's job; it drives a *Session through its Seal/Open methods.
//
// # Construction
//
// A session is Noise_NKpsk0_25519_AESGCM_SHA256 (github.com/flynn/noise),
// with three additions that are ours and deliberately small:
//
//   - The responder static key (NK's "K") is not the identity key but a pool
//     key: an X25519 key paired with an ML-KEM-768 key, both signed by the
//     Ed25519 identity into a keyinfo (§2.3). The client authenticates the
//     server by checking that signature against the identity it pins in
//     known_hosts; pool keys live at most a day and their private parts are
//     erased afterwards, so a stolen pool key exposes at most a day of
//     sessions, and a stolen identity key exposes none already recorded.
//
//   - The PSK is the 32-byte shared key of an ML-KEM-768 encapsulation to the
//     pool key's encapsulation key. Mixing it at position 0 makes the session
//     keys depend on both X25519 and ML-KEM: an attacker who records traffic
//     today and later breaks X25519 with a quantum computer still has to break
//     ML-KEM (a hybrid post-quantum construction, in the manner of TLS's
//     X25519MLKEM768). ML-KEM has implicit rejection: a wrong ciphertext does
//     not fail decapsulation but yields an unrelated key, so it surfaces as a
//     Noise authentication failure of msg1.
//
//   - The prologue commits to everything both sides exchanged in clear before
//     the handshake (the sign-on, akey and its keyinfo, and any other clear
//     messages): an attacker who altered any of it, for instance to downgrade
//     or to substitute a keyinfo, makes the handshake fail instead of going
//     unnoticed. The connection code feeds those messages to a Transcript,
//     whose Prologue is "vserv-v1" ‖ SHA-256(T); a handshake inside a
//     session starts T with the current handshake hash, chaining sessions.
//
// After the handshake, the Split's first CipherState carries client → server
// traffic and the second server → client. Each frame is one AES-256-GCM
// encryption with a counter nonce, so frames cannot be replayed, reordered or
// altered without Open failing, and a nonce is never used twice: exhaustion is
// an error, not a wrap-around.
//
// flynn/noise's DH25519 recomputes the public key on every DH; dh.go provides
// a noise.DHFunc over crypto/ecdh that keeps the parsed private keys of a
// handshake, which saves about a third of a handshake's CPU (DESIGN.md §10).
package secure
