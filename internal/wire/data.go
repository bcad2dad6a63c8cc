package wire

import "encoding/binary"

// The file transfer message ["data", offset, bytes] of DESIGN.md §3.3 is the
// one message sent thousands of times a second, so it has its own encoder and
// parser that neither allocate nor copy the payload. Both produce and accept
// exactly the Core Deterministic Encoding that Marshal gives for
// []any{"data", uint64(offset), payload}; anything else (a longer integer
// encoding, say) is left to the general decoder by ParseData returning false.

// DataHeaderRoom is the space DataMessage needs in front of the payload: the
// array head (1), "data" (5), the longest offset (9) and the longest byte
// string head this package writes (5).
const DataHeaderRoom = 1 + 5 + 9 + 5

// dataHead is the array head and the command name of a data message.
var dataHead = [...]byte{0x83, 0x64, 'd', 'a', 't', 'a'}

// DataMessage encodes ["data", offset, payload] in place. The payload must
// already sit in buf[DataHeaderRoom : DataHeaderRoom+n]; the header is
// written just before it, and the message is returned as a sub-slice of buf,
// so a sender can read a file straight into its buffer and send it.
func DataMessage(buf []byte, offset uint64, n int) []byte {
	var hdr [DataHeaderRoom]byte
	h := append(hdr[:0], dataHead[:]...)
	h = appendHead(h, 0, offset)
	h = appendHead(h, 2, uint64(n))
	start := DataHeaderRoom - len(h)
	copy(buf[start:], h)
	return buf[start : DataHeaderRoom+n]
}

// appendHead appends a CBOR head of major type major with argument v, in its
// shortest form (RFC 8949 §4.2.1).
func appendHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= 0xff:
		return append(b, m|24, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), v)
}

// ParseData recognises a message that is exactly ["data", offset, payload]
// in deterministic encoding. The payload aliases msg. ok is false for any
// other message, including a data request with other argument types, which
// the caller must decode the general way to answer it properly.
func ParseData(msg []byte) (offset uint64, payload []byte, ok bool) {
	if len(msg) < len(dataHead) || [6]byte(msg[:6]) != dataHead {
		return 0, nil, false
	}
	rest := msg[len(dataHead):]
	offset, rest, ok = readHead(rest, 0)
	if !ok {
		return 0, nil, false
	}
	n, rest, ok := readHead(rest, 2)
	if !ok || n != uint64(len(rest)) {
		return 0, nil, false
	}
	return offset, rest, true
}

// readHead reads a head of the given major type in its shortest form.
func readHead(b []byte, major byte) (v uint64, rest []byte, ok bool) {
	if len(b) == 0 || b[0]>>5 != major {
		return 0, nil, false
	}
	info := b[0] & 0x1f
	b = b[1:]
	switch {
	case info < 24:
		return uint64(info), b, true
	case info == 24 && len(b) >= 1:
		v = uint64(b[0])
		return v, b[1:], v >= 24
	case info == 25 && len(b) >= 2:
		v = uint64(binary.BigEndian.Uint16(b))
		return v, b[2:], v > 0xff
	case info == 26 && len(b) >= 4:
		v = uint64(binary.BigEndian.Uint32(b))
		return v, b[4:], v > 0xffff
	case info == 27 && len(b) >= 8:
		v = binary.BigEndian.Uint64(b)
		return v, b[8:], v > 0xffffffff
	}
	return 0, nil, false
}
