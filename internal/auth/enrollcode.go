package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"
	"time"

	"github.com/vserv/vserv/internal/store"
)

// enrollCodeLifetime is how long a production-mode enrollment code is valid
// (DESIGN.md §3.2 qr).
const enrollCodeLifetime = 24 * time.Hour

// IssueEnrollmentCode returns a new one-time code (16 lowercase base32
// characters) that lets the account enroll its first second factor in
// production mode, valid for 24 hours and replacing any earlier one. Only its
// SHA-256 is stored. A confirmed enrollment uses it up.
func (s *Store) IssueEnrollmentCode(ctx context.Context, name string) (string, error) {
	code, sum, err := newCode()
	if err != nil {
		return "", err
	}
	err = s.st.Update(ctx, func(tx store.WriteTx) error {
		rec, err := loadAccount(tx, name)
		if err != nil {
			return err
		}
		if rec.Peer {
			return errPeerNoTOTP(rec.Name)
		}
		home := HomeName(name)
		tf, err := loadTwoFA(tx, home)
		if err != nil {
			return err
		}
		tf.EnrollHash, tf.EnrollExpires = sum, s.now().Add(enrollCodeLifetime).UnixNano()
		return saveTwoFA(tx, home, tf)
	})
	if err != nil {
		return "", err
	}
	return code, nil
}

// CheckEnrollmentCode checks an enrollment code without using it up; every
// refusal (unknown account, no code issued, wrong, expired, empty) is the
// fixed ERR auth.
func (s *Store) CheckEnrollmentCode(ctx context.Context, name, code string) error {
	ok := false
	err := s.st.View(ctx, func(tx store.ReadTx) error {
		if _, err := loadAccount(tx, name); err != nil {
			return nil
		}
		tf, err := loadTwoFA(tx, HomeName(name))
		if err != nil {
			return err
		}
		sum := sha256.Sum256([]byte(strings.ToLower(code)))
		ok = code != "" && len(tf.EnrollHash) == len(sum) &&
			subtle.ConstantTimeCompare(tf.EnrollHash, sum[:]) == 1 &&
			s.now().UnixNano() < tf.EnrollExpires
		return nil
	})
	if err != nil {
		return err
	}
	if !ok {
		return authFailed()
	}
	return nil
}
