package files

import (
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func TestResolve(t *testing.T) {
	long := strings.Repeat("a", 256)
	tests := []struct {
		cwd  Cwd
		p    string
		want string
		code wire.Code
	}{
		{"", ".", ".", ""},
		{"", "a", "a", ""},
		{"", "a/b/", "a/b", ""},
		{"", "./a//b/.", "a/b", ""},
		{"", "a/..", ".", ""},
		{"a", "..", ".", ""},
		{"a/b", "../c", "a/c", ""},
		{"a", "b", "a/b", ""},
		{"", strings.Repeat("a", 255), strings.Repeat("a", 255), ""},
		{"", "José/مرحبا/文件/😀", "José/مرحبا/文件/😀", ""},
		{"", "name~", "name~", ""},
		{"", "..", "", wire.CodePerm},
		{"", "./../", "", wire.CodePerm},
		{"", "a/../../x", "", wire.CodePerm},
		{"a", "../..", "", wire.CodePerm},
		{"a/b", "../../../b", "", wire.CodePerm},
		{"", "/", "", wire.CodePerm},
		{"", "/etc/passwd", "", wire.CodePerm},
		{"a", "/a", "", wire.CodePerm},
		{"", ".vserv-upload-x", "", wire.CodePerm},
		{"", "d/.vserv-upload-x/..", "", wire.CodePerm},
		{"", "", "", wire.CodeInvalid},
		{"a", "", "", wire.CodeInvalid},
		{"", "a\x00b", "", wire.CodeInvalid},
		{"", "\xff", "", wire.CodeInvalid},
		{"", long, "", wire.CodeInvalid},
		{"", "a/" + long + "/b", "", wire.CodeInvalid},
		{"", "/\x00", "", wire.CodeInvalid}, // malformed before absolute
		{"..", "a", "", wire.CodePerm},      // a forged cwd cannot escape either
		{"/etc", "a", "", wire.CodePerm},
	}
	for _, tt := range tests {
		got, err := resolve(tt.cwd, tt.p)
		testenv.WantCode(t, err, tt.code, "resolve("+string(tt.cwd)+", "+tt.p+")")
		if err == nil && got != tt.want {
			t.Errorf("resolve(%q, %q) = %q, want %q", tt.cwd, tt.p, got, tt.want)
		}
	}
}

func TestHomeNames(t *testing.T) {
	s := newService(t, t.TempDir(), Quotas{})
	for name, ok := range map[string]bool{
		"bob": true, "bob.smith": true, "a-b_c9": true, "0": true, strings.Repeat("a", 64): true,
		"": false, "..": false, ".": false, "a/b": false, "Bob": false, ".x": false, "-x": false,
		"x\x00": false, "é": false, strings.Repeat("a", 65): false, "../bob": false,
	} {
		_, err := s.Home(name)
		if ok {
			testenv.WantCode(t, err, "", "Home("+name+")")
		} else {
			testenv.WantCode(t, err, wire.CodeInvalid, "Home("+name+")")
		}
	}
}
