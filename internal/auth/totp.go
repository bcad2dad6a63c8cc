package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/vserv/vserv/internal/store"
)

// TOTP parameters: RFC 6238 with the defaults every authenticator app
// supports.
const (
	totpIssuer     = "vserv"
	totpPeriod     = 30 // seconds
	totpDigits     = otp.DigitsSix
	totpSecretLen  = 20 // 160 bits, the HMAC-SHA-1 block-sized secret RFC 4226 recommends
	totpSkewSteps  = 1  // accept the previous and next step for clock skew
	recoveryCount  = 10
	recoveryLen    = 16 // base32 characters = 80 bits
	qrImageSize    = 256
	maxFailures2FA = 10
	lockout2FA     = 15 * time.Minute
)

// codeEncoding is lowercase unpadded base32, the alphabet of recovery and
// enrollment codes: no 0/1/8/9, so no O/I/B/g confusion when typed.
var codeEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Enrollment is what the qr command returns: scan URI (or PNG) into an
// authenticator and keep the recovery codes. It is pending until the first
// correct code.
type Enrollment struct {
	URI      string   // otpauth://totp/vserv:<name>@<server-id>?...
	PNG      []byte   // URI as a 256×256 QR code
	Recovery []string // 10 single-use codes, 16 lowercase base32 characters
}

// BeginEnroll starts a TOTP enrollment with a fresh secret and recovery
// codes, replacing any pending one. An active factor stays in force until
// the new one is confirmed by CheckSecondFactor; whether the caller may
// re-enroll (state, enrollment code) is the server's decision. Peer accounts
// have no TOTP (ERR perm).
func (s *Store) BeginEnroll(ctx context.Context, name string) (*Enrollment, error) {
	acct, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if acct.Peer {
		return nil, errPeerNoTOTP(acct.Name)
	}
	secret, err := randomBytes(totpSecretLen)
	if err != nil {
		return nil, err
	}
	label := acct.Name
	if s.opts.ServerID != "" {
		label += "@" + s.opts.ServerID
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: totpIssuer, AccountName: label, Period: totpPeriod, Secret: secret,
		Digits: totpDigits, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fmt.Errorf("totp key: %w", err)
	}
	img, err := key.Image(qrImageSize, qrImageSize)
	if err != nil {
		return nil, fmt.Errorf("totp qr code: %w", err)
	}
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		return nil, fmt.Errorf("totp qr code: %w", err)
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	home := HomeName(name)
	sealed, err := s.sealer.seal(secret, totpAD(home))
	if err != nil {
		return nil, err
	}
	err = s.st.Update(ctx, func(tx store.WriteTx) error {
		rec, err := loadAccount(tx, name) // it may have gone since Get
		if err != nil {
			return err
		}
		if rec.Peer {
			return errPeerNoTOTP(rec.Name)
		}
		tf, err := loadTwoFA(tx, home)
		if err != nil {
			return err
		}
		tf.PendingSecret, tf.PendingRecovery = sealed, hashes
		return saveTwoFA(tx, home, tf)
	})
	if err != nil {
		return nil, err
	}
	return &Enrollment{URI: key.URL(), PNG: pngBuf.Bytes(), Recovery: codes}, nil
}

// CancelEnroll discards a pending enrollment (its secret and codes), for
// when the session that began it ends unconfirmed. An active factor is kept.
func (s *Store) CancelEnroll(ctx context.Context, name string) error {
	return s.st.Update(ctx, func(tx store.WriteTx) error {
		if _, err := loadAccount(tx, name); err != nil {
			return err
		}
		home := HomeName(name)
		tf, err := loadTwoFA(tx, home)
		if err != nil {
			return err
		}
		tf.PendingSecret, tf.PendingRecovery = nil, nil
		return saveTwoFA(tx, home, tf)
	})
}

// Reset2FA removes an account's second factor — secret, recovery codes,
// pending enrollment, enrollment code and lock — and ends its sessions. It
// returns the account's new generation, which an admin resetting their own
// factor adopts to stay logged in. The server audits it and, in production
// mode, then calls IssueEnrollmentCode.
func (s *Store) Reset2FA(ctx context.Context, name string) (gen uint64, err error) {
	err = s.st.Update(ctx, func(tx store.WriteTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil {
			return err
		}
		if err := tx.DeleteTwoFA(HomeName(name)); err != nil {
			return err
		}
		if err := bumpGeneration(tx, rec); err != nil {
			return err
		}
		gen = rec.Gen
		return s.saveAccount(tx, rec)
	})
	if err != nil {
		return 0, err
	}
	return gen, nil
}

// FactorResult tells the server what a CheckSecondFactor call did beyond
// passing or failing, for its audit log.
type FactorResult struct {
	// Confirmed: the code confirmed a pending enrollment, which is now the
	// account's active factor (and its enrollment code is used up).
	Confirmed bool
	// RecoveryUsed: a recovery code was accepted (and is now spent);
	// RecoveryLeft is how many remain.
	RecoveryUsed bool
	RecoveryLeft int
	// LockedNow: this failure was the 10th in a row; every code is refused
	// until LockedUntil. Set only on the call that locks.
	LockedNow   bool
	LockedUntil time.Time
}

// CheckSecondFactor checks a TOTP code (6 digits) or a recovery code (16
// base32 characters) for an account. Every refusal is the fixed ERR auth —
// an empty code, an account without a factor, a locked one, a wrong code, a
// code whose time step is not after the last accepted one, a spent recovery
// code. A TOTP code is accepted for the current step ±1 and only if that
// step is greater than the last accepted step, which the same transaction
// then records, so each code (and every earlier one) works at most once
// even under concurrent calls. A code of the pending enrollment confirms it.
// Ten failures in a row (from any address) lock the account's second factor
// for 15 minutes; result.LockedNow reports the call that locked it.
func (s *Store) CheckSecondFactor(ctx context.Context, name, code string) (FactorResult, error) {
	var res FactorResult
	if ValidName(name) != nil {
		return res, authFailed()
	}
	home := HomeName(name)
	now := s.now()
	var passed bool
	err := s.st.Update(ctx, func(tx store.WriteTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil || !rec.Enabled {
			return nil // not passed; nothing to count against
		}
		tf, err := loadTwoFA(tx, home)
		if err != nil {
			return err
		}
		if len(tf.Secret) == 0 && len(tf.PendingSecret) == 0 {
			return nil
		}
		if now.UnixNano() < tf.LockedUntil {
			return nil // locked: refused and not counted, so the lock does not extend itself
		}
		passed, err = s.matchFactor(tf, home, code, now, &res)
		if err != nil {
			return err
		}
		if passed {
			tf.Failures, tf.LockedUntil = 0, 0
		} else if tf.Failures++; tf.Failures >= maxFailures2FA {
			tf.Failures = 0
			tf.LockedUntil = now.Add(lockout2FA).UnixNano()
			res.LockedNow, res.LockedUntil = true, time.Unix(0, tf.LockedUntil).UTC()
		}
		return saveTwoFA(tx, home, tf)
	})
	if err != nil {
		return FactorResult{}, err
	}
	if res.LockedNow {
		s.log.Warn("second factor locked after repeated failures", "account", name, "until", res.LockedUntil)
	}
	if !passed {
		return res, authFailed()
	}
	return res, nil
}

// matchFactor tries code against the account's factors, updating tf (last
// step, spent recovery code, promoted enrollment) when it matches.
func (s *Store) matchFactor(tf *twofaRecord, home, code string, now time.Time, res *FactorResult) (bool, error) {
	switch {
	case isDigits(code, totpDigits.Length()):
		return s.matchTOTP(tf, home, code, now, res)
	case len(code) == recoveryLen:
		sum := sha256.Sum256([]byte(strings.ToLower(code)))
		for i, h := range tf.Recovery {
			if subtle.ConstantTimeCompare(h, sum[:]) == 1 {
				tf.Recovery = append(tf.Recovery[:i:i], tf.Recovery[i+1:]...)
				res.RecoveryUsed, res.RecoveryLeft = true, len(tf.Recovery)
				return true, nil
			}
		}
	}
	return false, nil
}

func (s *Store) matchTOTP(tf *twofaRecord, home, code string, now time.Time, res *FactorResult) (bool, error) {
	if now.Unix() < 0 {
		return false, nil
	}
	current := uint64(now.Unix()) / totpPeriod
	for _, pending := range []bool{false, true} {
		sealed := tf.Secret
		if pending {
			sealed = tf.PendingSecret
		}
		if len(sealed) == 0 {
			continue
		}
		secret, err := s.sealer.open(sealed, totpAD(home))
		if err != nil {
			return false, fmt.Errorf("totp secret of %q: %w", home, err)
		}
		step, ok := matchStep(secret, code, current, tf.LastStep)
		if !ok {
			continue
		}
		tf.LastStep = step
		if pending {
			tf.Secret, tf.Recovery = tf.PendingSecret, tf.PendingRecovery
			tf.PendingSecret, tf.PendingRecovery = nil, nil
			tf.EnrollHash, tf.EnrollExpires = nil, 0
			res.Confirmed = true
		}
		return true, nil
	}
	return false, nil
}

// matchStep returns the highest step in current±1 that is after last and
// whose code equals code. totp.ValidateCustom would not say which step
// matched, and the step is what makes replays fail.
func matchStep(secret []byte, code string, current, last uint64) (uint64, bool) {
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	opts := hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}
	var best uint64
	found := false
	for step := current - min(current, totpSkewSteps); step <= current+totpSkewSteps; step++ {
		ok, err := hotp.ValidateCustom(code, step, b32, opts)
		if err == nil && ok && step > last {
			best, found = step, true
		}
	}
	return best, found
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return b, nil
}

// newCode returns a random 16-character lowercase base32 code and its
// SHA-256, the form in which it is stored.
func newCode() (string, []byte, error) {
	b, err := randomBytes(recoveryLen * 5 / 8)
	if err != nil {
		return "", nil, err
	}
	code := codeEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(code))
	return code, sum[:], nil
}

func newRecoveryCodes() (codes []string, hashes [][]byte, err error) {
	for range recoveryCount {
		code, sum, err := newCode()
		if err != nil {
			return nil, nil, err
		}
		codes, hashes = append(codes, code), append(hashes, sum)
	}
	return codes, hashes, nil
}
