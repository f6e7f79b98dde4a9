package store

import (
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestLedgersOfDeletedSpecsAreBounded(t *testing.T) {
	s, _ := openTest(t, Options{GoneLedgers: 3})
	for i := range 6 {
		name := fmt.Sprintf("job-%d", i)
		mustCommit(t, s, Change{Exit: exit(name, "c"+name)})
		if err := s.DeleteState(name); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		exits, err := s.Exits(fmt.Sprintf("job-%d", i), 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := i >= 3; (len(exits) == 1) != want {
			t.Errorf("job-%d keeps %d exits; want kept=%v (only the 3 newest deleted specs keep theirs)", i, len(exits), want)
		}
	}
}

func TestRedeletedSpecCountsOnce(t *testing.T) {
	s, _ := openTest(t, Options{GoneLedgers: 2})
	del := func(name string) {
		t.Helper()
		mustCommit(t, s, Change{Exit: exit(name, fmt.Sprintf("c%d", len(name)))})
		if err := s.DeleteState(name); err != nil {
			t.Fatal(err)
		}
	}
	del("a")
	del("b")
	del("a") // deleted again: newest now, not the oldest
	del("c") // pushes out b, not a
	if ex, _ := s.Exits("a", 0); len(ex) == 0 {
		t.Error("a's ledger was dropped though it was deleted most recently but one")
	}
	if ex, _ := s.Exits("b", 0); len(ex) != 0 {
		t.Error("b's ledger was kept past the bound")
	}
}

func TestMigrationV2EntersOrphanLedgers(t *testing.T) {
	s, _ := openTest(t, Options{})
	if err := s.PutSpec(record("live", apiSource())); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, Change{Exit: exit("live", "c1")})
	mustCommit(t, s, Change{Exit: exit("dead", "c2")})
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketGone); err != nil {
			return err
		}
		return createGone(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGone).ForEach(func(_, v []byte) error { names = append(names, string(v)); return nil })
	})
	if len(names) != 1 || names[0] != "dead" {
		t.Fatalf("gone = %v, want only the ledger without a spec", names)
	}
}
