package compliance

import "testing"

func TestStepsOnEditedLadder(t *testing.T) {
	notify, mark, lock, retire := Step{Action: StepNotify}, Step{Action: StepMarkNoncompliant}, Step{Action: StepLock}, Step{Action: StepRetire}
	for _, c := range []struct {
		name      string
		old, next Ladder
		steps     int
		want      int
	}{
		{"nothing taken", Ladder{notify, lock}, Ladder{lock}, 0, 0},
		{"same ladder", Ladder{notify, mark, lock}, Ladder{notify, mark, lock}, 2, 2},
		{"a milder step added before the lock taken is passed over", Ladder{lock}, Ladder{notify, lock}, 1, 2},
		{"the step taken removed: the lock still comes", Ladder{notify, lock}, Ladder{lock, retire}, 1, 0},
		{"the lock taken removed: the retire follows", Ladder{notify, lock}, Ladder{notify, mark, retire}, 2, 2},
		{"a step added after those taken comes next", Ladder{notify, mark}, Ladder{notify, mark, lock}, 2, 2},
		{"every step taken, a harsher one added", Ladder{notify, lock}, Ladder{notify, lock, retire}, 2, 2},
		{"the ladder emptied", Ladder{notify, lock}, Ladder{}, 1, 0},
	} {
		if got := stepsOnEditedLadder(c.old, c.next, c.steps); got != c.want {
			t.Errorf("%s: %d steps of %v on %v: %d, want %d", c.name, c.steps, c.old, c.next, got, c.want)
		}
	}
}
