package wire

import (
	"fmt"
	"strings"
)

// Request is a decoded request message: [command, args...]. Arguments are kept
// as raw CBOR so that a handler decodes each into exactly the type it needs and
// records keep the bytes the client sent.
type Request struct {
	Cmd  string
	Args []RawMessage
}

// DecodeRequest parses msg as a CBOR array headed by a text string.
func DecodeRequest(msg []byte) (*Request, error) {
	var items []RawMessage
	if err := Unmarshal(msg, &items); err != nil {
		return nil, Errorf(CodeProto, "malformed request: %v", err)
	}
	if len(items) == 0 {
		return nil, Errorf(CodeProto, "empty request")
	}
	var cmd string
	// The major type first: the decoder would turn null into "".
	if items[0][0]>>5 != 3 || Unmarshal(items[0], &cmd) != nil {
		return nil, Errorf(CodeProto, "request must start with a command name")
	}
	return &Request{Cmd: cmd, Args: items[1:]}, nil
}

// EncodeRequest builds the message [cmd, args...].
func EncodeRequest(cmd string, args ...any) ([]byte, error) {
	return Marshal(append([]any{cmd}, args...))
}

// NArgs returns the number of arguments.
func (r *Request) NArgs() int { return len(r.Args) }

// Arity returns ERR proto unless the request has between min and max arguments.
func (r *Request) Arity(min, max int) error {
	if n := len(r.Args); n < min || n > max {
		if min == max {
			return Errorf(CodeProto, "%s takes %d argument(s), got %d", r.Cmd, min, n)
		}
		return Errorf(CodeProto, "%s takes %d to %d arguments, got %d", r.Cmd, min, max, n)
	}
	return nil
}

// Decode decodes argument i into v, or returns ERR proto naming the argument.
func (r *Request) Decode(i int, what string, v any) error {
	if i >= len(r.Args) {
		return Errorf(CodeProto, "%s: missing %s", r.Cmd, what)
	}
	if err := Unmarshal(r.Args[i], v); err != nil {
		return Errorf(CodeProto, "%s: %s has the wrong type", r.Cmd, what)
	}
	return nil
}

// Text decodes argument i as a text string. The major type is checked first
// because the CBOR decoder leaves a string untouched for null: `user null`
// must be ERR proto, not a request for the name "".
func (r *Request) Text(i int, what string) (string, error) {
	var s string
	if i < len(r.Args) && len(r.Args[i]) > 0 && r.Args[i][0]>>5 != 3 {
		return "", Errorf(CodeProto, "%s: %s must be a text string", r.Cmd, what)
	}
	err := r.Decode(i, what, &s)
	return s, err
}

// Bytes decodes argument i as a byte string.
func (r *Request) Bytes(i int, what string) ([]byte, error) {
	var b []byte
	if i < len(r.Args) && len(r.Args[i]) > 0 && r.Args[i][0]>>5 != 2 {
		return nil, Errorf(CodeProto, "%s: %s must be a byte string", r.Cmd, what)
	}
	err := r.Decode(i, what, &b)
	return b, err
}

// Uint decodes argument i as an unsigned integer.
func (r *Request) Uint(i int, what string) (uint64, error) {
	var u uint64
	if i < len(r.Args) && len(r.Args[i]) > 0 && r.Args[i][0]>>5 != 0 {
		return 0, Errorf(CodeProto, "%s: %s must be an unsigned integer", r.Cmd, what)
	}
	err := r.Decode(i, what, &u)
	return u, err
}

// IsNull reports whether argument i is present and CBOR null.
func (r *Request) IsNull(i int) bool {
	return i < len(r.Args) && len(r.Args[i]) == 1 && r.Args[i][0] == 0xf6
}

// Response is a decoded response message.
type Response struct {
	Vals []RawMessage // the elements after "OK"
	Err  *Error       // non-nil for an ERR response
}

// EncodeOK builds ["OK", vals...].
func EncodeOK(vals ...any) ([]byte, error) {
	return Marshal(append([]any{"OK"}, vals...))
}

// EncodeError builds ["ERR", code, text, extra...]. Text is forced to valid UTF-8.
func EncodeError(e *Error) []byte {
	text := strings.ToValidUTF8(e.Text, "\uFFFD")
	msg, err := Marshal(append([]any{"ERR", string(e.Code), text}, e.Extra...))
	if err != nil {
		// Extra held something unencodable: drop it rather than fail the reply.
		msg, _ = Marshal([]any{"ERR", string(e.Code), text})
	}
	return msg
}

// DecodeResponse parses a response message.
func DecodeResponse(msg []byte) (*Response, error) {
	var items []RawMessage
	if err := Unmarshal(msg, &items); err != nil {
		return nil, fmt.Errorf("malformed response: %w", err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("malformed response: empty array")
	}
	var head string
	if err := Unmarshal(items[0], &head); err != nil {
		return nil, fmt.Errorf("malformed response: head is not text")
	}
	switch head {
	case "OK":
		return &Response{Vals: items[1:]}, nil
	case "ERR":
		e := &Error{Code: CodeInternal}
		if len(items) >= 3 {
			var code, text string
			if Unmarshal(items[1], &code) == nil && Code(code).Known() {
				e.Code = Code(code)
			}
			_ = Unmarshal(items[2], &text)
			e.Text = text
			for _, x := range items[3:] {
				var v any
				if Unmarshal(x, &v) == nil {
					e.Extra = append(e.Extra, v)
				}
			}
		}
		return &Response{Err: e}, nil
	}
	return nil, fmt.Errorf("malformed response: head %q", head)
}
