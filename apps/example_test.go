package apps_test

import (
	"errors"
	"fmt"

	"github.com/vserv/vserv/apps"
)

// Example shows the calls the committer and the `view` command make: Apply
// for each record in order inside the write transaction (checking
// Result.Needs against the account's rights), View to answer.
func Example() {
	s, _ := apps.For("vote")
	kv := apps.MapKV{} // the server passes its transaction's bucket
	c := apps.Chain{Name: "vote", Origin: testOrigin, Schema: "vote"}
	var leaf [32]byte // the entry's leaf hash
	apply := func(seq uint64, typ string, p map[string]any) (apps.Result, error) {
		leaf[0] = byte(seq)
		return s.Apply(kv, c, apps.Event{Seq: seq, Time: 1_700_000_000_000 + seq, Leaf: leaf, Type: typ, Payload: p})
	}
	apply(0, "ballot.open", map[string]any{"ballot": "b1", "question": "Adopt?", "choices": []any{"yes", "no"}})
	reg, _ := apply(1, "vote.register", map[string]any{"voter_id": "alice"})
	fmt.Println("register needs", reg.Needs, "and allocates", reg.EID)
	cast, _ := apply(2, "vote.cast", map[string]any{"eid": reg.EID, "ballot": "b1", "choice": "yes"})
	fmt.Println("cast needs", cast.Needs)
	_, err := apply(3, "vote.cast", map[string]any{"eid": reg.EID, "ballot": "b1", "choice": "no"})
	var re *apps.RuleError
	fmt.Println(errors.As(err, &re), re.Rule)
	tally, _ := s.View(kv, c, "tally", map[string]any{"ballot": "b1"})
	fmt.Println(tally.(map[string]any)["choices"])
	// Output:
	// register needs manage and allocates dkzgkugjtdd3ab3z
	// cast needs write
	// true one-active-cast
	// map[no:0 yes:1]
}
