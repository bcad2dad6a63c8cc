package verify

import (
	"bytes"
	"strings"
	"testing"
)

// benchRecords are the shapes vbench sends (a small vote event) and a
// signed one with proof of work.
func benchRecords(b *testing.B) map[string][]byte {
	plain := mustMarshal(b, map[string]any{"id": testID, "type": "vote.cast", "created": uint64(1764000000000),
		"payload": map[string]any{"station": 3, "n": 123456, "choice": "yes"}})
	signed, err := SignRecord(OriginLine(strings.Repeat("ab", 16), "vote"), plain, testKey(9))
	if err != nil {
		b.Fatal(err)
	}
	big := mustMarshal(b, map[string]any{"id": testID, "payload": map[string]any{
		"list": bytes.Repeat([]byte("x"), 2000), "items": []any{1, -2, 3.5, "text", true, nil, map[string]any{"a": 1}}}})
	return map[string][]byte{"plain": plain, "signed": signed, "bigger": big}
}

func BenchmarkCheckRecord(b *testing.B) {
	for name, rec := range benchRecords(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CheckRecord(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCheckRecordNoPayload(b *testing.B) {
	for name, rec := range benchRecords(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CheckRecordNoPayload(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCheckRecordRef(b *testing.B) {
	for name, rec := range benchRecords(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := checkRecordRef(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
