package auth

import (
	"strings"
	"unicode/utf8"

	"github.com/vserv/vserv/internal/wire"
)

// MaxNameLen is the longest account name in bytes.
const MaxNameLen = 64

// ValidName checks an account name against [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
// The pattern keeps names usable as directory names (no leading dot, no
// separators) and ASCII-only, so "unique ignoring case" needs no Unicode
// folding rules.
func ValidName(name string) error {
	if name == "" || len(name) > MaxNameLen || !isAlnum(name[0]) {
		return invalidName(name)
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return invalidName(name)
		}
	}
	return nil
}

func invalidName(name string) error {
	if len(name) > MaxNameLen+8 {
		name = name[:MaxNameLen+8] + "..."
	}
	return wire.Errorf(wire.CodeInvalid, "invalid account name %q: use 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit", name)
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// HomeName is the lowercase form of a valid name: the account's key in the
// database and the name of its home directory. Two names are the same account
// exactly when their HomeNames are equal.
func HomeName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// Password limits (DESIGN.md §3.2).
const (
	MaxPasswordLen           = 1024
	MinProductionPasswordLen = 12
)

// demoPasswords are refused in production mode whatever their length (the
// short ones already fail the length rule; they are listed so that the rule
// still holds if the minimum changes). Compared ignoring ASCII case.
var demoPasswords = map[string]bool{
	"1234": true, "12345": true, "123456": true, "12345678": true,
	"123456789": true, "1234567890": true, "123456789012": true,
	"password": true, "password1": true, "password123": true,
	"passwordpassword": true, "admin": true, "admin123": true,
	"adminadminadmin": true, "administrator": true, "root": true,
	"test": true, "guest": true, "letmein": true, "qwerty": true,
	"qwertyuiop": true, "changeme": true, "changemenow!": true,
	"secret": true, "vserv": true, "vservvserv": true, "vserv-password": true,
}

// checkPassword applies the password rules. In developer mode a password the
// production rules would refuse is accepted and reported as weak.
func checkPassword(pass string, production bool) (weak bool, err error) {
	if len(pass) == 0 || len(pass) > MaxPasswordLen || !utf8.ValidString(pass) {
		return false, wire.Errorf(wire.CodeInvalid, "password must be 1 to %d bytes of UTF-8 text", MaxPasswordLen)
	}
	weak = len(pass) < MinProductionPasswordLen || demoPasswords[HomeName(strings.TrimSpace(pass))]
	if weak && production {
		return true, wire.Errorf(wire.CodeInvalid, "password too weak: production mode needs at least %d bytes and not a well-known password", MinProductionPasswordLen)
	}
	return weak, nil
}
