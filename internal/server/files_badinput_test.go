package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// wantOneAnswer proves that the server answered the last request exactly
// once: a hello must now get its own reply, not a leftover.
func wantOneAnswer(t testing.TB, c *client.Client, what string) {
	t.Helper()
	h, err := c.Hello(context.Background())
	if err != nil || len(h.ConnectionID) != 16 {
		t.Fatalf("%s: the hello that follows got %+v, %v: the server is out of step", what, h, err)
	}
}

func TestFileCommandsBadInputGetOneERREach(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	c := srv.LoginAs("alice")
	mustUpload(t, c, "f", []byte("0123456789"), nil)
	if err := c.Mkdir(ctx, "d", nil); err != nil {
		t.Fatal(err)
	}
	sum := testenv.Sum256([]byte("abc"))
	long := strings.Repeat("x", 256)
	type M = map[string]any
	proto, invalid, perm, notfound, state, limit, exists := wire.CodeProto, wire.CodeInvalid, wire.CodePerm, wire.CodeNotFound, wire.CodeState, wire.CodeLimit, wire.CodeExists
	cases := []struct {
		cmd  string
		args []any
		code wire.Code
	}{
		{"fput", nil, proto},
		{"fput", []any{"a"}, proto},
		{"fput", []any{"a", uint64(3)}, proto},
		{"fput", []any{uint64(1), uint64(3), sum}, proto},
		{"fput", []any{"a", "3", sum}, proto},
		{"fput", []any{"a", int64(-3), sum}, proto},
		{"fput", []any{"a", uint64(3), "sum"}, proto},
		{"fput", []any{"a", uint64(3), sum, "not a map"}, proto},
		{"fput", []any{"a", uint64(3), sum, M{}, "extra"}, proto},
		{"fput", []any{"a", uint64(3), sum, M{"color": "red"}}, proto},
		{"fput", []any{"a", uint64(3), sum, M{"force": "yes"}}, proto},
		{"fput", []any{"a", uint64(3), sum, M{"as": uint64(1)}}, proto},
		{"fput", []any{"a", uint64(3), sum, M{"as": "bob"}}, perm},
		{"fput", []any{"a", uint64(3), sum[:31]}, invalid},
		{"fput", []any{"", uint64(3), sum}, invalid},
		{"fput", []any{"a\x00b", uint64(3), sum}, invalid},
		{"fput", []any{long, uint64(3), sum}, invalid},
		{"fput", []any{"d", uint64(3), sum}, invalid},
		{"fput", []any{"f", uint64(3), sum}, exists},
		{"fput", []any{"nodir/a", uint64(3), sum}, notfound},
		{"fput", []any{"a", uint64(1) << 63, sum}, invalid},
		{"fput", []any{"a", uint64(1) << 40, sum}, limit},
		{"file", nil, proto},
		{"file", []any{"a", uint64(3), sum, M{"backup": uint64(1)}}, proto},
		{"file", []any{"a", uint64(3), sum[:1]}, invalid},
		{"file", []any{"f", uint64(3), sum}, exists},
		{"fget", nil, proto},
		{"fget", []any{uint64(1)}, proto},
		{"fget", []any{"f", "0"}, proto},
		{"fget", []any{"f", uint64(0), uint64(0)}, proto},
		{"fget", []any{"f", M{"force": true}}, proto},
		{"fget", []any{"f", uint64(11)}, invalid},
		{"fget", []any{"f", uint64(1) << 63}, invalid},
		{"fget", []any{"nope"}, notfound},
		{"fget", []any{"d"}, invalid},
		{"fget", []any{""}, invalid},
		{"data", nil, proto},
		{"data", []any{uint64(0)}, proto},
		{"data", []any{"0", []byte("x")}, proto},
		{"data", []any{uint64(0), "x"}, proto},
		{"data", []any{uint64(0), []byte("x"), uint64(1)}, proto},
		{"data", []any{uint64(0), []byte("x")}, state},
		{"pwd", []any{"x"}, proto},
		{"pwd", []any{M{}, M{}}, proto},
		{"ls", []any{uint64(1)}, proto},
		{"ls", []any{"a", "b"}, proto},
		{"ls", []any{"a", M{}, uint64(1)}, proto},
		{"ls", []any{""}, invalid},
		{"ls", []any{"nope"}, notfound},
		{"lsd", []any{nil}, proto},
		{"buff", []any{uint64(0)}, invalid},
		{"buff", []any{uint64(61441)}, invalid},
		{"buff", []any{"x"}, proto},
		{"buff", []any{int64(-1)}, proto},
		{"buff", []any{uint64(1), uint64(2)}, proto},
	}
	for _, cmd := range []string{"cd", "del", "mkdir", "rmdir", "stat"} {
		cases = append(cases, []struct {
			cmd  string
			args []any
			code wire.Code
		}{
			{cmd, nil, proto},
			{cmd, []any{uint64(1)}, proto},
			{cmd, []any{nil}, proto},
			{cmd, []any{[]byte("f")}, proto},
			{cmd, []any{"a", "b"}, proto},
			{cmd, []any{"a", M{}, "c"}, proto},
			{cmd, []any{"a", M{"force": true}}, proto},
			{cmd, []any{""}, invalid},
			{cmd, []any{"a\x00"}, invalid},
			{cmd, []any{long}, invalid},
			{cmd, []any{"d/" + long + "/x"}, invalid},
		}...)
	}
	for _, tc := range cases {
		what := fmt.Sprintf("%s %v", tc.cmd, tc.args)
		_, err := c.Call(ctx, tc.cmd, tc.args...)
		testenv.WantCode(t, err, tc.code, what)
		wantOneAnswer(t, c, what)
	}
	// Text that is not UTF-8 is refused by the CBOR layer: ERR proto.
	raw := []byte{0x82, 0x64, 's', 't', 'a', 't', 0x62, 0xff, 0xfe}
	_, err := c.CallRaw(ctx, raw)
	testenv.WantCode(t, err, proto, "stat with a path that is not UTF-8")
	wantOneAnswer(t, c, "stat with a path that is not UTF-8")
	if cwd, err := c.Pwd(ctx, nil); err != nil || cwd != "" {
		t.Errorf("after the bad inputs pwd = %q, %v", cwd, err)
	}
	if got, err := c.ListFiles(ctx, "", nil); err != nil || len(got) != 2 {
		t.Errorf("after the bad inputs the home holds %q, %v; want only d and f", listNames(got), err)
	}
}

func TestFileDataAnsweredOneByOne(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	c := srv.LoginAs("alice")
	data := testenv.FileBytes(2*testenv.ChunkSize+100, 5)
	call := func(what string, args ...any) (uint64, error) {
		t.Helper()
		vals, err := c.Call(ctx, "data", args...)
		wantOneAnswer(t, c, what)
		if err != nil {
			return 0, err
		}
		var next uint64
		if len(vals) != 1 || wire.Unmarshal(vals[0], &next) != nil {
			t.Fatalf("%s: reply %v, want OK <next offset>", what, vals)
		}
		return next, nil
	}
	if _, err := c.Call(ctx, "file", "x", uint64(len(data)), testenv.Sum256(data)); err != nil {
		t.Fatal(err)
	}
	if next, err := call("first chunk", uint64(0), data[:testenv.ChunkSize]); err != nil || next != testenv.ChunkSize {
		t.Fatalf("first chunk: next %d, %v", next, err)
	}
	_, err := call("wrong offset", uint64(0), data[:testenv.ChunkSize])
	testenv.WantCode(t, err, wire.CodeInvalid, "data at an offset already written")
	_, err = call("oversize chunk", uint64(testenv.ChunkSize), bytes.Repeat([]byte{1}, testenv.ChunkSize+1))
	testenv.WantCode(t, err, wire.CodeLimit, "data of 61441 bytes")
	// The upload is still open after those refusals, and other commands may
	// come in between.
	if _, err := c.Stat(ctx, "x", nil); err == nil {
		t.Fatal("the file is visible before it is complete")
	}
	if next, err := call("second chunk", uint64(testenv.ChunkSize), data[testenv.ChunkSize:2*testenv.ChunkSize]); err != nil || next != 2*testenv.ChunkSize {
		t.Fatalf("second chunk: next %d, %v", next, err)
	}
	_, err = call("past the size", uint64(2*testenv.ChunkSize), append(bytes.Clone(data[2*testenv.ChunkSize:]), 0))
	testenv.WantCode(t, err, wire.CodeInvalid, "data past the declared size")
	if next, err := call("last chunk", uint64(2*testenv.ChunkSize), data[2*testenv.ChunkSize:]); err != nil || next != uint64(len(data)) {
		t.Fatalf("last chunk: next %d, %v", next, err)
	}
	if got := mustDownload(t, c, "x", nil); !bytes.Equal(got, data) {
		t.Fatal("file+data result differs")
	}
	_, err = call("after the end", uint64(len(data)), []byte{})
	testenv.WantCode(t, err, wire.CodeState, "data after the upload ended")
	// A zero-byte file is one empty data message.
	if _, err := c.Call(ctx, "file", "empty", uint64(0), testenv.Sum256(nil)); err != nil {
		t.Fatal(err)
	}
	if next, err := call("empty", uint64(0), []byte{}); err != nil || next != 0 {
		t.Fatalf("empty file: next %d, %v", next, err)
	}
	// A wrong hash ends the upload with ERR invalid and leaves nothing.
	if _, err := c.Call(ctx, "file", "bad", uint64(3), testenv.Sum256([]byte("xyz"))); err != nil {
		t.Fatal(err)
	}
	_, err = call("wrong hash", uint64(0), []byte("abc"))
	testenv.WantCode(t, err, wire.CodeInvalid, "data completing an upload with the wrong hash")
	_, err = call("after the failed end", uint64(3), []byte{})
	testenv.WantCode(t, err, wire.CodeState, "data after a failed end")
	if temps := uploadTemps(t, srv.Home("alice")); len(temps) != 0 {
		t.Errorf("temporary files left: %v", temps)
	}
}

// TestFputStreamMisbehaviour covers what a client can get wrong inside an
// fput stream: each case gets exactly one answer for the stream, and the
// connection stays in step.
func TestFputStreamMisbehaviour(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	data := testenv.FileBytes(3*testenv.ChunkSize+17, 6)
	size := int64(len(data))
	send := func(c *client.Client, v any) {
		t.Helper()
		msg, err := wire.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Conn().WriteMessage(msg, time.Now().Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		stream func(c *client.Client) // after fput answered OK 0
		answer wire.Code              // "" = OK
	}{
		{"all data", func(c *client.Client) { testenv.SendData(t, c, data, 0, size) }, ""},
		{"a wrong offset, then the rest", func(c *client.Client) {
			testenv.SendData(t, c, data, 0, testenv.ChunkSize)
			testenv.SendData(t, c, data, 2*testenv.ChunkSize, size) // skips a chunk
		}, wire.CodeInvalid},
		{"an oversize chunk that reaches the end", func(c *client.Client) {
			testenv.SendData(t, c, data, 0, 2*testenv.ChunkSize)
			send(c, []any{"data", uint64(2 * testenv.ChunkSize), data[2*testenv.ChunkSize:]}) // 61457 bytes
		}, wire.CodeLimit},
		{"a malformed data message, then the rest", func(c *client.Client) {
			send(c, []any{"data", "zero", data[:testenv.ChunkSize]})
			testenv.SendData(t, c, data, 0, size)
		}, wire.CodeProto},
		{"data past the size, then the right last one", func(c *client.Client) {
			testenv.SendData(t, c, data, 0, 3*testenv.ChunkSize)
			send(c, []any{"data", uint64(3 * testenv.ChunkSize), make([]byte, 18)})
			testenv.SendData(t, c, data, 3*testenv.ChunkSize, size)
		}, wire.CodeInvalid},
		{"a wrong hash", func(c *client.Client) {
			bad := bytes.Clone(data)
			bad[5] ^= 1
			testenv.SendData(t, c, bad, 0, size)
		}, wire.CodeInvalid},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := srv.LoginAs("alice")
			name := fmt.Sprintf("s%d", i)
			if off := testenv.StartFput(t, c, name, data); off != 0 {
				t.Fatalf("fput answered %d", off)
			}
			tc.stream(c)
			_, err := readAnswer(t, c)
			if tc.answer == "" {
				if err != nil {
					t.Fatalf("answer %v, want OK", err)
				}
				if got := mustDownload(t, c, name, nil); !bytes.Equal(got, data) {
					t.Fatal("content differs")
				}
			} else {
				testenv.WantCode(t, err, tc.answer, "the stream's answer")
				if _, err := c.Stat(ctx, name, nil); err == nil {
					t.Error("a failed stream left the file")
				}
			}
			wantOneAnswer(t, c, tc.name)
		})
	}

	t.Run("another request ends the stream and is answered; the upload resumes", func(t *testing.T) {
		c := srv.LoginAs("alice")
		testenv.StartFput(t, c, "h", data)
		testenv.SendData(t, c, data, 0, testenv.ChunkSize)
		wantOneAnswer(t, c, "hello inside the stream")
		_, err := c.Call(ctx, "data", uint64(testenv.ChunkSize), data[testenv.ChunkSize:2*testenv.ChunkSize])
		testenv.WantCode(t, err, wire.CodeState, "data after the stream ended")
		if resumed, err := c.Upload(ctx, bytes.NewReader(data), size, testenv.Sum256(data), "h", nil); err != nil || resumed != testenv.ChunkSize {
			t.Fatalf("upload again resumed at %d (%v), want %d", resumed, err, testenv.ChunkSize)
		}
		if got := mustDownload(t, c, "h", nil); !bytes.Equal(got, data) {
			t.Fatal("content differs")
		}
	})
	t.Run("a malformed message ends the stream and gets ERR proto", func(t *testing.T) {
		c := srv.LoginAs("alice")
		testenv.StartFput(t, c, "g", data)
		testenv.SendData(t, c, data, 0, testenv.ChunkSize)
		if err := c.Conn().WriteMessage([]byte{0xff, 0x00}, time.Now().Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		_, err := readAnswer(t, c)
		testenv.WantCode(t, err, wire.CodeProto, "garbage inside the stream")
		wantOneAnswer(t, c, "garbage inside the stream")
	})
	t.Run("after an error a request other than data ends the discarding", func(t *testing.T) {
		c := srv.LoginAs("alice")
		testenv.StartFput(t, c, "e", data)
		testenv.SendData(t, c, data, testenv.ChunkSize, 2*testenv.ChunkSize) // wrong offset: error, then discard
		_, err := readAnswer(t, c)
		testenv.WantCode(t, err, wire.CodeInvalid, "the stream's answer")
		testenv.SendData(t, c, data, 0, testenv.ChunkSize) // discarded without an answer
		wantOneAnswer(t, c, "hello after the failed stream")
	})
	t.Run("size 0 is one empty data message", func(t *testing.T) {
		c := srv.LoginAs("alice")
		if off := testenv.StartFput(t, c, "zero", nil); off != 0 {
			t.Fatalf("fput answered %d", off)
		}
		send(c, []any{"data", uint64(0), []byte{}})
		if _, err := readAnswer(t, c); err != nil {
			t.Fatalf("empty upload: %v", err)
		}
		wantOneAnswer(t, c, "empty upload")
		if fi, err := c.Stat(ctx, "zero", nil); err != nil || fi.Size != 0 {
			t.Fatalf("stat zero = %+v, %v", fi, err)
		}
	})
}

func TestFileCommandsNeedALogin(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	anon := srv.Dial()
	sum := testenv.Sum256(nil)
	for _, call := range [][]any{
		{"fput", "a", uint64(0), sum}, {"fget", "a"}, {"file", "a", uint64(0), sum}, {"data", uint64(0), []byte{}},
		{"del", "a"}, {"ls"}, {"lsd"}, {"cd", "a"}, {"pwd"}, {"stat", "a"}, {"mkdir", "a"}, {"rmdir", "a"}, {"buff"},
	} {
		_, err := anon.Call(ctx, call[0].(string), call[1:]...)
		testenv.WantCode(t, err, wire.CodeState, call[0].(string)+" without a login")
		wantOneAnswer(t, anon, call[0].(string)+" without a login")
	}
}
