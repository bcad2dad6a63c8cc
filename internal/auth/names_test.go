package auth

import (
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"Z", true},
		{"0", true},
		{"alice", true},
		{"Alice.Smith_2-x", true},
		{"a.", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{".alice", false},
		{"..", false},
		{"-alice", false},
		{"_alice", false},
		{"al ice", false},
		{"al/ice", false},
		{"al\\ice", false},
		{"alice\x00", false},
		{"José", false},
		{"\xff", false},
		{"a\xffb", false},
		{"a\xc3", false},
	}
	for _, tt := range tests {
		err := ValidName(tt.name)
		if tt.ok {
			testenv.WantCode(t, err, "", "ValidName("+tt.name+")")
		} else {
			testenv.WantCode(t, err, wire.CodeInvalid, "ValidName("+tt.name+")")
		}
	}
}

func TestHomeName(t *testing.T) {
	for in, want := range map[string]string{"Alice": "alice", "BOB.X-1_Z": "bob.x-1_z", "carol": "carol"} {
		if got := HomeName(in); got != want {
			t.Errorf("HomeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	long := strings.Repeat("x", MaxPasswordLen)
	tests := []struct {
		pass       string
		production bool
		weak       bool
		code       wire.Code
	}{
		{"", false, false, wire.CodeInvalid},
		{"", true, false, wire.CodeInvalid},
		{long, true, false, ""},
		{long + "x", false, false, wire.CodeInvalid},
		{"ok\xffpassword-long", false, false, wire.CodeInvalid},
		{"1234", false, true, ""},
		{"1234", true, true, wire.CodeInvalid},
		{"eleven char", true, true, wire.CodeInvalid},
		{"twelve chars", true, false, ""},
		{"123456789012", true, true, wire.CodeInvalid},
		{"PasswordPassword", true, true, wire.CodeInvalid},
		{"correct horse battery", true, false, ""},
		{"Ĵosé Пароль كلمة", true, false, ""},
	}
	for _, tt := range tests {
		weak, err := checkPassword(tt.pass, tt.production)
		testenv.WantCode(t, err, tt.code, "checkPassword")
		if weak != tt.weak {
			t.Errorf("checkPassword(%.20q, production=%v) weak = %v, want %v", tt.pass, tt.production, weak, tt.weak)
		}
	}
}
